//! What agents and operators report about a running execution: progress, metrics,
//! logs and checkpoints. Completed and cancelled executions take none.

use crate::domain::change::Change;
use crate::domain::inputs::*;
use crate::domain::records::*;
use crate::domain::validate::Progress;
use crate::domain::values::*;
use crate::error::{AppError, AppResult};

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
    crate::domain::metrics::record(&mut change.execution.metrics, input)?;
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
