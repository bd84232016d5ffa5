//! Running one job: wait at the priority gate, start the step (fenced by its
//! attempt), run its handler under a renewed lease and the step's timeout, and report
//! the outcome. A contained handler (see `handlers`) starts while the start commits,
//! and its report follows the start into the same shared transaction when it is
//! quick; any other handler starts once the start is committed. A success may start
//! the next step of the execution in a free slot (`report_success`). A stale job
//! (its step already started, or its execution no longer runnable) is acknowledged
//! and dropped.

use chrono::Utc;
use rand::Rng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Scheduler;
use super::gate::Slot;
use super::queue::{Job, JobRunner};
use crate::clock;
use crate::domain::change::Change;
use crate::domain::records::{Step, Timestamp};
use crate::domain::schedule::{self, Fence, SCHEDULER, StepJob};
use crate::domain::snapshot::Snapshot;
use crate::domain::status::StepStatus;
use crate::domain::{failure, limits};
use crate::error::{AppError, AppResult};

/// A step attempt this process runs: started (or starting) for it, and tracked.
struct Attempt {
    execution_id: String,
    step: Step,
    /// When the step was handed out.
    ready_at: Timestamp,
    interrupt: CancellationToken,
    /// When the attempt started before its start committed: the task that waits
    /// for that commit (and interrupts the attempt if it is refused).
    began: Option<JoinHandle<()>>,
}

impl JobRunner for Scheduler {
    /// Runs the job on a task of its own, so that it finishes (and reports) even if
    /// the queue worker that delivered it stops meanwhile. A step's job is done for
    /// the queue once it has its slot: its level's queue worker then fetches the
    /// level's next job at once, so that every level always has its next job waiting
    /// at the gate and a slot goes to the best job queued, not to the best of those
    /// fetched while it was busy.
    async fn run(&self, job: Job) {
        let scheduler = self.clone();
        let detached = match job {
            Job::Step(job) => {
                let slot = self.0.gate.enter(job.priority, job.ready_at).await;
                self.track_task(async move { scheduler.run_step_in(slot, job, None).await });
                return;
            }
            Job::Retry { .. } | Job::Start { .. } => {
                tokio::spawn(async move { scheduler.run_planned(&job).await })
            }
            Job::Webhook {
                execution_id,
                sequence,
                webhook_id,
                attempt,
            } => tokio::spawn(async move {
                scheduler
                    .deliver(&execution_id, sequence, webhook_id.as_deref(), attempt)
                    .await
            }),
        };
        if let Err(error) = detached.await {
            tracing::error!(?error, "a job panicked");
        }
    }
}

impl Scheduler {
    /// Retries a failed execution whose retry is due, or starts one whose `startAt`
    /// has come (a stale job is dropped).
    pub(super) async fn run_planned(&self, job: &Job) {
        let service = &self.0.service;
        let (execution_id, applied) = match job {
            Job::Retry { execution_id, .. } => {
                let retry = service.as_scheduler("retryExecution", execution_id, |s, now| {
                    schedule::retry_due(&s.execution, &s.steps, now)
                });
                (execution_id, retry.await)
            }
            Job::Start { execution_id, .. } => {
                let start = service.as_scheduler("startExecution", execution_id, |s, now| {
                    limits::start_due(&s.execution, &s.usage, now)
                });
                (execution_id, start.await)
            }
            Job::Step(_) | Job::Webhook { .. } => return,
        };
        if let Err(error) = applied {
            tracing::debug!(%execution_id, ?error, "planned job dropped");
        }
    }

    /// Runs the job's step in `_slot` (and, through `report_success`, maybe the steps
    /// its completion hands out); `handed_out` is the job's step as the change that
    /// handed it out left it, when this process committed that change.
    pub(super) async fn run_step_in(&self, _slot: Slot, job: StepJob, handed_out: Option<Step>) {
        if let Some(attempt) = self.begin_job(&job, handed_out).await {
            self.run_attempt(attempt).await;
        }
    }

    /// Starts the job's step for this process; `None` when the job is stale.
    async fn begin_job(&self, job: &StepJob, handed_out: Option<Step>) -> Option<Attempt> {
        let owner = self.0.name.clone();
        let (step_id, attempt, scheduler) = (job.step_id.clone(), job.attempt, self.clone());
        let begin = move |s: &Snapshot, now| {
            schedule::begin(
                &s.execution,
                &s.steps,
                &s.usage,
                &step_id,
                attempt,
                &owner,
                scheduler.lease_until(now),
                now,
            )
        };
        if let Some(waiting) = self.contained_step(job, handed_out).await {
            // The attempt begins now, before its start commits: the start records
            // this time, when the work began.
            let began_at = clock::now();
            let step = schedule::as_begun(&waiting, began_at);
            let began = self
                .0
                .service
                .as_scheduler("beginStep", &job.execution_id, move |s, _| {
                    begin(s, began_at)
                });
            return self
                .attempt_at(&job.execution_id, step, job.ready_at, began)
                .await;
        }
        let step = match self
            .0
            .service
            .as_scheduler("beginStep", &job.execution_id, begin)
            .await
        {
            // A step its keys do not admit yet waits, and is not run here.
            Ok(change) => (change.steps.into_iter())
                .find(|s| s.id == job.step_id && s.status == StepStatus::Running)?,
            Err(error) => {
                tracing::debug!(?job, ?error, "stale job dropped");
                return None;
            }
        };
        let interrupt = CancellationToken::new();
        self.track(&job.execution_id, &step, &interrupt)
            .then(|| Attempt {
                execution_id: job.execution_id.clone(),
                step,
                ready_at: job.ready_at,
                interrupt,
                began: None,
            })
    }

    /// The attempt at `step` (as started) that this process runs once `began`, the
    /// change that starts it, is decided: a contained handler at once (interrupted
    /// if the change is refused), any other once the change is committed. `None`
    /// when the change is refused, or the attempt already runs here (a duplicate).
    async fn attempt_at(
        &self,
        execution_id: &str,
        step: Step,
        ready_at: Timestamp,
        began: impl Future<Output = AppResult<Change>> + Send + 'static,
    ) -> Option<Attempt> {
        let interrupt = CancellationToken::new();
        let tracked = self.track(execution_id, &step, &interrupt);
        let refused = interrupt.clone();
        let began = tokio::spawn(async move {
            if let Err(error) = began.await {
                if is_stale(&error) {
                    tracing::debug!(?error, "start refused");
                } else {
                    tracing::info!(?error, "start refused");
                }
                refused.cancel();
            }
        });
        if !tracked {
            return None;
        }
        let began = if self.is_contained(&step) {
            Some(began)
        } else {
            let _ = began.await;
            if interrupt.is_cancelled() {
                self.untrack(execution_id, &step);
                return None;
            }
            None
        };
        Some(Attempt {
            execution_id: execution_id.to_owned(),
            step,
            ready_at,
            interrupt,
            began,
        })
    }

    /// Runs the attempt's handler and queues the report of its outcome.
    async fn run_attempt(&self, attempt: Attempt) {
        let Attempt {
            execution_id,
            step,
            ready_at,
            interrupt,
            began,
        } = attempt;
        let waited = (Utc::now() - ready_at).to_std().unwrap_or_default();
        metrics::histogram!("exechub_step_dispatch_seconds").record(waited.as_secs_f64());
        let fence = Fence {
            step_id: step.id.clone(),
            attempt: step.attempt,
            owner: self.0.name.clone(),
        };
        let outcome = self
            .run_handler(&execution_id, &step, &fence, interrupt)
            .await;
        // The report records when the work ended, not when the report commits.
        let ended_at = clock::now();
        self.untrack(&execution_id, &step);
        let Some(outcome) = outcome else {
            tracing::info!(execution = %execution_id, step = %step.id, "step interrupted");
            metrics::counter!("exechub_steps_total", "outcome" => "interrupted").increment(1);
            return;
        };
        let outcome_label = if outcome.is_ok() {
            "succeeded"
        } else {
            "failed"
        };
        metrics::counter!("exechub_steps_total", "outcome" => outcome_label).increment(1);
        let failure = match outcome {
            Ok(output) => {
                self.report_success(&execution_id, fence, output, ended_at, began);
                return;
            }
            Err(failure) => failure,
        };
        let random = rand::rng().random::<f64>();
        let reported = self
            .0
            .service
            .as_scheduler("failStep", &execution_id, move |s, _| {
                let now = ended_at;
                let failure = crate::domain::values::ExecutionError {
                    timestamp: Some(now),
                    ..failure
                };
                failure::fail_fenced(
                    &s.execution,
                    &s.steps,
                    &fence,
                    failure,
                    random,
                    SCHEDULER,
                    now,
                )
            });
        self.commit_in_background(execution_id, reported_after(began, reported));
    }

    /// Lets a report commit (and its change be dispatched) on a task of its own, so
    /// that the worker's slot and queue job are free for the next job meanwhile: a
    /// slot bounds the handlers running, not the reports waiting for their
    /// transaction. A stopping process waits for it (`drain`); should the process
    /// die first, the step's lease runs out and it runs again.
    fn commit_in_background(
        &self,
        execution_id: String,
        reported: impl Future<Output = AppResult<Change>> + Send + 'static,
    ) {
        self.track_task(async move { committed(&execution_id, reported).await });
    }

    /// Reports a success. When the completion is decided and this process has a slot
    /// no other job waits for, the same change starts a step the completion hands out,
    /// in that slot (`schedule::continue_with`): a chain's next step skips the queue
    /// and a commit. A contained next step starts at once, as a queued one does; any
    /// other once its start is committed. The reporting worker does not wait for the
    /// decision: its slot is free as soon as the report is queued. `ended_at`, when
    /// the handler returned, is the step's completion time.
    fn report_success(
        &self,
        execution_id: &str,
        fence: Fence,
        output: Option<serde_json::Value>,
        ended_at: Timestamp,
        began: Option<JoinHandle<()>>,
    ) {
        let (started, next) = oneshot::channel::<(Slot, Step)>();
        let (scheduler, owner) = (self.clone(), self.0.name.clone());
        let completed =
            self.0
                .service
                .as_scheduler("completeStep", execution_id, move |s, decided| {
                    let mut change = schedule::succeed(
                        &s.execution,
                        &s.steps,
                        &fence,
                        output.map(async_graphql::Json),
                        None,
                        SCHEDULER,
                        ended_at,
                    )?;
                    // What follows happens now: the steps handed out, and the one continued
                    // here, begin when the completion is decided.
                    change.now = decided;
                    let runs_here =
                        |step: &Step| scheduler.0.handlers.get(&step.handler.kind).is_some();
                    if let Some(slot) = scheduler.0.gate.try_enter()
                        && let Some(step) = schedule::continue_with(
                            &mut change,
                            &s.execution,
                            &s.steps,
                            &s.usage,
                            runs_here,
                            &owner,
                            scheduler.lease_until(decided),
                        )
                    {
                        let _ = started.send((slot, step));
                    }
                    Ok(change)
                });
        let completed = reported_after(began, completed);
        let (scheduler, execution_id) = (self.clone(), execution_id.to_owned());
        self.track_task(async move {
            let Ok((_slot, step)) = next.await else {
                return committed(&execution_id, completed).await;
            };
            let ready_at = step.schedule.ready_at.unwrap_or_else(Utc::now);
            if let Some(attempt) = scheduler
                .attempt_at(&execution_id, step, ready_at, completed)
                .await
            {
                scheduler.run_attempt(attempt).await;
            }
        });
    }
}

/// A report, dispatched after the start of its attempt when that start was still
/// committing (`began`): the start's events go out before the outcome's. The report
/// is queued for the next shared transaction already, so that it may share the
/// start's.
async fn reported_after(
    began: Option<JoinHandle<()>>,
    reported: impl Future<Output = AppResult<Change>>,
) -> AppResult<Change> {
    if let Some(began) = began {
        let _ = began.await;
    }
    reported.await
}

/// Waits for a report to commit and its change to be dispatched; logs a refusal.
async fn committed(execution_id: &str, reported: impl Future<Output = AppResult<Change>>) {
    if let Err(error) = reported.await {
        tracing::info!(execution = %execution_id, ?error, "outcome refused");
    }
}

/// A refused report is only worth a debug line when it is the expected kind.
pub(super) fn is_stale(error: &AppError) -> bool {
    matches!(error, AppError::Conflict(_) | AppError::NotFound(_))
}
