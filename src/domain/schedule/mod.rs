//! The scheduler's rules, with no I/O: which steps are handed out when
//! (`handing_out`), what a worker or an external claimer may do with an attempt at a
//! step and what its outcome does to the execution (`attempts`), and what the
//! maintenance loop does to executions that ran out of time or are due again
//! (`upkeep`). Every attempt at a step is fenced: a report must name the attempt
//! (and lease owner) that is current.

mod attempts;
mod handing_out;
mod upkeep;

use serde::{Deserialize, Serialize};

pub use attempts::*;
pub use handing_out::*;
pub use upkeep::*;

use super::records::{Step, Timestamp};
use super::status::ExecutionStatus;
use super::values::Priority;
use crate::error::{AppError, AppResult};

pub use super::step_graph::EXTERNAL;

/// The actor named on changes the scheduler makes by itself.
pub const SCHEDULER: &str = "scheduler";

/// A queued job: run this attempt of this step. Carries nothing the database does
/// not also hold; `priority` and `ready_at` only order the queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepJob {
    pub execution_id: String,
    pub step_id: String,
    pub attempt: i32,
    pub priority: Priority,
    pub ready_at: Timestamp,
}

/// Who holds a running attempt: the step, the attempt number and the lease owner (a
/// worker's name, or the nonce of a claim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub step_id: String,
    pub attempt: i32,
    pub owner: String,
}

fn is_built_in(step: &Step) -> bool {
    step.handler.kind != EXTERNAL
}

fn is_runnable(status: ExecutionStatus) -> bool {
    matches!(status, ExecutionStatus::Starting | ExecutionStatus::Running)
}

fn stale(what: &str) -> AppError {
    AppError::Conflict(format!("{what} is no longer current"))
}

fn find<'a>(steps: &'a [Step], id: &str) -> AppResult<&'a Step> {
    steps
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| AppError::not_found(format!("step `{id}`")))
}
