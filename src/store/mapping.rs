//! Conversions between stored rows and domain records. Times are epoch milliseconds
//! in the database; structured values are JSON columns; the columns that filters use
//! (assignee type, error code, cost …) are derived here from the record, in one place.

use async_graphql::Json;
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::ActiveValue::Set;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::entities::*;
use crate::domain::records::*;
use crate::domain::values::{EventType, LogLevel, Priority};
use crate::error::{AppError, AppResult};

pub fn to_ms(time: Timestamp) -> i64 {
    time.timestamp_millis()
}

pub fn from_ms(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn from_json<T: DeserializeOwned>(value: Value) -> AppResult<T> {
    serde_json::from_value(value)
        .map_err(|e| AppError::Internal(format!("stored JSON does not decode: {e}")))
}

fn opt_from_json<T: DeserializeOwned>(value: Option<Value>) -> AppResult<Option<T>> {
    value.filter(|v| !v.is_null()).map(from_json).transpose()
}

fn parse_name<T>(name: &str, parse: impl Fn(&str) -> Option<T>) -> AppResult<T> {
    parse(name).ok_or_else(|| AppError::Internal(format!("unknown stored name {name}")))
}

pub fn execution_from_row(row: execution::Model) -> AppResult<Execution> {
    Ok(Execution {
        id: row.id,
        order_id: row.order_id,
        service_id: row.service_id,
        customer_id: row.customer_id,
        provider_id: row.provider_id,
        status: row.status.parse()?,
        progress: row.progress,
        progress_explicit: row.progress_explicit,
        priority: Priority::from_rank(row.priority),
        assignee: opt_from_json(row.assignee)?,
        result: opt_from_json(row.result)?,
        error: opt_from_json(row.error)?,
        metrics: from_json(row.metrics)?,
        timeout_ms: row.timeout_ms,
        retry_policy: opt_from_json(row.retry_policy)?,
        tags: from_json(row.tags)?,
        environment: row.environment,
        version: row.version,
        metadata: row.metadata,
        concurrency_key: row.concurrency_key,
        holds: opt_from_json(row.holds)?.unwrap_or_default(),
        waiting_on: row.waiting_on,
        budget: opt_from_json(row.budget)?,
        last_sequence: row.last_sequence,
        paused_at: row.paused_at.map(from_ms),
        paused_ms: row.paused_ms,
        retry_at: row.retry_at.map(from_ms),
        scheduled_at: row.scheduled_at.map(from_ms),
        schedule_id: row.schedule_id,
        webhook_events: opt_from_json(row.webhook_events)?.unwrap_or_default(),
        created_at: from_ms(row.created_at),
        updated_at: from_ms(row.updated_at),
    })
}

pub fn execution_to_row(e: &Execution) -> execution::ActiveModel {
    execution::ActiveModel {
        id: Set(e.id.clone()),
        order_id: Set(e.order_id.clone()),
        service_id: Set(e.service_id.clone()),
        customer_id: Set(e.customer_id.clone()),
        provider_id: Set(e.provider_id.clone()),
        status: Set(e.status.as_str().to_owned()),
        priority: Set(e.priority.rank()),
        progress: Set(e.progress),
        progress_explicit: Set(e.progress_explicit),
        assignee: Set(e.assignee.as_ref().map(to_json)),
        assignee_type: Set(e.assignee.as_ref().map(|a| a.kind.as_str().to_owned())),
        assignee_id: Set(e.assignee.as_ref().and_then(|a| a.id.clone()).map(|i| i.0)),
        assignee_model: Set(e.assignee.as_ref().and_then(|a| a.model.clone())),
        result: Set(e.result.as_ref().map(to_json)),
        result_summary: Set(e.result.as_ref().map(|r| r.summary.clone())),
        error: Set(e.error.as_ref().map(to_json)),
        error_code: Set(e.error.as_ref().map(|r| r.code.clone())),
        error_message: Set(e.error.as_ref().map(|r| r.message.clone())),
        error_recoverable: Set(e.error.as_ref().map(|r| r.recoverable)),
        metrics: Set(to_json(&e.metrics)),
        started_at: Set(e.metrics.started_at.map(to_ms)),
        completed_at: Set(e.metrics.completed_at.map(to_ms)),
        duration_ms: Set(e.metrics.duration_ms),
        tokens_used: Set(e.metrics.tokens_used),
        cost: Set(e.metrics.cost),
        api_calls: Set(e.metrics.api_calls),
        retries: Set(e.metrics.retries),
        timeout_ms: Set(e.timeout_ms),
        retry_policy: Set(e.retry_policy.as_ref().map(to_json)),
        tags: Set(to_json(&e.tags)),
        environment: Set(e.environment.clone()),
        version: Set(e.version.clone()),
        metadata: Set(e.metadata.clone()),
        concurrency_key: Set(e.concurrency_key.clone()),
        holds: Set((!e.holds.is_empty()).then(|| to_json(&e.holds))),
        waiting_on: Set(e.waiting_on.clone()),
        budget: Set(e.budget.as_ref().map(to_json)),
        last_sequence: Set(e.last_sequence),
        paused_at: Set(e.paused_at.map(to_ms)),
        paused_ms: Set(e.paused_ms),
        retry_at: Set(e.retry_at.map(to_ms)),
        scheduled_at: Set(e.scheduled_at.map(to_ms)),
        schedule_id: Set(e.schedule_id.clone()),
        webhook_events: Set((!e.webhook_events.is_empty()).then(|| to_json(&e.webhook_events))),
        created_at: Set(to_ms(e.created_at)),
        updated_at: Set(to_ms(e.updated_at)),
    }
}

fn json_col(value: &Option<Json<Value>>) -> Option<Value> {
    value.as_ref().map(|j| j.0.clone())
}

fn json_field(value: Option<Value>) -> Option<Json<Value>> {
    value.filter(|v| !v.is_null()).map(Json)
}

pub fn step_from_row(row: step::Model) -> AppResult<Step> {
    Ok(Step {
        id: row.step_id,
        name: row.name,
        index: row.idx,
        status: row.status.parse()?,
        depends_on: from_json(row.depends_on)?,
        handler: crate::domain::values::StepHandler {
            kind: row.handler_kind,
            config: json_field(row.handler_config),
        },
        assignee: opt_from_json(row.assignee)?,
        input: json_field(row.input),
        output: json_field(row.output),
        error: opt_from_json(row.error)?,
        started_at: row.started_at.map(from_ms),
        completed_at: row.completed_at.map(from_ms),
        duration_ms: row.duration_ms,
        timeout_ms: row.timeout_ms,
        retries: row.retries,
        attempt: row.attempt,
        schedule: StepSchedule {
            ready_at: row.ready_at.map(from_ms),
            lease_expires_at: row.lease_expires_at.map(from_ms),
            lease_owner: row.lease_owner,
            holds: opt_from_json(row.holds)?.unwrap_or_default(),
            waiting_on: row.waiting_on,
            waiting_until: row.waiting_until.map(from_ms),
        },
        metadata: json_field(row.metadata),
        concurrency_key: row.concurrency_key,
    })
}

pub fn step_to_row(execution_id: &str, s: &Step) -> step::ActiveModel {
    step::ActiveModel {
        execution_id: Set(execution_id.to_owned()),
        step_id: Set(s.id.clone()),
        idx: Set(s.index),
        name: Set(s.name.clone()),
        status: Set(s.status.as_str().to_owned()),
        depends_on: Set(to_json(&s.depends_on)),
        handler_kind: Set(s.handler.kind.clone()),
        handler_config: Set(json_col(&s.handler.config)),
        assignee: Set(s.assignee.as_ref().map(to_json)),
        input: Set(json_col(&s.input)),
        output: Set(json_col(&s.output)),
        error: Set(s.error.as_ref().map(to_json)),
        started_at: Set(s.started_at.map(to_ms)),
        completed_at: Set(s.completed_at.map(to_ms)),
        duration_ms: Set(s.duration_ms),
        timeout_ms: Set(s.timeout_ms),
        retries: Set(s.retries),
        attempt: Set(s.attempt),
        ready_at: Set(s.schedule.ready_at.map(to_ms)),
        lease_expires_at: Set(s.schedule.lease_expires_at.map(to_ms)),
        lease_owner: Set(s.schedule.lease_owner.clone()),
        metadata: Set(json_col(&s.metadata)),
        concurrency_key: Set(s.concurrency_key.clone()),
        holds: Set((!s.schedule.holds.is_empty()).then(|| to_json(&s.schedule.holds))),
        waiting_on: Set(s.schedule.waiting_on.clone()),
        waiting_until: Set(s.schedule.waiting_until.map(to_ms)),
    }
}

pub fn log_from_row(row: log::Model) -> AppResult<LogEntry> {
    Ok(LogEntry {
        id: row.id,
        timestamp: from_ms(row.timestamp),
        level: parse_name(&row.level, LogLevel::parse)?,
        message: row.message,
        step: row.step_id,
        context: json_field(row.context),
        metadata: json_field(row.metadata),
    })
}

pub fn log_to_row(execution_id: &str, l: &LogEntry) -> log::ActiveModel {
    log::ActiveModel {
        id: Set(l.id.clone()),
        execution_id: Set(execution_id.to_owned()),
        timestamp: Set(to_ms(l.timestamp)),
        level: Set(l.level.as_str().to_owned()),
        message: Set(l.message.clone()),
        step_id: Set(l.step.clone()),
        context: Set(json_col(&l.context)),
        metadata: Set(json_col(&l.metadata)),
    }
}

pub fn checkpoint_from_row(row: checkpoint::Model) -> Checkpoint {
    Checkpoint {
        id: row.id,
        timestamp: from_ms(row.timestamp),
        step: row.step_id,
        state: Json(row.state),
        metadata: json_field(row.metadata),
    }
}

pub fn checkpoint_to_row(execution_id: &str, c: &Checkpoint) -> checkpoint::ActiveModel {
    checkpoint::ActiveModel {
        id: Set(c.id.clone()),
        execution_id: Set(execution_id.to_owned()),
        timestamp: Set(to_ms(c.timestamp)),
        step_id: Set(c.step.clone()),
        state: Set(c.state.0.clone()),
        metadata: Set(json_col(&c.metadata)),
    }
}

pub fn event_from_row(row: event::Model) -> AppResult<Event> {
    Ok(Event {
        id: row.id,
        execution_id: row.execution_id,
        sequence: row.sequence,
        kind: parse_name(&row.event_type, EventType::parse)?,
        timestamp: from_ms(row.timestamp),
        status: row.status.parse()?,
        progress: row.progress,
        payload: from_json(row.payload)?,
        actor: row.actor,
        reason: row.reason,
    })
}

pub fn event_to_row(e: &Event) -> event::ActiveModel {
    event::ActiveModel {
        id: Set(e.id.clone()),
        execution_id: Set(e.execution_id.clone()),
        sequence: Set(e.sequence),
        event_type: Set(e.kind.as_str().to_owned()),
        timestamp: Set(to_ms(e.timestamp)),
        status: Set(e.status.as_str().to_owned()),
        progress: Set(e.progress),
        payload: Set(to_json(&e.payload)),
        actor: Set(e.actor.clone()),
        reason: Set(e.reason.clone()),
    }
}

pub fn webhook_from_row(row: webhook::Model) -> AppResult<Webhook> {
    let events: Vec<String> = from_json(row.events)?;
    Ok(Webhook {
        id: row.id,
        execution_id: row.execution_id,
        url: row.url,
        events: events
            .iter()
            .map(|e| parse_name(e, EventType::parse))
            .collect::<AppResult<_>>()?,
        headers: row.headers,
        secret: row.secret.map(Secret),
        retries: row.retries,
        timeout_ms: row.timeout_ms,
        created_at: from_ms(row.created_at),
    })
}

pub fn webhook_to_row(w: &Webhook) -> webhook::ActiveModel {
    webhook::ActiveModel {
        id: Set(w.id.clone()),
        execution_id: Set(w.execution_id.clone()),
        url: Set(w.url.clone()),
        events: Set(to_json(
            &w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        )),
        headers: Set(w.headers.clone()),
        secret: Set(w.secret.as_ref().map(|s| s.0.clone())),
        retries: Set(w.retries),
        timeout_ms: Set(w.timeout_ms),
        created_at: Set(to_ms(w.created_at)),
    }
}

pub fn delivery_from_row(row: webhook_delivery::Model) -> AppResult<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: row.id,
        event: parse_name(&row.event_type, EventType::parse)?,
        sequence: row.sequence,
        attempt: row.attempt,
        status_code: row.status_code,
        ok: row.ok,
        error: row.error,
        delivered_at: from_ms(row.delivered_at),
        duration_ms: row.duration_ms,
    })
}

pub fn delivery_to_row(webhook_id: &str, d: &WebhookDelivery) -> webhook_delivery::ActiveModel {
    webhook_delivery::ActiveModel {
        id: Set(d.id.clone()),
        webhook_id: Set(webhook_id.to_owned()),
        event_type: Set(d.event.as_str().to_owned()),
        sequence: Set(d.sequence),
        attempt: Set(d.attempt),
        status_code: Set(d.status_code),
        ok: Set(d.ok),
        error: Set(d.error.clone()),
        delivered_at: Set(to_ms(d.delivered_at)),
        duration_ms: Set(d.duration_ms),
    }
}
