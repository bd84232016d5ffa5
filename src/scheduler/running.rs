//! The attempts this process runs, by (execution, step): which one is current here
//! (so a duplicate job is dropped and a change that ends an attempt can interrupt
//! it), and whether a step's handler is contained, so it may begin before its start
//! commits.

use std::collections::hash_map::Entry;

use tokio_util::sync::CancellationToken;

use super::Scheduler;
use crate::domain::records::Step;
use crate::domain::schedule::StepJob;
use crate::domain::status::StepStatus;

impl Scheduler {
    /// The job's step when it still waits for this attempt and its handler is
    /// contained: such a handler may start before its start commits. The step is read
    /// (with the steps of other jobs delivered meanwhile) unless the job comes with it
    /// (`handed_out`); a failed read only means the ordinary start, which reads under
    /// lock anyway.
    pub(super) async fn contained_step(
        &self,
        job: &StepJob,
        handed_out: Option<Step>,
    ) -> Option<Step> {
        let step = match handed_out {
            Some(step) => step,
            None => {
                let key = (job.execution_id.clone(), job.step_id.clone());
                self.0.step_reader.call(key).await??
            }
        };
        let contained = self.is_contained(&step);
        let waiting = step.status == StepStatus::Pending
            && step.attempt == job.attempt
            && step.schedule.ready_at.is_some();
        (contained && waiting).then_some(step)
    }

    /// Whether this process runs the step's kind with a contained handler, and may
    /// begin it before its start commits: not while limits are in force, since a
    /// start they do not admit leaves the step waiting.
    pub(super) fn is_contained(&self, step: &Step) -> bool {
        (self.0.handlers.get(&step.handler.kind)).is_some_and(|handler| handler.is_contained())
            && self.0.store.limits().is_empty()
    }

    /// Records the attempt as running here, interrupted by `interrupt` when a change
    /// ends it; false when this attempt already runs here (a duplicate job).
    pub(super) fn track(
        &self,
        execution_id: &str,
        step: &Step,
        interrupt: &CancellationToken,
    ) -> bool {
        let mut running = self.0.running.lock().expect("running lock");
        match running.entry((execution_id.to_owned(), step.id.clone())) {
            Entry::Occupied(entry) if entry.get().0 == step.attempt => {
                tracing::debug!(execution_id, step = %step.id, "duplicate job dropped");
                false
            }
            entry => {
                entry.insert_entry((step.attempt, interrupt.clone()));
                true
            }
        }
    }

    /// Forgets the attempt once it stopped, unless a later attempt took its place.
    pub(super) fn untrack(&self, execution_id: &str, step: &Step) {
        let mut running = self.0.running.lock().expect("running lock");
        if let Entry::Occupied(entry) = running.entry((execution_id.to_owned(), step.id.clone()))
            && entry.get().0 == step.attempt
        {
            entry.remove();
        }
    }
}
