//! Starting an execution under limits on executions: one whose keys have no slot
//! free stays QUEUED, saying what it waits on, until an execution of the key
//! settles; a retry of one that settled takes its slots again.

use super::Usage;
use super::wait::WaitKind;
use crate::domain::change::Change;
use crate::domain::lifecycle;
use crate::domain::records::{Execution, Step, Timestamp};
use crate::error::{AppError, AppResult};

/// QUEUED→STARTING when the execution's keys admit it (`usage`), holding a slot of
/// each key limited on executions; otherwise a change that leaves it QUEUED and
/// waiting. A transition the status table forbids is refused as `lifecycle::start`
/// refuses it.
pub fn start_execution(
    execution: &Execution,
    usage: &Usage,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    match usage.admit_execution(execution) {
        Ok(holds) => {
            let mut change = lifecycle::start(execution, actor, now)?;
            change.execution.holds = holds;
            change.execution.waiting_on = None;
            Ok(change)
        }
        Err(key) => {
            lifecycle::start(execution, actor, now)?;
            let mut change = Change::new(execution, actor, now);
            change.execution.waiting_on = Some(WaitKind::Executions.on(&key));
            Ok(change)
        }
    }
}

/// A client's retry of a FAILED execution: one that settled gave its slots back, so
/// it takes them again, and is refused (`CONFLICT`) while its keys have none free.
pub fn retry_execution(
    execution: &Execution,
    steps: &[Step],
    usage: &Usage,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let holds = if execution.holds.is_empty() {
        usage
            .admit_execution(execution)
            .map_err(|key| AppError::Conflict(format!("the execution waits on executions {key}")))?
    } else {
        execution.holds.clone()
    };
    let mut change = lifecycle::retry(execution, steps, actor, now)?;
    change.execution.holds = holds;
    Ok(change)
}
