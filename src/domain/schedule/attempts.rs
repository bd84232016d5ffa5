//! Attempts at a step: a worker's start (from a job, or going on with the next step
//! in the same change), the fence every report must hold, the outcome of a success,
//! and an external claimer's claim.

use async_graphql::Json;
use serde_json::{Map, Value};

use super::{Fence, SCHEDULER, enter_running, find, hands_out, is_runnable, settle, stale};
use crate::domain::change::Change;
use crate::domain::inputs::StepMetricsInput;
use crate::domain::lifecycle::complete_into;
use crate::domain::limits::{Admission, Usage};
use crate::domain::progress;
use crate::domain::records::*;
use crate::domain::status::{ExecutionStatus, StepStatus};
use crate::domain::step_graph::unfinished_dependencies;
use crate::domain::steps::{begin_attempt, complete_step};
use crate::domain::values::{EventType, ExecutionError, ExecutionResult};
use crate::error::{AppError, AppResult};

/// Starts the step a job names, for `owner` holding a lease until `lease_until`,
/// when its keys admit it (`usage`); otherwise the change leaves the step waiting,
/// saying on what. Refused (`CONFLICT`) when the job is stale: the execution is not
/// runnable, or the step already started, moved on or is not ready.
#[allow(clippy::too_many_arguments)]
pub fn begin(
    execution: &Execution,
    steps: &[Step],
    usage: &Usage,
    step_id: &str,
    attempt: i32,
    owner: &str,
    lease_until: Timestamp,
    now: Timestamp,
) -> AppResult<Change> {
    let step = startable(execution, steps, step_id, attempt)?;
    let mut change = Change::new(execution, SCHEDULER, now);
    if let Err(waiting) = start(&mut change, step, usage, owner, lease_until) {
        wait(&mut change, step, waiting);
    }
    Ok(change)
}

/// Why a step may not start yet: what it waits on (`limits::wait`), until
/// when for a rate, and the start the wait reserved.
pub struct Waiting {
    on: String,
    until: Option<Timestamp>,
    tats: Vec<(String, Timestamp)>,
}

/// Leaves `step` waiting within `change`: a rate's wait is due at its reserved start.
fn wait(change: &mut Change, step: &Step, waiting: Waiting) {
    let mut step = step.clone();
    step.schedule.waiting_on = Some(waiting.on);
    step.schedule.waiting_until = waiting.until;
    if let Some(until) = waiting.until {
        change.limits.due.push((step.id.clone(), until));
    }
    change.limits.tats.extend(waiting.tats);
    change.put_step(step);
}

/// The step, when attempt `attempt` of it may start now.
fn startable<'a>(
    execution: &Execution,
    steps: &'a [Step],
    step_id: &str,
    attempt: i32,
) -> AppResult<&'a Step> {
    let step = find(steps, step_id)?;
    if !is_runnable(execution.status)
        || step.status != StepStatus::Pending
        || step.attempt != attempt
        || step.schedule.ready_at.is_none()
        || !unfinished_dependencies(step, steps).is_empty()
    {
        return Err(stale("the job"));
    }
    Ok(step)
}

/// Starts the ready `step` within `change`, for `owner` holding a lease until
/// `lease_until` (a start moves no progress), holding a slot of each of its keys
/// with a concurrency limit; `Waiting` when its keys do not admit it now.
fn start(
    change: &mut Change,
    step: &Step,
    usage: &Usage,
    owner: &str,
    lease_until: Timestamp,
) -> Result<Step, Waiting> {
    let holds = match usage.admit(&change.execution, step, change.now) {
        Admission::Start { holds, tats } => {
            change.limits.tats.extend(tats);
            holds
        }
        Admission::Wait { on, until, tats } => return Err(Waiting { on, until, tats }),
    };
    if change.execution.status == ExecutionStatus::Starting {
        enter_running(change);
    }
    let mut step = as_begun(step, change.now);
    step.schedule.lease_expires_at = Some(lease_until);
    step.schedule.lease_owner = Some(owner.to_owned());
    step.schedule.holds.extend(holds);
    step.schedule.waiting_on = None;
    step.schedule.waiting_until = None;
    change.put_step(step.clone());
    let payload = EventPayload {
        step: Some(step.clone()),
        ..Default::default()
    };
    change.emit(EventType::StepStarted, payload, None);
    Ok(step)
}

/// A worker that finished a step goes on with one that its completion (`change`,
/// computed from `before` and `before_steps`) hands out, if `runs_here`: the step
/// starts within the same change, for `owner`, and skips the queue. Returns the
/// step as started; with none (or when its keys do not admit it now, `usage`),
/// `change` is left as the scheduler would settle it.
pub fn continue_with(
    change: &mut Change,
    before: &Execution,
    before_steps: &[Step],
    usage: &Usage,
    runs_here: impl Fn(&Step) -> bool,
    owner: &str,
    lease_until: Timestamp,
) -> Option<Step> {
    // An execution its completion left over budget goes on with nothing.
    crate::domain::limits::budget::enforce(change, before, usage).ok()?;
    settle(change, before, before_steps);
    crate::domain::limits::share::share_out(change, usage);
    let next = change
        .steps
        .iter()
        .find(|s| hands_out(change, s) && runs_here(s))?
        .clone();
    start(change, &next, usage, owner, lease_until).ok()
}

/// The waiting step as `begin` starts it (running, its next attempt): what a
/// contained handler runs with while the start commits.
pub fn as_begun(waiting: &Step, now: Timestamp) -> Step {
    let mut step = waiting.clone();
    begin_attempt(&mut step, now);
    step
}

/// Checks that `fence` still holds its step: running, same attempt, same owner, lease
/// not run out.
pub fn check_fence<'a>(steps: &'a [Step], fence: &Fence, now: Timestamp) -> AppResult<&'a Step> {
    let step = find(steps, &fence.step_id)?;
    let holds = step.status == StepStatus::Running
        && step.attempt == fence.attempt
        && step.schedule.lease_owner.as_deref() == Some(fence.owner.as_str())
        && step
            .schedule
            .lease_expires_at
            .is_some_and(|until| until > now);
    if holds {
        Ok(step)
    } else {
        Err(stale("the claim"))
    }
}

/// The step's attempt succeeded with `output`; completes the execution when it was
/// the last step (`result.output` = every step's output by id).
pub fn succeed(
    execution: &Execution,
    steps: &[Step],
    fence: &Fence,
    output: Option<Json<Value>>,
    metrics: Option<StepMetricsInput>,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    check_fence(steps, fence, now)?;
    let mut change = complete_step(
        execution,
        steps,
        &fence.step_id,
        output,
        metrics,
        actor,
        now,
    )?;
    if change.execution.status == ExecutionStatus::Running
        && let Some(result) = result_when_done(&progress::merged(steps, &change.steps))
    {
        complete_into(&mut change, result)?;
    }
    Ok(change)
}

/// Once every step is done: the execution's result, every step's output by id.
fn result_when_done(all: &[&Step]) -> Option<ExecutionResult> {
    if !all.iter().all(|s| s.status.is_done()) {
        return None;
    }
    let outputs: Map<String, Value> = all
        .iter()
        .map(|s| {
            let output = s.output.as_ref().map(|o| o.0.clone());
            (s.id.clone(), output.unwrap_or(Value::Null))
        })
        .collect();
    let completed = all
        .iter()
        .filter(|s| s.status == StepStatus::Completed)
        .count();
    Some(ExecutionResult {
        success: true,
        output: Some(Json(Value::Object(outputs))),
        summary: format!("{completed} of {} steps completed", all.len()),
        artifacts: Vec::new(),
        metadata: None,
    })
}

/// A failed attempt the system caused (lost worker, panic), recoverable.
pub fn system_error(message: &str) -> ExecutionError {
    ExecutionError {
        code: "SYSTEM_ERROR".into(),
        message: message.into(),
        stack: None,
        step: None,
        recoverable: true,
        retry_count: 0,
        context: None,
        timestamp: None,
    }
}

/// Lends a handed-out pending step to the external claimer `owner` (the claim's nonce)
/// until `lease_until`; its events name `claimer`, who claimed it.
#[allow(clippy::too_many_arguments)]
pub fn claim(
    execution: &Execution,
    steps: &[Step],
    usage: &Usage,
    step_id: &str,
    owner: &str,
    lease_until: Timestamp,
    claimer: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let step = find(steps, step_id)?;
    if execution.status != ExecutionStatus::Running {
        return Err(stale("the offer"));
    }
    let step =
        startable(execution, steps, step_id, step.attempt).map_err(|_| stale("the offer"))?;
    let mut change = Change::new(execution, claimer, now);
    start(&mut change, step, usage, owner, lease_until)
        .map_err(|waiting| AppError::Conflict(format!("the step waits on {}", waiting.on)))?;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle;
    use crate::domain::schedule::jobs;
    use crate::domain::testing::{after, created};
    use chrono::{TimeDelta, Utc};
    use serde_json::json;

    const WORKER: &str = "worker-1";

    /// RUNNING, with `a` started by `WORKER`; `b` (echo) and `c` (http) wait for it.
    fn a_running() -> (Execution, Vec<Step>) {
        let now = Utc::now();
        let input = json!({
            "orderId": "o", "serviceId": "s", "steps": [
                { "id": "a", "name": "A", "handler": { "kind": "echo" } },
                { "id": "b", "name": "B", "handler": { "kind": "echo" }, "dependsOn": ["a"] },
                { "id": "c", "name": "C", "handler": { "kind": "http" }, "dependsOn": ["a"] },
            ]
        });
        let created = created(input, &["echo", "http"], now);
        let (execution, steps) = (created.execution, created.steps);
        let started = lifecycle::start(&execution, "t", now).unwrap();
        let (execution, steps) = after(&execution, &steps, started);
        let lease = now + TimeDelta::seconds(30);
        let began = begin(
            &execution,
            &steps,
            &Usage::default(),
            "a",
            steps[0].attempt,
            WORKER,
            lease,
            now,
        )
        .unwrap();
        after(&execution, &steps, began)
    }

    fn completion_of_a(execution: &Execution, steps: &[Step]) -> Change {
        let fence = Fence {
            step_id: "a".into(),
            attempt: steps[0].attempt,
            owner: WORKER.into(),
        };
        succeed(execution, steps, &fence, None, None, SCHEDULER, Utc::now()).unwrap()
    }

    #[test]
    fn a_completion_starts_a_step_it_hands_out_that_runs_here() {
        let (execution, steps) = a_running();
        let mut change = completion_of_a(&execution, &steps);
        let lease = change.now + TimeDelta::seconds(30);
        let runs_here = |s: &Step| s.handler.kind == "echo";
        let started = continue_with(
            &mut change,
            &execution,
            &steps,
            &Usage::default(),
            runs_here,
            WORKER,
            lease,
        )
        .unwrap();
        assert_eq!(started.id, "b");
        assert_eq!(started.schedule.ready_at, Some(change.now));
        let (_, now_steps) = after(&execution, &steps, change.clone());
        let b = now_steps.iter().find(|s| s.id == "b").unwrap();
        assert_eq!(b.status, StepStatus::Running);
        assert_eq!(b.schedule.lease_owner.as_deref(), Some(WORKER));
        let queued: Vec<_> = jobs(&change).into_iter().map(|j| j.step_id).collect();
        assert_eq!(
            queued,
            ["c"],
            "the other step handed out still goes to the queue"
        );
        let kinds: Vec<_> = change.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds.first(), Some(&EventType::StepCompleted));
        assert_eq!(kinds.last(), Some(&EventType::StepStarted));
    }

    #[test]
    fn without_a_step_that_runs_here_the_completion_queues_them_all() {
        let (execution, steps) = a_running();
        let mut change = completion_of_a(&execution, &steps);
        let lease = change.now + TimeDelta::seconds(30);
        let started = continue_with(
            &mut change,
            &execution,
            &steps,
            &Usage::default(),
            |_| false,
            WORKER,
            lease,
        );
        assert!(started.is_none());
        let queued: Vec<_> = jobs(&change).into_iter().map(|j| j.step_id).collect();
        assert_eq!(queued, ["b", "c"]);
    }
}
