//! The embedded job scheduler. Every process has one: once the service committed a
//! change, it queues the jobs the change asks for, or starts them itself when it has
//! free worker slots (`AfterCommit`). Worker processes also run them
//! (`start_workers`): apalis delivers jobs from one queue per priority level, the
//! priority gate orders them, the worker runs the step's handler under a lease (or
//! delivers a webhook), and the maintenance loop reaps lost leases, times executions
//! out and re-queues what the queue lost.

mod drain;
pub mod egress;
mod firing;
pub mod gate;
pub mod handlers;
mod handling;
mod maintenance;
pub mod queue;
mod queue_gauges;
mod running;
mod step_reads;
mod waiting;
mod webhooks;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SchedulerConfig;
use crate::domain::change::Change;
use crate::domain::records::Timestamp;
use crate::domain::schedule::{self, StepJob};
use crate::domain::status::{ExecutionStatus, StepStatus};
use crate::domain::values::EventType;
use crate::service::{AfterCommit, Service};
use crate::store::Store;
use gate::PriorityGate;
use handlers::Registry;
use queue::{Job, Queue};

#[derive(Clone)]
pub struct Scheduler(Arc<Inner>);

struct Inner {
    /// The scheduler's own pool: its reads, lease renewals and delivery records.
    store: Store,
    /// Where the scheduler's rules are applied, as every change is.
    service: Service,
    /// Where queued jobs read the steps they start from: in shared reads.
    step_reader: step_reads::StepReader,
    queue: Queue,
    /// Posts webhooks; follows no redirects (a redirect could lead anywhere).
    webhook_http: egress::Egress,
    config: SchedulerConfig,
    handlers: Registry,
    gate: Arc<PriorityGate>,
    /// This process's name, unique per process: the owner of the leases it takes.
    name: String,
    /// Attempts running in this process, by (execution, step): their attempt and the
    /// token that interrupts them.
    running: Mutex<HashMap<(String, String), (i32, CancellationToken)>>,
    /// Whether this process runs steps (`start_workers`).
    workers_started: AtomicBool,
    /// Cancelled when the process stops: its queue workers and maintenance end.
    stopping: CancellationToken,
    /// The steps running here and the reports and jobs on their way to the
    /// database and the queue: what a stopping process waits for.
    tasks: TaskTracker,
}

impl Scheduler {
    /// Opens the configured queue and follows every commit of `service`.
    /// `handlers` are the step kinds workers can run; `store` is a pool of the
    /// database for the scheduler alone.
    pub async fn open(
        store: Store,
        service: Service,
        config: SchedulerConfig,
        data_dir: &std::path::Path,
        handlers: Registry,
    ) -> anyhow::Result<Self> {
        crate::telemetry::recorder();
        let queue = crate::app::while_locked(|| {
            Queue::open(
                config.redis_url.as_deref(),
                data_dir,
                &config.queue_prefix,
                config.poll_interval,
            )
        })
        .await
        .context("opening the queue")?;
        let name = format!(
            "{}-{}-{}",
            config.worker_name,
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let scheduler = Scheduler(Arc::new(Inner {
            gate: PriorityGate::new(config.concurrency, config.priority_aging),
            step_reader: step_reads::start(store.clone()),
            store,
            service: service.clone(),
            queue,
            webhook_http: egress::Egress::new(config.allow_private_destinations, false)?,
            config,
            handlers,
            name,
            running: Mutex::new(HashMap::new()),
            workers_started: AtomicBool::new(false),
            stopping: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }));
        service.set_after_commit(Box::new(Follower(Arc::downgrade(&scheduler.0))));
        Ok(scheduler)
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// How many jobs this process took from the queue that wait for a worker slot.
    pub fn jobs_waiting_for_a_slot(&self) -> usize {
        self.0.gate.waiting()
    }

    /// Runs this process's workers and maintenance loop until the process ends.
    pub fn start_workers(&self) {
        self.0.workers_started.store(true, Ordering::Relaxed);
        let lookahead = self.0.config.concurrency;
        self.0.queue.spawn_workers(
            &self.0.name,
            lookahead,
            Arc::new(self.clone()),
            self.0.stopping.clone(),
        );
        let maintenance = maintenance::Maintenance {
            service: self.0.service.clone(),
            store: self.0.store.clone(),
            queue: self.0.queue.clone(),
            config: self.0.config.clone(),
            waking: self.waking(),
        };
        tokio::spawn(maintenance.run(self.0.stopping.clone()));
        let (service, store) = (self.0.service.clone(), self.0.store.clone());
        tokio::spawn(firing::run(service, store, self.0.stopping.clone()));
        tracing::info!(worker = %self.0.name, concurrency = lookahead, redis = self.0.queue.is_redis(), "workers started");
    }

    /// After a change is committed: queues the jobs it asks for (steps handed out,
    /// webhook deliveries, a retry scheduled) and interrupts this process's attempts
    /// it ended. The jobs are queued on a task of their own, so that whoever
    /// committed the change (a client waiting for its answer) does not wait for the
    /// queue; a failure to queue is logged, and the reconciler queues the job later,
    /// as it does when the process dies first.
    fn dispatch(&self, change: &Change) {
        self.interrupt_ended(change);
        let steps = self
            .start_here(change)
            .into_iter()
            .map(|job| (Job::Step(job), Duration::ZERO));
        let deliveries = webhooks::jobs(change)
            .into_iter()
            .map(|job| (job, Duration::ZERO));
        let mut jobs: Vec<(Job, Duration)> = steps.chain(deliveries).collect();
        if !change.limits.is_empty() {
            self.follow_waits(change);
        }
        if let Some((job, at)) = planned(change) {
            let delay = (at - Utc::now()).to_std().unwrap_or_default();
            jobs.push((job.clone(), delay));
            self.run_on_time(job, delay);
        }
        if !jobs.is_empty() {
            let scheduler = self.clone();
            self.track_task(async move { scheduler.0.queue.push_or_warn(jobs).await });
        }
    }

    /// Starts in this process, without the queue, the steps it has free worker slots
    /// for (no other job waiting for them); returns the rest, to be queued. A job
    /// started here is in no queue: if this process dies before the step's start
    /// commits, the reconciler queues it again.
    fn start_here(&self, change: &Change) -> Vec<StepJob> {
        let jobs = schedule::jobs(change);
        if !self.0.workers_started.load(Ordering::Relaxed) {
            return jobs;
        }
        let mut queued = Vec::new();
        for job in jobs {
            match self.0.gate.try_enter() {
                Some(slot) => {
                    let scheduler = self.clone();
                    let step = change.steps.iter().find(|s| s.id == job.step_id).cloned();
                    self.track_task(async move { scheduler.run_step_in(slot, job, step).await });
                }
                None => queued.push(job),
            }
        }
        queued
    }

    /// Runs a planned retry or start when it is due from this process too: a delayed
    /// job on Redis is only promoted at its queue's next poll, which may be a second
    /// late. Whichever comes first runs it; the other finds it done.
    fn run_on_time(&self, job: Job, delay: Duration) {
        let scheduler = self.clone();
        let planned: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
            tokio::time::sleep(delay).await;
            scheduler.run_planned(&job).await;
        });
        tokio::spawn(planned);
    }

    /// When a lease taken `now` runs out.
    pub(super) fn lease_until(&self, now: Timestamp) -> Timestamp {
        crate::domain::clock::after(now, self.0.config.lease)
    }

    /// Interrupts attempts running here whose step the change took back or whose
    /// execution stopped running.
    fn interrupt_ended(&self, change: &Change) {
        let running = self.0.running.lock().expect("running lock");
        if running.is_empty() {
            return;
        }
        let stopped = !matches!(
            change.execution.status,
            ExecutionStatus::Starting | ExecutionStatus::Running
        );
        for ((execution_id, step_id), (attempt, token)) in running.iter() {
            if execution_id != &change.execution.id {
                continue;
            }
            let taken_back = change.steps.iter().any(|s| {
                &s.id == step_id && (s.status != StepStatus::Running || s.attempt != *attempt)
            });
            if stopped || taken_back {
                token.cancel();
            }
        }
    }
}

/// The scheduler as the service's `AfterCommit`: held weakly, since the scheduler
/// holds the service.
struct Follower(Weak<Inner>);

impl AfterCommit for Follower {
    fn committed(&self, change: &Change) {
        if let Some(inner) = self.0.upgrade() {
            Scheduler(inner).dispatch(change);
        }
    }
}

/// The retry or the later start a committed change planned, and when it is due.
fn planned(change: &Change) -> Option<(Job, Timestamp)> {
    let execution = &change.execution;
    let (execution_id, priority) = (execution.id.clone(), execution.priority);
    let retry_scheduled = change
        .events
        .iter()
        .any(|e| e.kind == EventType::ExecutionFailed && e.payload.next_retry_at.is_some());
    if let (true, Some(at)) = (retry_scheduled, execution.retry_at) {
        return Some((
            Job::Retry {
                execution_id,
                priority,
            },
            at,
        ));
    }
    let start_planned = change.is_new && execution.status == ExecutionStatus::Queued;
    match (start_planned, execution.scheduled_at) {
        (true, Some(at)) => Some((
            Job::Start {
                execution_id,
                priority,
            },
            at,
        )),
        _ => None,
    }
}
