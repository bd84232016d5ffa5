//! The lifecycle commands of an execution (create, update, start, pause, resume,
//! cancel, complete, fail, retry, progress, metrics, logs, checkpoints). Each takes the
//! current execution and its steps and returns the `Change` it makes, or the reason
//! it is refused. No I/O happens here.

use super::change::Change;
use super::inputs::*;
use super::progress;
use super::records::*;
use super::status::{ExecutionStatus, Status, StepStatus};
use super::step_graph::{StepGraph, StepKinds};
use super::types::*;
use super::validate::{self, Progress, TimeoutMs};
use super::webhooks;
use crate::error::{AppError, AppResult};

/// Builds a new execution (QUEUED, sequence 1 = EXECUTION_CREATED), started at once
/// when `autoStart` is set. `customer_id` is the already-authorised ordering tenant;
/// its steps may name the handler `kinds` only.
pub fn create(
    input: CreateExecutionInput,
    customer_id: Option<String>,
    kinds: &StepKinds,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
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
        last_sequence: 0,
        paused_at: None,
        paused_ms: 0,
        retry_at: None,
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
    if input.auto_start.unwrap_or(false) {
        start_into(&mut change)?;
    }
    super::schedule::settle(&mut change, &execution, &[]);
    Ok(change)
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

/// QUEUED→STARTING; `schedule::settle` then hands out the ready steps and moves it on
/// to RUNNING at once when no built-in step has to be picked up by a worker first.
pub fn start(execution: &Execution, actor: &str, now: Timestamp) -> AppResult<Change> {
    let mut change = Change::new(execution, actor, now);
    start_into(&mut change)?;
    Ok(change)
}

fn start_into(change: &mut Change) -> AppResult<()> {
    change.move_to(ExecutionStatus::Starting)?;
    change.emit(EventType::ExecutionUpdated, EventPayload::default(), None);
    Ok(())
}

/// RUNNING→PAUSED, recording a checkpoint of where the execution stands.
pub fn pause(
    execution: &Execution,
    steps: &[Step],
    reason: Option<String>,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let reason = reason.map(|r| validate::text("reason", r)).transpose()?;
    let mut change = Change::new(execution, actor, now);
    change.move_to(ExecutionStatus::Paused)?;
    change.record_checkpoint(progress::checkpoint(steps, "pause", now));
    change.emit(EventType::ExecutionPaused, EventPayload::default(), reason);
    Ok(change)
}

pub fn resume(execution: &Execution, actor: &str, now: Timestamp) -> AppResult<Change> {
    if execution.status != ExecutionStatus::Paused {
        // RETRY/STARTING → RUNNING are allowed hops, but they are the scheduler's, not a resume.
        return Err(AppError::InvalidTransition {
            from: Status::Execution(execution.status),
            to: Status::Execution(ExecutionStatus::Running),
        });
    }
    let mut change = Change::new(execution, actor, now);
    change.move_to(ExecutionStatus::Running)?;
    change.emit(EventType::ExecutionResumed, EventPayload::default(), None);
    Ok(change)
}

pub fn cancel(
    execution: &Execution,
    reason: Option<String>,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let reason = reason.map(|r| validate::text("reason", r)).transpose()?;
    let mut change = Change::new(execution, actor, now);
    change.move_to(ExecutionStatus::Cancelled)?;
    change.emit(
        EventType::ExecutionCancelled,
        EventPayload::default(),
        reason,
    );
    Ok(change)
}

pub fn complete(
    execution: &Execution,
    result: ExecutionResultInput,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let result = result.parse()?;
    let mut change = Change::new(execution, actor, now);
    complete_into(&mut change, result)?;
    Ok(change)
}

/// RUNNING→COMPLETED with `result`, progress at 100.
pub fn complete_into(change: &mut Change, result: ExecutionResult) -> AppResult<()> {
    change.move_to(ExecutionStatus::Completed)?;
    change.execution.progress = 100.0;
    change.execution.result = Some(result.clone());
    change.execution.error = None;
    change.emit(
        EventType::ExecutionCompleted,
        EventPayload {
            result: Some(result),
            ..Default::default()
        },
        None,
    );
    Ok(())
}

/// →FAILED with `error`; with `retry_at`, the execution will run again then.
pub fn fail_into(
    change: &mut Change,
    mut error: ExecutionError,
    retry_at: Option<Timestamp>,
) -> AppResult<()> {
    error.retry_count = change.execution.metrics.retries;
    change.move_to(ExecutionStatus::Failed)?;
    change.execution.error = Some(error.clone());
    change.execution.retry_at = retry_at;
    change.emit(
        EventType::ExecutionFailed,
        EventPayload {
            error: Some(error),
            will_retry: Some(retry_at.is_some()),
            next_retry_at: retry_at,
            ..Default::default()
        },
        None,
    );
    Ok(())
}

/// FAILED→RETRY→STARTING, with every failed step back to PENDING (`schedule::settle`
/// moves it on to RUNNING as `start` does). Time spent waiting since the failure
/// counts as retry time.
pub fn retry(
    execution: &Execution,
    steps: &[Step],
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let mut change = Change::new(execution, actor, now);
    let failed_at = execution.error.as_ref().and_then(|e| e.timestamp);
    change.move_to(ExecutionStatus::Retry)?;
    change.execution.metrics.retries += 1;
    if let Some(failed_at) = failed_at {
        let waited = (now - failed_at).num_milliseconds().max(0);
        *change.execution.metrics.retry_duration_ms.get_or_insert(0) += waited;
    }
    change.execution.error = None;
    change.emit(EventType::ExecutionRetry, EventPayload::default(), None);
    for step in steps.iter().filter(|s| s.status == StepStatus::Failed) {
        let mut step = step.clone();
        step.status = StepStatus::Pending;
        step.retries += 1;
        change.put_step(step);
    }
    change.move_to(ExecutionStatus::Starting)?;
    let all_steps = progress::merged(steps, &change.steps);
    progress::refresh(&mut change.execution, &all_steps);
    change.emit(EventType::ExecutionUpdated, EventPayload::default(), None);
    Ok(change)
}

/// Reported progress; from now on steps no longer drive it.
pub fn update_progress(
    execution: &Execution,
    value: f64,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let value = Progress::parse("progress", value)?;
    refuse_when_finished(execution)?;
    let mut change = Change::new(execution, actor, now);
    change.execution.progress = value.0;
    change.execution.progress_explicit = true;
    change.emit(EventType::ExecutionProgress, EventPayload::default(), None);
    Ok(change)
}

/// Adds reported usage to the execution's metrics (counters add up; quality score
/// and custom values replace the previous ones).
pub fn record_metrics(
    execution: &Execution,
    input: MetricsInput,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let mut change = Change::new(execution, actor, now);
    super::metrics::record(&mut change.execution.metrics, input)?;
    change.emit(EventType::ExecutionUpdated, EventPayload::default(), None);
    Ok(change)
}

pub fn append_logs(
    execution: &Execution,
    logs: Vec<LogInput>,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    if logs.is_empty() || logs.len() > 500 {
        return Err(AppError::bad_input("logs", "send 1 to 500 log lines"));
    }
    let mut change = Change::new(execution, actor, now);
    for (i, log) in logs.into_iter().enumerate() {
        change.log(log.parse(&format!("logs[{i}]"), now)?);
    }
    Ok(change)
}

pub fn create_checkpoint(
    execution: &Execution,
    input: CheckpointInput,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let checkpoint = input.parse(now)?;
    refuse_when_finished(execution)?;
    let mut change = Change::new(execution, actor, now);
    change.record_checkpoint(checkpoint);
    Ok(change)
}

/// Completed and cancelled executions take no more progress or checkpoints.
pub fn refuse_when_finished(execution: &Execution) -> AppResult<()> {
    if execution.status.is_terminal() {
        return Err(AppError::Conflict(format!(
            "execution is {}",
            execution.status.as_str()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::ID;
    use chrono::Utc;

    fn input(json: serde_json::Value) -> CreateExecutionInput {
        let value = async_graphql::Value::from_json(json).unwrap();
        <CreateExecutionInput as async_graphql::InputType>::parse(Some(value)).unwrap()
    }

    #[test]
    fn removing_a_webhook_twice_removes_it_once() {
        let created = create(
            input(serde_json::json!({ "orderId": "o", "serviceId": "s",
                "webhooks": [{ "url": "https://example.com/h", "events": ["EXECUTION_COMPLETED"] }] })),
            None,
            &StepKinds::new([]),
            "t",
            Utc::now(),
        )
        .unwrap();
        let webhook = created.webhooks_added[0].clone();
        let twice = UpdateExecutionInput {
            priority: None,
            assignee: None,
            timeout_ms: None,
            retry_policy: None,
            tags: None,
            metadata: None,
            add_webhooks: None,
            remove_webhooks: Some(vec![ID(webhook.id.clone()), ID(webhook.id.clone())]),
        };
        let change = update(&created.execution, &[webhook], twice, "t", Utc::now()).unwrap();
        assert_eq!(change.webhooks_removed.len(), 1);
    }
}
