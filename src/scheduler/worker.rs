//! Running one job: wait at the priority gate, start the step (fenced by its
//! attempt), run its handler under a renewed lease and the step's timeout, and report
//! the outcome. A stale job (its step already started, or its execution no longer
//! runnable) is acknowledged and dropped.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::Scheduler;
use super::handlers::{HandlerResult, StepCall, error};
use super::queue::{Job, JobRunner};
use crate::domain::records::{Step, Timestamp};
use crate::domain::schedule::{self, Fence, SCHEDULER, StepJob};
use crate::error::{AppError, AppResult};
use crate::store::batch::BatchedRule;

impl JobRunner for Scheduler {
    /// Runs the job on a task of its own, so that it finishes (and reports) even if
    /// the queue worker that delivered it stops meanwhile.
    async fn run(&self, job: Job) {
        let scheduler = self.clone();
        if let Err(error) = tokio::spawn(async move { scheduler.run_detached(job).await }).await {
            tracing::error!(?error, "a job panicked");
        }
    }
}

impl Scheduler {
    pub(super) async fn run_detached(&self, job: Job) {
        match job {
            Job::Step(job) => self.run_step(job).await,
            Job::Retry { execution_id, .. } => {
                let applied = self
                    .apply("retryExecution", &execution_id, |s, now| {
                        schedule::retry_due(&s.execution, &s.steps, now)
                    })
                    .await;
                if let Err(error) = applied {
                    tracing::debug!(%execution_id, ?error, "retry job dropped");
                }
            }
            Job::Webhook {
                execution_id,
                sequence,
                webhook_id,
                attempt,
            } => {
                self.deliver(&execution_id, sequence, webhook_id.as_deref(), attempt)
                    .await
            }
        }
    }

    /// Applies a scheduler rule as the system principal, in the next shared
    /// transaction, and dispatches its change.
    pub(super) async fn apply<F>(
        &self,
        action: &'static str,
        execution_id: &str,
        rule: F,
    ) -> AppResult<crate::domain::change::Change>
    where
        F: FnOnce(
                &crate::store::changes::Snapshot,
                Timestamp,
            ) -> AppResult<crate::domain::change::Change>
            + Send
            + 'static,
    {
        let change = self
            .0
            .committer
            .apply(BatchedRule {
                action,
                execution_id: execution_id.to_owned(),
                rule: Box::new(move |snapshot| rule(snapshot, Utc::now())),
            })
            .await?;
        self.dispatch(&change).await;
        Ok(change)
    }

    pub(super) fn lease_until(&self, now: Timestamp) -> Timestamp {
        now + self.lease_delta()
    }

    fn lease_delta(&self) -> TimeDelta {
        TimeDelta::from_std(self.0.config.lease).unwrap_or_default()
    }

    async fn run_step(&self, job: StepJob) {
        let _slot = self.0.gate.enter(job.priority, job.ready_at).await;
        let owner = self.0.name.clone();
        let (step_id, attempt, lease) = (job.step_id.clone(), job.attempt, self.lease_delta());
        let began = self
            .apply("beginStep", &job.execution_id, {
                let owner = owner.clone();
                move |s, now| {
                    schedule::begin(
                        &s.execution,
                        &s.steps,
                        &step_id,
                        attempt,
                        &owner,
                        now + lease,
                        now,
                    )
                }
            })
            .await;
        let step = match began {
            Ok(change) => change.steps.into_iter().find(|s| s.id == job.step_id),
            Err(error) => {
                tracing::debug!(?job, ?error, "stale job dropped");
                return;
            }
        };
        let Some(step) = step else { return };
        let waited = (Utc::now() - job.ready_at).to_std().unwrap_or_default();
        metrics::histogram!("exechub_step_dispatch_seconds").record(waited.as_secs_f64());
        let fence = Fence {
            step_id: step.id.clone(),
            attempt: step.attempt,
            owner,
        };
        let Some(outcome) = self.run_handler(&job.execution_id, &step, &fence).await else {
            tracing::info!(execution = %job.execution_id, step = %step.id, "step interrupted");
            metrics::counter!("exechub_steps_total", "outcome" => "interrupted").increment(1);
            return;
        };
        let outcome_label = if outcome.is_ok() {
            "succeeded"
        } else {
            "failed"
        };
        metrics::counter!("exechub_steps_total", "outcome" => outcome_label).increment(1);
        let reported = match outcome {
            Ok(output) => {
                let fence = fence.clone();
                self.apply("completeStep", &job.execution_id, move |s, now| {
                    schedule::succeed(
                        &s.execution,
                        &s.steps,
                        &fence,
                        output.map(async_graphql::Json),
                        None,
                        SCHEDULER,
                        now,
                    )
                })
                .await
            }
            Err(failure) => {
                let random = rand::rng().random::<f64>();
                let fence = fence.clone();
                self.apply("failStep", &job.execution_id, move |s, now| {
                    let failure = crate::domain::types::ExecutionError {
                        timestamp: Some(now),
                        ..failure
                    };
                    schedule::fail(
                        &s.execution,
                        &s.steps,
                        &fence,
                        failure,
                        random,
                        SCHEDULER,
                        now,
                    )
                })
                .await
            }
        };
        if let Err(error) = reported {
            tracing::info!(execution = %job.execution_id, step = %step.id, ?error, "outcome refused");
        }
    }

    /// Runs the step's handler until it finishes (the outcome), or is interrupted
    /// (`None`): by a change that took the step back, or by losing the lease.
    async fn run_handler(
        &self,
        execution_id: &str,
        step: &Step,
        fence: &Fence,
    ) -> Option<HandlerResult> {
        let Some(handler) = self.0.handlers.get(&step.handler.kind) else {
            let message = format!("no handler for step kind `{}`", step.handler.kind);
            return Some(Err(error("SYSTEM_ERROR", message, false)));
        };
        let key = (execution_id.to_owned(), step.id.clone());
        let interrupt = CancellationToken::new();
        self.0
            .running
            .lock()
            .expect("running lock")
            .insert(key.clone(), (fence.attempt, interrupt.clone()));
        let renewal = tokio::spawn(self.clone().keep_lease(
            execution_id.to_owned(),
            fence.clone(),
            interrupt.clone(),
        ));
        let call = StepCall {
            execution_id: execution_id.to_owned(),
            step_id: step.id.clone(),
            attempt: step.attempt,
            input: step.input.as_ref().map(|i| i.0.clone()),
            config: step.handler.config.as_ref().map(|c| c.0.clone()),
        };
        let mut running = tokio::spawn(handler.run(call));
        let timeout = step
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.max(0) as u64))
            .unwrap_or(Duration::MAX);
        let outcome = tokio::select! {
            joined = tokio::time::timeout(timeout, &mut running) => Some(match joined {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(error("SYSTEM_ERROR", format!("the handler failed: {panic}"), true)),
                Err(_) => Err(error(
                    "TIMEOUT",
                    format!("the step ran longer than {} ms", timeout.as_millis()),
                    true,
                )),
            }),
            _ = interrupt.cancelled() => None,
        };
        running.abort();
        renewal.abort();
        self.0.running.lock().expect("running lock").remove(&key);
        outcome
    }

    /// Renews the lease every third of its length while the handler runs; interrupts
    /// the handler once the lease cannot be renewed (the step was taken back).
    async fn keep_lease(self, execution_id: String, fence: Fence, interrupt: CancellationToken) {
        let mut ticks = tokio::time::interval(self.0.config.lease / 3);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let now = Utc::now();
            match self
                .0
                .store
                .renew_lease(&execution_id, &fence, now, self.lease_until(now))
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    interrupt.cancel();
                    return;
                }
                Err(error) => tracing::warn!(?error, "lease renewal failed"),
            }
        }
    }
}

/// A refused report is only worth a debug line when it is the expected kind.
pub(super) fn is_stale(error: &AppError) -> bool {
    matches!(error, AppError::Conflict(_) | AppError::NotFound(_))
}
