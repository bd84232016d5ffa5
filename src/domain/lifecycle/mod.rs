//! The lifecycle commands of an execution. Each takes the current execution and its
//! steps and returns the `Change` it makes, or the reason it is refused; no I/O
//! happens here. The moves between statuses (start, pause, resume, cancel,
//! complete, fail, retry) are here; creating and updating an execution are in
//! `definition`, what agents report about a running one (progress, metrics, logs,
//! checkpoints) in `reports`.

mod definition;
mod reports;

pub use definition::*;
pub use reports::*;

use crate::domain::change::Change;
use crate::domain::inputs::*;
use crate::domain::progress;
use crate::domain::records::*;
use crate::domain::status::{ExecutionStatus, StepStatus};
use crate::domain::validate::{self};
use crate::domain::values::*;
use crate::error::{AppError, AppResult};

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
    let (mut change, reason) = moving(execution, ExecutionStatus::Paused, reason, actor, now)?;
    change.record_checkpoint(progress::checkpoint(steps, "pause", now));
    change.emit(EventType::ExecutionPaused, EventPayload::default(), reason);
    Ok(change)
}

/// A change of `execution` that moves it to `to` by the client's hand, and the
/// client's `reason` for it, checked, for its event.
fn moving(
    execution: &Execution,
    to: ExecutionStatus,
    reason: Option<String>,
    actor: &str,
    now: Timestamp,
) -> AppResult<(Change, Option<String>)> {
    let reason = reason.map(|r| validate::text("reason", r)).transpose()?;
    let mut change = Change::new(execution, actor, now);
    change.move_to(to)?;
    Ok((change, reason))
}

pub fn resume(execution: &Execution, actor: &str, now: Timestamp) -> AppResult<Change> {
    if execution.status != ExecutionStatus::Paused {
        // RETRY/STARTING → RUNNING are allowed hops, but they are the scheduler's, not a resume.
        return Err(AppError::InvalidTransition {
            from: execution.status.as_str(),
            to: ExecutionStatus::Running.as_str(),
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
    let (mut change, reason) = moving(execution, ExecutionStatus::Cancelled, reason, actor, now)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::step_graph::StepKinds;
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
            true,
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
            budget: None,
            remove_webhooks: Some(vec![ID(webhook.id.clone()), ID(webhook.id.clone())]),
        };
        let change = update(&created.execution, &[webhook], twice, "t", Utc::now()).unwrap();
        assert_eq!(change.webhooks_removed.len(), 1);
    }
}
