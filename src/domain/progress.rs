//! How far an execution has got, derived from its steps: progress in percent, the
//! step counters of its metrics, and the state a checkpoint records.

use std::borrow::Borrow;

use serde_json::{Map, Value, json};

use async_graphql::Json;

use super::records::{Checkpoint, Execution, Step, Timestamp, new_id};
use super::status::StepStatus;

/// Recomputes the step counters, and progress unless a client set it explicitly.
pub fn refresh<S: Borrow<Step>>(execution: &mut Execution, steps: &[S]) {
    let total = steps.len();
    let statuses = || steps.iter().map(|s| <S as Borrow<Step>>::borrow(s).status);
    let done = statuses().filter(|s| s.is_done()).count();
    execution.metrics.steps_total = total as i32;
    execution.metrics.steps_completed =
        statuses().filter(|s| *s == StepStatus::Completed).count() as i32;
    if !execution.progress_explicit && total > 0 {
        execution.progress = (done as f64 * 100.0 / total as f64 * 100.0).round() / 100.0;
    }
}

/// Applies `changed` (new or updated steps) to `steps` in place.
pub fn merge_into(steps: &mut Vec<Step>, changed: &[Step]) {
    for step in changed {
        match steps.iter_mut().find(|s| s.id == step.id) {
            Some(existing) => existing.clone_from(step),
            None => steps.push(step.clone()),
        }
    }
}

/// The steps as they will be once `changed` (new or updated steps) is applied,
/// borrowed from both (a rule looks at every step, and changes few).
pub fn merged<'a>(steps: &'a [Step], changed: &'a [Step]) -> Vec<&'a Step> {
    let mut all: Vec<&Step> = steps.iter().collect();
    for step in changed {
        match all.iter_mut().find(|s| s.id == step.id) {
            Some(existing) => *existing = step,
            None => all.push(step),
        }
    }
    all
}

/// The step being worked on: the first running one, else the first pending one.
pub fn current_step(steps: &[Step]) -> Option<&Step> {
    steps
        .iter()
        .find(|s| s.status == StepStatus::Running)
        .or_else(|| steps.iter().find(|s| s.status == StepStatus::Pending))
}

/// `{currentStep, totalSteps, completedSteps, pendingSteps, variables, results}`.
pub fn checkpoint_state(steps: &[Step]) -> Value {
    let ids = |wanted: fn(StepStatus) -> bool| -> Vec<&str> {
        steps
            .iter()
            .filter(|s| wanted(s.status))
            .map(|s| s.id.as_str())
            .collect()
    };
    let results: Map<String, Value> = steps
        .iter()
        .filter_map(|s| s.output.as_ref().map(|o| (s.id.clone(), o.0.clone())))
        .collect();
    json!({
        "currentStep": current_step(steps).map(|s| s.id.as_str()),
        "totalSteps": steps.len(),
        "completedSteps": ids(StepStatus::is_done),
        "pendingSteps": ids(|s| matches!(s, StepStatus::Pending | StepStatus::Running | StepStatus::Failed)),
        "variables": {},
        "results": results,
    })
}

/// A checkpoint of where the execution stands, saying why it was taken.
pub fn checkpoint(steps: &[Step], reason: &str, now: Timestamp) -> Checkpoint {
    Checkpoint {
        id: new_id(),
        timestamp: now,
        step: current_step(steps).map(|s| s.id.clone()),
        state: Json(checkpoint_state(steps)),
        metadata: Some(Json(json!({ "reason": reason }))),
    }
}
