//! Handing steps out: which pending steps are ready once a change is made, and the
//! jobs that ask a worker to run them.

use super::{StepJob, is_built_in, is_runnable};
use crate::domain::change::Change;
use crate::domain::progress;
use crate::domain::records::*;
use crate::domain::status::{ExecutionStatus, StepStatus};
use crate::domain::step_graph::unfinished_dependencies;
use crate::domain::values::EventType;

/// `settle` for a new execution, which was QUEUED with no steps before its change.
pub fn settle_new(change: &mut Change) {
    let before = Execution {
        status: ExecutionStatus::Queued,
        ..change.execution.clone()
    };
    settle(change, &before, &[]);
}

/// Brings the steps in line with the execution's new status; applied to every change.
/// While STARTING or RUNNING, every pending step whose dependencies are done is handed
/// out (`ready_at` = now); STARTING becomes RUNNING when no built-in step waits for a
/// worker. Otherwise nothing is handed out: built-in steps in flight go back to
/// PENDING (their attempt is over) and a retry is only kept while FAILED. A new
/// priority hands the waiting steps out again, at the new level.
pub fn settle(change: &mut Change, before: &Execution, before_steps: &[Step]) {
    // Readiness only moves with the status, the priority or a step: a log line or a
    // metric (the hot path) is left alone without looking at the steps.
    if change.steps.is_empty()
        && change.execution.status == before.status
        && change.execution.priority == before.priority
    {
        return;
    }
    let now = change.now;
    let status = change.execution.status;
    let reprioritised = before.priority != change.execution.priority;
    if status != ExecutionStatus::Failed {
        change.execution.retry_at = None;
    }
    let steps = progress::merged(before_steps, &change.steps);
    let mut touched = Vec::new();
    let mut waits_for_worker = false;
    // Only the status and the schedule move here, and never to or from done: a
    // step is cloned only when one of them moves.
    for step in &steps {
        let (mut step_status, mut schedule) = (step.status, step.schedule.clone());
        if is_runnable(status) {
            let handed_out = step.schedule.ready_at.is_some() && !reprioritised;
            if step.status == StepStatus::Pending
                && !handed_out
                && unfinished_dependencies(step, &steps).is_empty()
            {
                schedule.ready_at = Some(now);
            }
        } else if step.status == StepStatus::Running && is_built_in(step) {
            step_status = StepStatus::Pending;
            schedule = Default::default();
        } else if step.status == StepStatus::Pending {
            schedule.ready_at = None;
        }
        waits_for_worker |=
            is_built_in(step) && step_status == StepStatus::Pending && schedule.ready_at.is_some();
        if step_status != step.status || schedule != step.schedule {
            let mut updated = (*step).clone();
            updated.status = step_status;
            updated.schedule = schedule;
            touched.push(updated);
        }
    }
    for step in touched {
        change.put_step(step);
    }
    if status == ExecutionStatus::Starting && !waits_for_worker {
        enter_running(change);
    }
}

pub(super) fn enter_running(change: &mut Change) {
    if change.move_to(ExecutionStatus::Running).is_ok() {
        change.emit(EventType::ExecutionStarted, EventPayload::default(), None);
    }
}

/// The jobs a saved change asks for: its built-in steps handed out just now.
pub fn jobs(change: &Change) -> Vec<StepJob> {
    change
        .steps
        .iter()
        .filter(|s| hands_out(change, s))
        .map(|s| job_for(&change.execution, s))
        .collect()
}

/// Whether `change` hands `step` out to a worker (not to wait on a limit first).
pub fn hands_out(change: &Change, step: &Step) -> bool {
    is_built_in(step)
        && step.status == StepStatus::Pending
        && step.schedule.ready_at == Some(change.now)
        && step.schedule.waiting_on.is_none()
}

pub fn job_for(execution: &Execution, step: &Step) -> StepJob {
    StepJob {
        execution_id: execution.id.clone(),
        step_id: step.id.clone(),
        attempt: step.attempt,
        priority: execution.priority,
        ready_at: step.schedule.ready_at.unwrap_or(execution.updated_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle;
    use crate::domain::testing;
    use chrono::Utc;
    use serde_json::json;

    /// A new execution of `steps` (id, kind, dependencies), auto-started or not,
    /// settled as the service settles a create.
    fn created(steps: &[(&str, &str, &[&str])], auto_start: bool) -> Change {
        let steps: Vec<_> = (steps.iter())
            .map(|(id, kind, deps)| json!({ "id": id, "name": id, "handler": { "kind": kind }, "dependsOn": deps }))
            .collect();
        let input =
            json!({ "orderId": "o", "serviceId": "s", "steps": steps, "autoStart": auto_start });
        testing::created(input, &["echo"], Utc::now())
    }

    fn handed_out(change: &Change) -> String {
        let ready = change
            .steps
            .iter()
            .filter(|s| s.schedule.ready_at.is_some());
        ready.map(|s| s.id.as_str()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn a_new_execution_hands_out_what_is_ready_once_started() {
        let echo_chain: &[(&str, &str, &[&str])] = &[("a", "echo", &[]), ("b", "echo", &["a"])];
        let external: &[(&str, &str, &[&str])] = &[("x", "external", &[]), ("y", "echo", &[])];
        let only_external: &[(&str, &str, &[&str])] = &[("x", "external", &[])];
        let cases = [
            // (steps, autoStart, status after, steps handed out, worker jobs)
            (echo_chain, false, ExecutionStatus::Queued, "", ""),
            (echo_chain, true, ExecutionStatus::Starting, "a", "a"),
            (external, true, ExecutionStatus::Starting, "x y", "y"),
            // Nothing for a worker to pick up: RUNNING at once.
            (only_external, true, ExecutionStatus::Running, "x", ""),
        ];
        for (steps, auto_start, status, ready, queued) in cases {
            let change = created(steps, auto_start);
            let label = format!("{steps:?} autoStart={auto_start}");
            assert_eq!(change.execution.status, status, "{label}");
            assert_eq!(handed_out(&change), ready, "{label}");
            let jobs: Vec<String> = jobs(&change).into_iter().map(|j| j.step_id).collect();
            assert_eq!(jobs.join(" "), queued, "{label}");
        }
    }

    #[test]
    fn pausing_takes_back_what_was_handed_out() {
        let started = created(&[("x", "external", &[]), ("y", "external", &["x"])], true);
        assert_eq!(started.execution.status, ExecutionStatus::Running);
        assert_eq!(handed_out(&started), "x");
        let (execution, steps) = (started.execution.clone(), started.steps.clone());
        let now = Utc::now();
        let paused = lifecycle::pause(&execution, &steps, None, "t", now).unwrap();
        let (_, steps) = testing::after(&execution, &steps, paused);
        assert!(
            steps.iter().all(|s| s.schedule.ready_at.is_none()),
            "{steps:?}"
        );
    }
}
