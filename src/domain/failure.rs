//! One failure semantics, whoever reports it: a built-in handler through its worker,
//! an agent through its claim, a client through `failStep` or `failExecution`, or the
//! reaper for an attempt whose lease ran out. A failure is logged (an ERROR line);
//! when it is recoverable, the execution's retry policy accepts its code and retries
//! are left, the execution goes FAILED with a retry scheduled (`willRetry`, a WARN
//! line "Retrying after …") and the scheduler later walks it RETRY → STARTING →
//! RUNNING with its failed steps back to PENDING; otherwise it stays FAILED.

use std::time::Duration;

use serde_json::json;

use super::change::Change;
use super::inputs::ExecutionErrorInput;
use super::lifecycle::fail_into;
use super::records::*;
use super::retry;
use super::schedule::{Fence, SCHEDULER, check_fence, system_error};
use super::status::{ExecutionStatus, StepStatus};
use super::steps::{fail_parsed_step, find};
use super::values::{BackoffStrategy, ExecutionError, LogLevel, RetryPolicy};
use crate::error::{AppError, AppResult};

/// How an execution without a retry policy treats lost attempts (a worker killed,
/// an agent gone silent): two more tries, 1 s then 2 s later, as BullMQ retries a
/// stalled job, so that a step that kills its worker every time ends FAILED.
pub const LOST_ATTEMPTS: RetryPolicy = RetryPolicy {
    max_retries: 2,
    backoff: BackoffStrategy::Exponential,
    initial_delay_ms: 1_000,
    max_delay_ms: 30_000,
    jitter: false,
    retryable_errors: None,
};

/// A retry the policy grants: the `number`th of `of`, after `wait`.
struct PlannedRetry {
    number: i32,
    of: i32,
    wait: Duration,
}

fn planned(
    policy: Option<&RetryPolicy>,
    error: &ExecutionError,
    retries: i32,
    random: f64,
) -> Option<PlannedRetry> {
    let policy = policy.filter(|p| retry::should_retry(Some(p), error, retries))?;
    Some(PlannedRetry {
        number: retries + 1,
        of: policy.max_retries,
        wait: retry::delay(policy, retries + 1, random),
    })
}

/// The attempt `fence` holds failed with `error` (a worker's or a claimer's report).
pub fn fail_fenced(
    execution: &Execution,
    steps: &[Step],
    fence: &Fence,
    error: ExecutionError,
    random: f64,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    check_fence(steps, fence, now)?;
    fail_step(
        execution,
        steps,
        &fence.step_id,
        error,
        None,
        random,
        actor,
        now,
    )
}

/// The step failed with `error`; `fallback` is the policy when the execution has
/// none. The execution fails with it when running, to be retried if the policy says.
#[allow(clippy::too_many_arguments)]
pub fn fail_step(
    execution: &Execution,
    steps: &[Step],
    step_id: &str,
    error: ExecutionError,
    fallback: Option<&RetryPolicy>,
    random: f64,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let retries = find(steps, step_id)?.retries;
    let policy = execution.retry_policy.as_ref().or(fallback);
    let retry = planned(policy, &error, retries, random);
    let retry_at = retry.as_ref().map(|r| at(now, r));
    let mut change = fail_parsed_step(execution, steps, step_id, error, retry_at, actor, now)?;
    let error = change
        .steps
        .iter()
        .find(|s| s.id == step_id)
        .and_then(|s| s.error.clone())
        .unwrap_or_else(|| system_error("step failed"));
    log_failure(&mut change, Some(step_id), &error, retry.as_ref());
    if change.execution.status == ExecutionStatus::Running {
        fail_into(&mut change, error, retry_at)?;
    }
    Ok(change)
}

/// A client reports that the step failed (`failStep`).
pub fn fail_reported_step(
    execution: &Execution,
    steps: &[Step],
    step_id: &str,
    error: ExecutionErrorInput,
    random: f64,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let error = error.parse(now)?;
    fail_step(execution, steps, step_id, error, None, random, actor, now)
}

/// A client reports that the execution failed as a whole (`failExecution`).
pub fn fail_execution(
    execution: &Execution,
    error: ExecutionErrorInput,
    random: f64,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let error = error.parse(now)?;
    let policy = execution.retry_policy.as_ref();
    let retry = planned(policy, &error, execution.metrics.retries, random);
    let mut change = Change::new(execution, actor, now);
    let step = error.step.as_ref().map(|id| id.to_string());
    log_failure(&mut change, step.as_deref(), &error, retry.as_ref());
    fail_into(&mut change, error, retry.as_ref().map(|r| at(now, r)))?;
    Ok(change)
}

/// A running step whose lease ran out: its attempt failed with the recoverable
/// `SYSTEM_ERROR` "worker lost" (naming the attempt and who held it), retried under
/// the execution's policy or else `LOST_ATTEMPTS`.
pub fn lose_lease(
    execution: &Execution,
    steps: &[Step],
    step_id: &str,
    attempt: i32,
    random: f64,
    now: Timestamp,
) -> AppResult<Change> {
    let step = find(steps, step_id)?;
    let expired = step
        .schedule
        .lease_expires_at
        .is_some_and(|until| until <= now);
    if step.status != StepStatus::Running || step.attempt != attempt || !expired {
        return Err(AppError::Conflict("the lease is no longer current".into()));
    }
    let owner = step.schedule.lease_owner.clone().unwrap_or_default();
    let error = lost_attempt("worker lost", attempt, &owner, now);
    if execution.status != ExecutionStatus::Running {
        // A paused execution hands the step out again when it resumes.
        return run_again(execution, steps, step_id, error, now);
    }
    let lost = Some(&LOST_ATTEMPTS);
    fail_step(
        execution, steps, step_id, error, lost, random, SCHEDULER, now,
    )
}

/// A worker that stops (SIGTERM) gives back an attempt it could not finish in its
/// grace time: the lost attempt is recorded, and the step runs again at once, not
/// when the lease runs out. A stop is the service's doing, not the step's failure:
/// it neither counts against the retry policy nor fails the execution.
pub fn give_back(
    execution: &Execution,
    steps: &[Step],
    fence: &Fence,
    now: Timestamp,
) -> AppResult<Change> {
    check_fence(steps, fence, now)?;
    let error = lost_attempt("worker stopped", fence.attempt, &fence.owner, now);
    run_again(execution, steps, &fence.step_id, error, now)
}

/// The attempt was lost (`error`, on record as STEP_FAILED and an ERROR line) and
/// the step goes back to PENDING, to be handed out again as soon as the execution
/// runs.
fn run_again(
    execution: &Execution,
    steps: &[Step],
    step_id: &str,
    error: ExecutionError,
    now: Timestamp,
) -> AppResult<Change> {
    let mut change = fail_parsed_step(
        execution,
        steps,
        step_id,
        error.clone(),
        Some(now),
        SCHEDULER,
        now,
    )?;
    log_failure(&mut change, Some(step_id), &error, None);
    if let Some(step) = change.steps.iter_mut().find(|s| s.id == step_id) {
        step.status = StepStatus::Pending;
        step.completed_at = None;
        step.duration_ms = None;
    }
    Ok(change)
}

/// The recoverable `SYSTEM_ERROR` of a lost attempt, naming it and who held it.
fn lost_attempt(message: &str, attempt: i32, owner: &str, now: Timestamp) -> ExecutionError {
    ExecutionError {
        timestamp: Some(now),
        context: Some(async_graphql::Json(
            json!({ "attempt": attempt, "leaseOwner": owner }),
        )),
        ..system_error(message)
    }
}

fn at(now: Timestamp, retry: &PlannedRetry) -> Timestamp {
    super::clock::after(now, retry.wait)
}

/// The ERROR line of a failure and, when it will be retried, the WARN line saying
/// when ("Retrying after 1s (attempt 1/3)").
fn log_failure(
    change: &mut Change,
    step: Option<&str>,
    error: &ExecutionError,
    retry: Option<&PlannedRetry>,
) {
    let context = json!({ "code": error.code, "recoverable": error.recoverable });
    let message = format!("{}: {}", error.code, error.message);
    change.note(LogLevel::Error, step, message, Some(context.clone()));
    if let Some(retry) = retry {
        let message = retry::retry_message(retry.wait, retry.number, retry.of);
        change.note(LogLevel::Warn, step, message, Some(context));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{created, input};
    use crate::domain::values::EventType;
    use chrono::Utc;

    /// A RUNNING execution (one external step) whose policy allows `max_retries`
    /// for the codes listed, `retries` of them spent already.
    fn running(max_retries: Option<i32>, retries: i32) -> Execution {
        let mut input = json!({ "orderId": "o", "serviceId": "s", "autoStart": true,
            "steps": [{ "id": "x", "name": "x", "handler": { "kind": "external" } }] });
        if let Some(max) = max_retries {
            input["retryPolicy"] =
                json!({ "maxRetries": max, "jitter": false, "retryableErrors": ["API_TIMEOUT"] });
        }
        let mut execution = created(input, &[], Utc::now()).execution;
        execution.metrics.retries = retries;
        execution
    }

    fn error(code: &str, recoverable: bool) -> ExecutionErrorInput {
        input(json!({ "code": code, "message": "m", "recoverable": recoverable }))
    }

    #[test]
    fn a_failure_is_retried_only_when_the_policy_grants_it() {
        let cases = [
            // (maxRetries, retries spent, code, recoverable, retried)
            (Some(2), 0, "API_TIMEOUT", true, true),
            (Some(2), 1, "API_TIMEOUT", true, true),
            (Some(2), 2, "API_TIMEOUT", true, false),
            (Some(2), 0, "API_TIMEOUT", false, false),
            (Some(2), 0, "OCR_UNREADABLE", true, false),
            (Some(0), 0, "API_TIMEOUT", true, false),
            (None, 0, "API_TIMEOUT", true, false),
        ];
        for (max, spent, code, recoverable, retried) in cases {
            let execution = running(max, spent);
            assert_eq!(execution.status, ExecutionStatus::Running);
            let now = Utc::now();
            let change =
                fail_execution(&execution, error(code, recoverable), 0.5, "t", now).unwrap();
            let label = format!("max {max:?}, spent {spent}, {code}, recoverable {recoverable}");
            assert_eq!(change.execution.status, ExecutionStatus::Failed, "{label}");
            let failed = (change.events.iter())
                .find(|e| e.kind == EventType::ExecutionFailed)
                .expect("an EXECUTION_FAILED event");
            assert_eq!(failed.payload.will_retry, Some(retried), "{label}");
            assert_eq!(change.execution.retry_at.is_some(), retried, "{label}");
            if retried {
                assert!(change.execution.retry_at.unwrap() > now, "{label}");
            }
        }
    }
}
