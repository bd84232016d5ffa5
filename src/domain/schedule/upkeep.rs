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
