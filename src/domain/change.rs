//! A `Change` is what one command does to one execution: the new execution row, the
//! steps, logs, checkpoints and webhooks it writes, and the events it emits, each with
//! the next gapless sequence. Rules build a `Change` without I/O; `store` saves it in
//! one transaction, under the lock it read the execution with.

use super::limits::KeyEffects;
use super::records::*;
use super::status::ExecutionStatus;
use super::values::{EventType, LogLevel};
use crate::error::{AppError, AppResult};

#[derive(Clone, Debug)]
pub struct Change {
    pub execution: Execution,
    pub steps: Vec<Step>,
    pub logs: Vec<LogEntry>,
    pub checkpoints: Vec<Checkpoint>,
    pub events: Vec<Event>,
    pub webhooks_added: Vec<Webhook>,
    pub webhooks_removed: Vec<String>,
    pub actor: String,
    pub now: Timestamp,
    /// The execution is inserted rather than updated.
    pub is_new: bool,
    /// With `is_new`: the client's idempotency key, unique per tenant.
    pub idempotency_key: Option<String>,
    /// What the change does to the limited keys (`domain::limits::account`).
    pub limits: KeyEffects,
}

impl Change {
    pub fn new(execution: &Execution, actor: &str, now: Timestamp) -> Self {
        let mut execution = execution.clone();
        execution.updated_at = now;
        Change {
            execution,
            steps: Vec::new(),
            logs: Vec::new(),
            checkpoints: Vec::new(),
            events: Vec::new(),
            webhooks_added: Vec::new(),
            webhooks_removed: Vec::new(),
            actor: actor.to_owned(),
            now,
            is_new: false,
            idempotency_key: None,
            limits: KeyEffects::default(),
        }
    }

    /// Folds in a later change of the same execution, computed from the state this one
    /// leaves, so that both are saved by one write with their events in order.
    pub fn absorb(&mut self, later: Change) {
        self.execution = later.execution;
        super::progress::merge_into(&mut self.steps, &later.steps);
        self.logs.extend(later.logs);
        self.checkpoints.extend(later.checkpoints);
        self.events.extend(later.events);
        self.webhooks_added.extend(later.webhooks_added);
        self.webhooks_removed.extend(later.webhooks_removed);
        self.limits.absorb(later.limits);
        self.now = later.now;
    }

    /// Appends an event with the next sequence, carrying the execution's status and
    /// progress as they are now.
    pub fn emit(&mut self, kind: EventType, payload: EventPayload, reason: Option<String>) {
        self.execution.last_sequence += 1;
        self.events.push(Event {
            id: new_id(),
            execution_id: self.execution.id.clone(),
            sequence: self.execution.last_sequence,
            kind,
            timestamp: self.now,
            status: self.execution.status,
            progress: self.execution.progress,
            payload: Box::new(payload),
            actor: Some(self.actor.clone()),
            reason,
        });
    }

    /// Moves the execution to `to` if the transition table allows it, keeping the
    /// timing metrics (start, completion, duration, paused time) in step.
    pub fn move_to(&mut self, to: ExecutionStatus) -> AppResult<()> {
        let execution = &mut self.execution;
        execution.status.check(to)?;
        let now = self.now;
        match to {
            ExecutionStatus::Running => {
                if execution.metrics.started_at.is_none() {
                    execution.metrics.started_at = Some(now);
                }
                if let Some(paused_at) = execution.paused_at.take() {
                    execution.paused_ms += (now - paused_at).num_milliseconds().max(0);
                }
            }
            ExecutionStatus::Paused => execution.paused_at = Some(now),
            ExecutionStatus::Completed | ExecutionStatus::Failed | ExecutionStatus::Cancelled => {
                execution.metrics.completed_at = Some(now);
                execution.metrics.duration_ms = execution
                    .metrics
                    .started_at
                    .map(|started| (now - started).num_milliseconds().max(0));
            }
            ExecutionStatus::Retry => {
                execution.metrics.completed_at = None;
                execution.metrics.duration_ms = None;
            }
            ExecutionStatus::Queued | ExecutionStatus::Starting => {}
        }
        execution.status = to;
        Ok(())
    }

    /// Saves a checkpoint and emits its CHECKPOINT_CREATED event.
    pub fn record_checkpoint(&mut self, checkpoint: Checkpoint) {
        self.checkpoints.push(checkpoint.clone());
        self.emit(
            EventType::CheckpointCreated,
            EventPayload {
                checkpoint: Some(checkpoint),
                ..Default::default()
            },
            None,
        );
    }

    /// Saves a log line and emits its LOG_APPENDED event.
    pub fn log(&mut self, log: LogEntry) {
        self.logs.push(log.clone());
        self.emit(
            EventType::LogAppended,
            EventPayload {
                log: Some(log),
                ..Default::default()
            },
            None,
        );
    }

    /// Logs a line (about a step, or the whole execution) written by the service
    /// itself.
    pub fn note(
        &mut self,
        level: LogLevel,
        step_id: Option<&str>,
        message: String,
        context: Option<serde_json::Value>,
    ) {
        let log = LogEntry {
            id: new_id(),
            timestamp: self.now,
            level,
            message,
            step: step_id.map(str::to_owned),
            context: context.map(async_graphql::Json),
            metadata: None,
        };
        self.log(log);
    }

    /// Records a changed or new step (the last write of a step id wins).
    pub fn put_step(&mut self, step: Step) {
        self.steps.retain(|s| s.id != step.id);
        self.steps.push(step);
    }

    /// The step `step_id` as this change wrote it: what a step command answers.
    pub fn into_step(self, step_id: &str) -> AppResult<Step> {
        (self.steps.into_iter().find(|s| s.id == step_id))
            .ok_or_else(|| AppError::Internal(format!("step `{step_id}` was not written")))
    }
}

/// The changes of one execution committed together, in runs that share an audit
/// row: the scheduler's consecutive changes are one run (a burst of starts and
/// completions is one entry), a client's command is a run of its own.
pub fn audit_runs<T>(
    changes: &[T],
    by_scheduler: impl Fn(&T) -> bool,
) -> std::slice::ChunkBy<'_, T, impl FnMut(&T, &T) -> bool> {
    changes.chunk_by(move |a, b| by_scheduler(a) && by_scheduler(b))
}

/// Coalesces the progress of changes committed together: one execution's changes of
/// one shared transaction, in order, the first computed from the state that ended
/// with event `last_sequence`. No one can see the progress between them, so only the
/// last EXECUTION_PROGRESS event is kept (each event still carries the progress after
/// it), and the events are numbered again, gapless from `last_sequence + 1`.
pub fn coalesce_progress(changes: &mut [&mut Change], last_sequence: i64) {
    let is_progress = |event: &Event| event.kind == EventType::ExecutionProgress;
    let kept = changes.iter().enumerate().rev().find_map(|(at, change)| {
        let event = change.events.iter().rposition(is_progress)?;
        Some((at, event))
    });
    let mut sequence = last_sequence;
    for (at, change) in changes.iter_mut().enumerate() {
        let mut index = 0;
        change.events.retain(|event| {
            let keep = !is_progress(event) || kept == Some((at, index));
            index += 1;
            keep
        });
        for event in &mut change.events {
            sequence += 1;
            event.sequence = sequence;
        }
        change.execution.last_sequence = sequence;
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::sample;
    use EventType::*;

    #[test]
    fn the_schedulers_consecutive_changes_share_an_audit_row() {
        // 's' a change by the scheduler, 'c' a client's command.
        let cases = [
            ("sss", vec!["sss"]),
            ("c", vec!["c"]),
            ("ssc", vec!["ss", "c"]),
            ("cc", vec!["c", "c"]),
            ("scs", vec!["s", "c", "s"]),
            ("sscss", vec!["ss", "c", "ss"]),
            ("", vec![]),
        ];
        for (changes, expected) in cases {
            let by: Vec<char> = changes.chars().collect();
            let runs: Vec<String> = audit_runs(&by, |c| *c == 's')
                .map(|run| run.iter().collect())
                .collect();
            assert_eq!(runs, expected, "{changes}");
        }
    }

    #[test]
    fn changes_committed_together_keep_their_last_progress_and_gapless_sequences() {
        let mut execution = sample::history(&mut rand::rng(), 0, Utc::now(), 1)
            .unwrap()
            .execution;
        let first = execution.last_sequence;
        let emitted: [&[EventType]; 4] = [
            &[StepCompleted, ExecutionProgress],
            &[StepStarted],
            &[StepCompleted, ExecutionProgress],
            &[LogAppended],
        ];
        let mut changes = Vec::new();
        for kinds in emitted {
            let mut change = Change::new(&execution, "t", Utc::now());
            for kind in kinds {
                change.emit(*kind, EventPayload::default(), None);
            }
            execution = change.execution.clone();
            changes.push(change);
        }
        coalesce_progress(&mut changes.iter_mut().collect::<Vec<_>>(), first);
        let events: Vec<(i64, EventType)> = (changes.iter())
            .flat_map(|c| c.events.iter().map(|e| (e.sequence - first, e.kind)))
            .collect();
        let expected = [
            (1, StepCompleted),
            (2, StepStarted),
            (3, StepCompleted),
            (4, ExecutionProgress),
            (5, LogAppended),
        ];
        assert_eq!(events, expected);
        let last: Vec<i64> = (changes.iter())
            .map(|c| c.execution.last_sequence - first)
            .collect();
        assert_eq!(last, [1, 2, 4, 5]);
    }
}
