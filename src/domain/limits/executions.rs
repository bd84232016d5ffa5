//! Starting an execution under limits on executions: one whose keys have no slot
//! free stays QUEUED, saying what it waits on, until an execution of the key
//! settles; a retry of one that settled takes its slots again. An execution created
//! to start later starts here too, when its time comes.

use super::Usage;
use super::wait::WaitKind;
use crate::domain::change::Change;
use crate::domain::lifecycle;
use crate::domain::records::{Execution, Step, Timestamp};
use crate::domain::schedule::SCHEDULER;
use crate::domain::status::ExecutionStatus;
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

/// The scheduler starts a QUEUED execution whose `startAt` has come, as
/// `startExecution` starts one; a start already made (by a client, another
/// process, or waiting on a limit since) is refused as stale.
pub fn start_due(execution: &Execution, usage: &Usage, now: Timestamp) -> AppResult<Change> {
    let due = execution.status == ExecutionStatus::Queued
        && execution.waiting_on.is_none()
        && execution.scheduled_at.is_some_and(|at| at <= now);
    if !due {
        return Err(AppError::Conflict(
            "the scheduled start is no longer current".into(),
        ));
    }
    start_execution(execution, usage, SCHEDULER, now)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inputs::CreateExecutionInput;
    use crate::domain::lifecycle::create;
    use crate::domain::step_graph::StepKinds;
    use crate::domain::testing::{after, created, input};
    use chrono::{SubsecRound, TimeDelta, Utc};
    use serde_json::json;

    #[test]
    fn an_execution_starts_when_its_start_at_comes_and_once() {
        let t0 = Utc::now();
        let later = (t0 + TimeDelta::seconds(60)).trunc_subsecs(3);
        let change = created(
            json!({ "orderId": "o", "serviceId": "s",
            "startAt": later.to_rfc3339(), "steps": [{ "id": "a", "name": "A" }] }),
            &[],
            t0,
        );
        assert_eq!(change.execution.status, ExecutionStatus::Queued);
        assert_eq!(change.execution.scheduled_at, Some(later));
        let (execution, steps) = (change.execution, change.steps);
        let usage = Usage::default();
        assert!(start_due(&execution, &usage, later - TimeDelta::milliseconds(1)).is_err());
        let started = start_due(&execution, &usage, later).expect("due");
        assert_eq!(started.execution.status, ExecutionStatus::Starting);
        let (execution, _) = after(&execution, &steps, started);
        let twice = start_due(&execution, &usage, later);
        assert!(matches!(twice, Err(AppError::Conflict(_))), "{twice:?}");
    }

    #[test]
    fn a_start_at_already_past_starts_at_once_and_a_far_one_is_refused() {
        let now = Utc::now();
        let past = created(
            json!({ "orderId": "o", "serviceId": "s",
            "startAt": (now - TimeDelta::seconds(1)).to_rfc3339() }),
            &[],
            now,
        );
        assert_ne!(past.execution.status, ExecutionStatus::Queued);
        let far: CreateExecutionInput = input(json!({ "orderId": "o", "serviceId": "s",
            "startAt": (now + TimeDelta::days(400)).to_rfc3339() }));
        let refused = create(far, None, &StepKinds::new([]), "t", now, true).map(|_| ());
        assert!(
            matches!(&refused, Err(AppError::BadInput { field, .. }) if field == "input.startAt"),
            "{refused:?}"
        );
    }
}
