//! What the maintenance loop does to executions: fail those that ran out of time,
//! record the periodic checkpoints of running ones, run retries that are due.

use super::{SCHEDULER, is_runnable, stale, system_error};
use crate::domain::change::Change;
use crate::domain::lifecycle::{self, fail_into};
use crate::domain::progress;
use crate::domain::records::*;
use crate::domain::status::ExecutionStatus;
use crate::domain::values::ExecutionError;
use crate::error::AppResult;

/// Whether a running execution has run longer than its `timeoutMs`, paused time
/// not counted.
pub fn has_timed_out(execution: &Execution, now: Timestamp) -> bool {
    let Some(started) = execution.metrics.started_at else {
        return false;
    };
    is_runnable(execution.status)
        && (now - started).num_milliseconds() - execution.paused_ms > execution.timeout_ms
}

/// FAILED with `TIMEOUT` (not retried) once the execution's time is up.
pub fn time_out(execution: &Execution, now: Timestamp) -> AppResult<Change> {
    if !has_timed_out(execution, now) {
        return Err(stale("the timeout"));
    }
    let mut change = Change::new(execution, SCHEDULER, now);
    let error = ExecutionError {
        code: "TIMEOUT".into(),
        message: format!("the execution ran longer than {} ms", execution.timeout_ms),
        recoverable: false,
        timestamp: Some(now),
        ..system_error("")
    };
    fail_into(&mut change, error, None)?;
    Ok(change)
}

/// A RUNNING execution records a checkpoint of where it stands, as it does every
/// checkpoint interval.
pub fn checkpoint_running(
    execution: &Execution,
    steps: &[Step],
    now: Timestamp,
) -> AppResult<Change> {
    if execution.status != ExecutionStatus::Running {
        return Err(stale("the checkpoint"));
    }
    let mut change = Change::new(execution, SCHEDULER, now);
    change.record_checkpoint(progress::checkpoint(steps, "interval", now));
    Ok(change)
}

/// A FAILED execution whose retry is due runs again (FAILED→RETRY→STARTING).
pub fn retry_due(execution: &Execution, steps: &[Step], now: Timestamp) -> AppResult<Change> {
    let due = execution.status == ExecutionStatus::Failed
        && execution.retry_at.is_some_and(|at| at <= now);
    if !due {
        return Err(stale("the retry"));
    }
    lifecycle::retry(execution, steps, SCHEDULER, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::failure;
    use crate::domain::inputs::ExecutionErrorInput;
    use crate::domain::schedule::claim;
    use crate::domain::status::StepStatus;
    use crate::domain::testing::{after, created, input};
    use crate::domain::values::EventType;
    use crate::error::AppError;
    use chrono::{TimeDelta, Utc};
    use serde_json::json;

    fn ms(n: i64) -> TimeDelta {
        TimeDelta::milliseconds(n)
    }

    /// RUNNING since `t0` with a 1 s timeout and one retry for `API_TIMEOUT`, its
    /// external step `x` claimed (attempt 1) under a lease until `t0` + 10 s.
    fn running_since(t0: Timestamp) -> (Execution, Vec<Step>) {
        let create = json!({ "orderId": "o", "serviceId": "s", "autoStart": true,
            "timeoutMs": 1000,
            "retryPolicy": { "maxRetries": 1, "jitter": false, "retryableErrors": ["API_TIMEOUT"] },
            "steps": [{ "id": "x", "name": "x", "handler": { "kind": "external" } }] });
        let change = created(create, &[], t0);
        let (execution, steps) = (change.execution, change.steps);
        assert_eq!(execution.status, ExecutionStatus::Running);
        let claimed = claim(
            &execution,
            &steps,
            &Default::default(),
            "x",
            "nonce",
            t0 + ms(10_000),
            "agent",
            t0,
        );
        after(&execution, &steps, claimed.expect("claimed"))
    }

    #[test]
    fn an_execution_times_out_when_its_running_time_passes_the_limit() {
        let t0 = Utc::now();
        let cases = [
            // (ms since start, ms paused, timed out)
            (999, 0, false),
            (1001, 0, true),
            (1001, 500, false),
            (1501, 500, true),
        ];
        for (elapsed, paused, timed_out) in cases {
            let (mut execution, _) = running_since(t0);
            execution.paused_ms = paused;
            let now = t0 + ms(elapsed);
            let label = format!("{elapsed} ms in, {paused} ms paused");
            assert_eq!(has_timed_out(&execution, now), timed_out, "{label}");
            match time_out(&execution, now) {
                Ok(change) => {
                    assert!(timed_out, "{label}");
                    assert_eq!(change.execution.status, ExecutionStatus::Failed);
                    let error = change.execution.error.expect("an error");
                    assert_eq!((error.code.as_str(), error.recoverable), ("TIMEOUT", false));
                }
                Err(_) => assert!(!timed_out, "{label}"),
            }
        }
    }

    #[test]
    fn a_lease_is_lost_once_it_ends_and_only_for_its_attempt() {
        let t0 = Utc::now();
        let (execution, steps) = running_since(t0);
        let lease_end = t0 + ms(10_000);
        let cases = [
            // (attempt, at, lost)
            (1, lease_end - ms(1), false),
            (1, lease_end, true),
            (2, lease_end, false),
        ];
        for (attempt, now, lost) in cases {
            let label = format!("attempt {attempt} at {now}");
            match failure::lose_lease(&execution, &steps, "x", attempt, 0.5, now) {
                Ok(change) => {
                    assert!(lost, "{label}");
                    let kinds: Vec<_> = change.events.iter().map(|e| e.kind).collect();
                    assert!(kinds.contains(&EventType::StepFailed), "{label}: {kinds:?}");
                    let (_, steps) = after(&execution, &steps, change);
                    assert_ne!(steps[0].status, StepStatus::Running, "{label}");
                }
                Err(error) => {
                    assert!(!lost, "{label}");
                    assert!(matches!(error, AppError::Conflict(_)), "{label}: {error:?}");
                }
            }
        }
    }

    #[test]
    fn a_retry_runs_when_it_is_due_and_not_before() {
        let t0 = Utc::now();
        let (execution, steps) = running_since(t0);
        let error: ExecutionErrorInput =
            input(json!({ "code": "API_TIMEOUT", "message": "m", "recoverable": true }));
        let failed = failure::fail_execution(&execution, error, 0.5, "t", t0).expect("failed");
        let (execution, steps) = after(&execution, &steps, failed);
        let due = execution.retry_at.expect("a retry is due");
        assert!(due > t0);
        assert!(retry_due(&execution, &steps, due - ms(1)).is_err(), "early");
        let retried = retry_due(&execution, &steps, due).expect("due");
        assert_ne!(retried.execution.status, ExecutionStatus::Failed);
    }
}
