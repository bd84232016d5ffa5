//! A new execution and changes to what it is (`updateExecution`): its identity,
//! priority, assignee, tags, metadata and webhooks.

use super::start_into;
use crate::domain::change::Change;
use crate::domain::inputs::*;
use crate::domain::progress;
use crate::domain::records::*;
use crate::domain::status::ExecutionStatus;
use crate::domain::step_graph::{StepGraph, StepKinds};
use crate::domain::validate::{self, TimeoutMs};
use crate::domain::values::*;
use crate::domain::webhooks;
use crate::error::{AppError, AppResult};
use chrono::{SubsecRound, TimeDelta};

/// Builds a new execution (QUEUED, sequence 1 = EXECUTION_CREATED), started at once
/// when it `starts_at_once` and `may_start` (its steps are then handed out by
/// `schedule::settle_new`); a caller that starts it another way passes false.
/// `customer_id` is the already-authorised ordering tenant; its steps may name the
/// handler `kinds` only.
pub fn create(
    input: CreateExecutionInput,
    customer_id: Option<String>,
    kinds: &StepKinds,
    actor: &str,
    now: Timestamp,
    may_start: bool,
) -> AppResult<Change> {
    let start = may_start && starts_at_once(&input, now);
    let steps = StepGraph::parse(input.steps.unwrap_or_default(), kinds)?.0;
    let webhooks = parse_webhooks("input.webhooks", input.webhooks, "", now)?;
    let mut execution = Execution {
        id: new_id(),
        order_id: validate::id("input.orderId", input.order_id)?.0,
        service_id: validate::id("input.serviceId", input.service_id)?.0,
        customer_id,
        provider_id: validate::opt_id("input.providerId", input.provider_id)?.map(|i| i.0),
        status: ExecutionStatus::Queued,
        progress: 0.0,
        progress_explicit: false,
        priority: input.priority.unwrap_or(Priority::Normal),
        assignee: input
            .assignee
            .map(|a| a.parse("input.assignee"))
            .transpose()?,
        result: None,
        error: None,
        metrics: Metrics::default(),
        timeout_ms: TimeoutMs::parse("input.timeoutMs", input.timeout_ms.unwrap_or(3_600_000))?.0,
        retry_policy: input
            .retry_policy
            .map(|p| p.parse("input.retryPolicy"))
            .transpose()?,
        tags: validate::tags("input.tags", input.tags.unwrap_or_default())?,
        environment: validate::opt_short("input.environment", input.environment)?,
        version: validate::opt_short("input.version", input.version)?,
        metadata: validate::opt_json("input.metadata", input.metadata)?.map(|j| j.0),
        concurrency_key: validate::opt_short("input.concurrencyKey", input.concurrency_key)?,
        holds: Vec::new(),
        waiting_on: None,
        budget: input.budget.map(|b| b.parse("input.budget")).transpose()?,
        last_sequence: 0,
        paused_at: None,
        paused_ms: 0,
        retry_at: None,
        scheduled_at: start_at(input.start_at, now)?,
        schedule_id: None,
        webhook_events: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    progress::refresh(&mut execution, &steps);
    let mut change = Change::new(&execution, actor, now);
    change.is_new = true;
    change.idempotency_key = validate::opt_short("input.idempotencyKey", input.idempotency_key)?;
    change.webhooks_added = webhooks
        .into_iter()
        .map(|mut w| {
            w.execution_id = execution.id.clone();
            w
        })
        .collect();
    change.execution.webhook_events = webhooks::watched(change.webhooks_added.iter());
    change.steps = steps;
    change.emit(EventType::ExecutionCreated, EventPayload::default(), None);
    if start {
        start_into(&mut change)?;
    }
    Ok(change)
}

/// A start later than this is refused: a typo, not a plan.
const LATEST_START: TimeDelta = TimeDelta::days(366);

/// `startAt`, checked against `now`, to the millisecond that is stored.
fn start_at(at: Option<Timestamp>, now: Timestamp) -> AppResult<Option<Timestamp>> {
    match at {
        Some(at) if at > now + LATEST_START => {
            Err(AppError::bad_input("input.startAt", "at most a year ahead"))
        }
        at => Ok(at.map(|at| at.trunc_subsecs(3))),
    }
}

/// Whether a new execution starts as it is created: its `startAt` has come, or,
/// without one, it asks to (`autoStart`).
pub fn starts_at_once(input: &CreateExecutionInput, now: Timestamp) -> bool {
    match input.start_at {
        Some(at) => at <= now,
        None => input.auto_start == Some(true),
    }
}

fn parse_webhooks(
    field: &str,
    inputs: Option<Vec<WebhookInput>>,
    execution_id: &str,
    now: Timestamp,
) -> AppResult<Vec<Webhook>> {
    let inputs = inputs.unwrap_or_default();
    if inputs.len() > 20 {
        return Err(AppError::bad_input(field, "at most 20 webhooks"));
    }
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let field = format!("{field}[{i}]");
            let url = validate::short(&format!("{field}.url"), w.url)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(AppError::bad_input(
                    format!("{field}.url"),
                    "must be an http:// or https:// URL",
                ));
            }
            if w.events.is_empty() {
                return Err(AppError::bad_input(
                    format!("{field}.events"),
                    "name at least one event type",
                ));
            }
            Ok(Webhook {
                id: new_id(),
                execution_id: execution_id.to_owned(),
                url,
                events: w.events,
                headers: validate::http_headers(&format!("{field}.headers"), w.headers)?,
                secret: validate::opt_short(&format!("{field}.secret"), w.secret)?.map(Secret),
                retries: validate::int_range(
                    &format!("{field}.retries"),
                    w.retries.unwrap_or(3),
                    0,
                    20,
                )?,
                timeout_ms: i64::from(validate::int_range(
                    &format!("{field}.timeoutMs"),
                    w.timeout_ms.unwrap_or(5000),
                    1,
                    60_000,
                )?),
                created_at: now,
            })
        })
        .collect()
}

pub fn update(
    execution: &Execution,
    webhooks: &[Webhook],
    input: UpdateExecutionInput,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let mut change = Change::new(execution, actor, now);
    let next = &mut change.execution;
    if let Some(priority) = input.priority {
        next.priority = priority;
    }
    if let Some(assignee) = input.assignee {
        next.assignee = Some(assignee.parse("input.assignee")?);
    }
    if let Some(timeout) = input.timeout_ms {
        next.timeout_ms = TimeoutMs::parse("input.timeoutMs", timeout)?.0;
    }
    if let Some(budget) = input.budget {
        next.budget = Some(budget.parse("input.budget")?);
    }
    if let Some(policy) = input.retry_policy {
        next.retry_policy = Some(policy.parse("input.retryPolicy")?);
    }
    if let Some(tags) = input.tags {
        next.tags = validate::tags("input.tags", tags)?;
    }
    if let Some(metadata) = input.metadata {
        next.metadata = Some(validate::json("input.metadata", metadata)?.0);
    }
    for id in input.remove_webhooks.unwrap_or_default() {
        if !webhooks.iter().any(|w| w.id == id.0) {
            return Err(AppError::bad_input(
                "input.removeWebhooks",
                format!("no webhook `{}` on this execution", id.0),
            ));
        }
        if !change.webhooks_removed.contains(&id.0) {
            change.webhooks_removed.push(id.0);
        }
    }
    change.webhooks_added =
        parse_webhooks("input.addWebhooks", input.add_webhooks, &execution.id, now)?;
    // Removed ids are distinct and all present, so this cannot underflow.
    if webhooks.len() - change.webhooks_removed.len() + change.webhooks_added.len() > 20 {
        return Err(AppError::bad_input(
            "input.addWebhooks",
            "at most 20 webhooks",
        ));
    }
    let kept = webhooks
        .iter()
        .filter(|w| !change.webhooks_removed.contains(&w.id));
    change.execution.webhook_events = webhooks::watched(kept.chain(&change.webhooks_added));
    change.emit(EventType::ExecutionUpdated, EventPayload::default(), None);
    Ok(change)
}
