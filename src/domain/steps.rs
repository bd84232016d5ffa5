//! The step commands clients drive directly (start, complete, fail, skip). Each
//! returns the `Change` to the execution: the step, the recomputed progress and
//! metrics, and the STEP_* event (plus EXECUTION_PROGRESS when progress moved).

use async_graphql::Json;
use serde_json::Value;

use super::change::Change;
use super::inputs::{StartStepInput, StepMetricsInput};
use super::limits::{Admission, Usage};
use super::progress;
use super::records::*;
use super::status::{ExecutionStatus, StepStatus};
use super::step_graph::unfinished_dependencies;
use super::validate::{self, MAX_STEPS};
use super::values::{EventType, ExecutionError, StepHandler};
use crate::error::{AppError, AppResult};

/// Steps may be reported on while the execution is starting, running or paused (a
/// step claimed before a pause may still finish).
fn require_reportable(execution: &Execution) -> AppResult<()> {
    match execution.status {
        ExecutionStatus::Starting | ExecutionStatus::Running | ExecutionStatus::Paused => Ok(()),
        other => Err(AppError::Conflict(format!(
            "execution is {}; steps can be reported only while it is running",
            other.as_str()
        ))),
    }
}

pub(super) fn find<'a>(steps: &'a [Step], id: &str) -> AppResult<&'a Step> {
    steps
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| AppError::not_found(format!("step `{id}`")))
}

/// Saves the step, refreshes progress, and emits the step's event (and the progress
/// event when progress moved).
pub(super) fn finish_change(
    mut change: Change,
    steps: &[Step],
    step: Step,
    kind: EventType,
    payload: EventPayload,
    reason: Option<String>,
) -> Change {
    let before = change.execution.progress;
    change.put_step(step.clone());
    let all = progress::merged(steps, &change.steps);
    progress::refresh(&mut change.execution, &all);
    change.emit(
        kind,
        EventPayload {
            step: Some(step),
            ..payload
        },
        reason,
    );
    if change.execution.progress != before {
        change.emit(EventType::ExecutionProgress, EventPayload::default(), None);
    }
    change
}

/// Starts a step, adding it when its id is new (steps can be discovered while running).
pub fn start_step(
    execution: &Execution,
    steps: &[Step],
    usage: &Usage,
    input: StartStepInput,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    if execution.status != ExecutionStatus::Running {
        return Err(AppError::Conflict(format!(
            "execution is {}; steps start only while it is RUNNING",
            execution.status.as_str()
        )));
    }
    let id = validate::id("step.id", input.id)?.0;
    let name = validate::opt_short("step.name", input.name)?;
    let assignee = input
        .assignee
        .map(|a| a.parse("step.assignee"))
        .transpose()?;
    let step_input = validate::opt_json("step.input", input.input)?;
    let mut step = match steps.iter().find(|s| s.id == id) {
        Some(existing) => {
            let waiting = unfinished_dependencies(existing, steps);
            if !waiting.is_empty() {
                return Err(AppError::Conflict(format!(
                    "step `{id}` waits for {}",
                    waiting.join(", ")
                )));
            }
            existing.clone()
        }
        None => {
            if steps.len() >= MAX_STEPS {
                return Err(AppError::bad_input(
                    "step.id",
                    format!("an execution has at most {MAX_STEPS} steps"),
                ));
            }
            Step {
                id: id.clone(),
                name: name.clone().unwrap_or_else(|| id.clone()),
                index: steps.len() as i32,
                status: StepStatus::Pending,
                depends_on: Vec::new(),
                handler: StepHandler {
                    kind: "external".into(),
                    config: None,
                },
                assignee: None,
                input: None,
                output: None,
                error: None,
                started_at: None,
                completed_at: None,
                duration_ms: None,
                timeout_ms: None,
                retries: 0,
                attempt: 0,
                metadata: None,
                concurrency_key: None,
                schedule: Default::default(),
            }
        }
    };
    step.status.check(StepStatus::Running)?;
    // Its keys' limits hold for a step a client starts as for one a worker starts.
    let mut change = Change::new(execution, actor, now);
    match usage.admit(execution, &step, now) {
        Admission::Start { holds, tats } => {
            step.schedule.holds.extend(holds);
            change.limits.tats.extend(tats);
        }
        Admission::Wait { on, .. } => {
            return Err(AppError::Conflict(format!("step `{id}` waits on {on}")));
        }
    }
    begin_attempt(&mut step, now);
    if let Some(name) = name {
        step.name = name;
    }
    if assignee.is_some() {
        step.assignee = assignee;
    }
    if step_input.is_some() {
        step.input = step_input;
    }
    Ok(finish_change(
        change,
        steps,
        step,
        EventType::StepStarted,
        EventPayload::default(),
        None,
    ))
}

/// A new attempt of `step` starts now: RUNNING, with the next fencing number.
pub(super) fn begin_attempt(step: &mut Step, now: Timestamp) {
    step.status = StepStatus::Running;
    step.attempt += 1;
    step.started_at = Some(now);
    step.completed_at = None;
    step.duration_ms = None;
    step.error = None;
}

pub fn complete_step(
    execution: &Execution,
    steps: &[Step],
    step_id: &str,
    output: Option<Json<Value>>,
    metrics: Option<StepMetricsInput>,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    require_reportable(execution)?;
    let output = validate::opt_json("output", output)?;
    let mut step = find(steps, step_id)?.clone();
    step.status.check(StepStatus::Completed)?;
    let mut change = Change::new(execution, actor, now);
    if let Some(metrics) = metrics {
        super::metrics::record_step(&mut change.execution.metrics, metrics)?;
    }
    step.status = StepStatus::Completed;
    step.output = output;
    step.schedule = Default::default();
    step.completed_at = Some(now);
    step.duration_ms = step
        .started_at
        .map(|started| (now - started).num_milliseconds().max(0));
    if let Some(ms) = step.duration_ms {
        change
            .execution
            .metrics
            .step_durations
            .get_or_insert_with(Default::default)
            .0
            .insert(step.id.clone(), ms);
    }
    Ok(finish_change(
        change,
        steps,
        step,
        EventType::StepCompleted,
        EventPayload::default(),
        None,
    ))
}

/// Fails the step with an already checked `error`; `next_retry_at` is when it will
/// run again, if it will (the STEP_FAILED event says so).
pub fn fail_parsed_step(
    execution: &Execution,
    steps: &[Step],
    step_id: &str,
    mut error: ExecutionError,
    next_retry_at: Option<Timestamp>,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    require_reportable(execution)?;
    let mut step = find(steps, step_id)?.clone();
    step.status.check(StepStatus::Failed)?;
    error.step = Some(step.id.clone().into());
    error.retry_count = step.retries;
    step.status = StepStatus::Failed;
    step.error = Some(error.clone());
    step.completed_at = Some(now);
    step.duration_ms = step
        .started_at
        .map(|started| (now - started).num_milliseconds().max(0));
    step.schedule = Default::default();
    let change = Change::new(execution, actor, now);
    Ok(finish_change(
        change,
        steps,
        step,
        EventType::StepFailed,
        EventPayload {
            error: Some(error),
            will_retry: Some(next_retry_at.is_some()),
            next_retry_at,
            ..Default::default()
        },
        None,
    ))
}

pub fn skip_step(
    execution: &Execution,
    steps: &[Step],
    step_id: &str,
    reason: Option<String>,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    require_reportable(execution)?;
    let reason = reason.map(|r| validate::text("reason", r)).transpose()?;
    let mut step = find(steps, step_id)?.clone();
    step.status.check(StepStatus::Skipped)?;
    step.status = StepStatus::Skipped;
    step.completed_at = Some(now);
    let change = Change::new(execution, actor, now);
    Ok(finish_change(
        change,
        steps,
        step,
        EventType::StepSkipped,
        EventPayload::default(),
        reason,
    ))
}
