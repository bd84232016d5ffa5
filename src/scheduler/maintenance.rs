//! The maintenance loop of a worker process. Every tick it returns steps whose lease
//! ran out (a worker died, an agent went quiet) to PENDING and fails executions that
//! ran out of time; every reconcile interval, and at start-up, it re-queues handed-out
//! steps that no worker started (the queue may have lost them, e.g. a Redis flush),
//! runs retries and later starts (`startAt`) whose job never came and lets the queue
//! forget finished jobs; and it records the periodic checkpoints of RUNNING executions. Several processes may do
//! this at once: every action is fenced, so the second one finds nothing left to do.

use std::time::Duration;

use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;

use super::queue::{Job, Queue};
use super::webhooks;
use super::worker::is_stale;
use crate::clock;
use crate::config::SchedulerConfig;
use crate::domain::change::Change;
use crate::domain::records::Timestamp;
use crate::domain::snapshot::Snapshot;
use crate::domain::{failure, limits, schedule};
use crate::error::AppResult;
use crate::service::Service;
use crate::store::Store;

/// The queue's gauges are measured every this many ticks (every tick while limits
/// are set, so that a key's waits show at once).
const GAUGE_TICKS: u64 = 5;

/// Rows looked at per query and tick.
const BATCH: u64 = 500;

/// What the loop works with: it finds work through the store, changes executions
/// through the service and queues what was lost.
pub struct Maintenance {
    pub service: Service,
    pub store: Store,
    pub queue: Queue,
    pub config: SchedulerConfig,
    /// Wakes what waits on limits (the sweep).
    pub waking: super::waiting::Waking,
}

impl Maintenance {
    /// Runs until `stopping` is cancelled.
    pub async fn run(self, stopping: CancellationToken) {
        let config = &self.config;
        let mut ticks = tokio::time::interval((config.lease / 3).min(Duration::from_secs(1)));
        let mut reconcile = tokio::time::interval(config.reconcile_interval);
        let mut checkpoints = tokio::time::interval(
            (config.checkpoint_interval / 10)
                .clamp(Duration::from_millis(100), Duration::from_secs(60)),
        );
        let mut gauges = super::queue_gauges::QueueGauges::default();
        // Whether the last sweep found anything waiting (at first, look).
        let mut waiters_seen = true;
        let mut tick: u64 = 0;
        loop {
            tokio::select! {
                _ = stopping.cancelled() => return,
                _ = ticks.tick() => {
                    if let Err(error) = self.reap().await {
                        tracing::warn!(?error, "reaping leases and timeouts failed");
                    }
                    tick += 1;
                    match self.waking.sweep(waiters_seen).await {
                        Ok(seen) => waiters_seen = seen,
                        Err(error) => tracing::warn!(?error, "waking what waits on limits failed"),
                    }
                    let limited = !self.store.limits().is_empty();
                    if (limited || tick.is_multiple_of(GAUGE_TICKS))
                        && let Err(error) = gauges.record(&self.store).await
                    {
                        tracing::warn!(?error, "measuring the queue failed");
                    }
                }
                _ = reconcile.tick() => {
                    if let Err(error) = self.reconcile().await {
                        tracing::warn!(?error, "reconciling the queue failed");
                    }
                }
                _ = checkpoints.tick() => {
                    if let Err(error) = self.checkpoint().await {
                        tracing::warn!(?error, "recording checkpoints failed");
                    }
                }
            }
        }
    }

    /// Applies a rule as the scheduler; a stale one (the work was done meanwhile,
    /// by this process or another) is no error.
    async fn apply<F>(&self, action: &'static str, execution_id: &str, rule: F) -> AppResult<bool>
    where
        F: FnOnce(&Snapshot, Timestamp) -> AppResult<Change> + Send + 'static,
    {
        match self.service.as_scheduler(action, execution_id, rule).await {
            Ok(_) => Ok(true),
            Err(error) if is_stale(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn reap(&self) -> AppResult<()> {
        let now = clock::now();
        for (execution_id, step_id, attempt) in self.store.expired_leases(now, BATCH).await? {
            let random = rand::random::<f64>();
            let lost = step_id.clone();
            let released = self
                .apply("loseLease", &execution_id, move |s, now| {
                    failure::lose_lease(&s.execution, &s.steps, &lost, attempt, random, now)
                })
                .await?;
            if released {
                tracing::warn!(%execution_id, %step_id, attempt, "lease expired; the attempt failed as lost");
            }
        }
        for execution_id in self.store.timed_out(now, BATCH).await? {
            let failed = self
                .apply("timeoutExecution", &execution_id, |s, now| {
                    schedule::time_out(&s.execution, now)
                })
                .await?;
            if failed {
                tracing::warn!(%execution_id, "execution timed out");
            }
        }
        Ok(())
    }

    async fn reconcile(&self) -> AppResult<()> {
        let now = clock::now();
        let cutoff = now - TimeDelta::from_std(self.config.reconcile_interval).unwrap_or_default();
        let lost = self.store.unstarted_jobs(cutoff, BATCH).await?;
        let undelivered = self.store.requeue_undelivered(cutoff, now, BATCH).await?;
        if !lost.is_empty() || !undelivered.is_empty() {
            tracing::info!(
                steps = lost.len(),
                webhook_events = undelivered.len(),
                "re-queueing handed-out steps no worker started and webhook deliveries never made"
            );
        }
        let steps = lost.into_iter().map(Job::Step);
        let deliveries = undelivered
            .iter()
            .map(|(execution_id, sequence)| webhooks::first_delivery(execution_id, *sequence));
        let jobs = steps.chain(deliveries).map(|job| (job, Duration::ZERO));
        self.queue.push_or_warn(jobs.collect()).await;
        if let Err(error) = self.queue.forget_finished().await {
            tracing::warn!(?error, "could not forget finished jobs");
        }
        for execution_id in self.store.due_retries(cutoff, BATCH).await? {
            self.apply("retryExecution", &execution_id, |s, now| {
                schedule::retry_due(&s.execution, &s.steps, now)
            })
            .await?;
        }
        for execution_id in self.store.due_starts(cutoff, BATCH).await? {
            self.apply("startExecution", &execution_id, |s, now| {
                limits::start_due(&s.execution, &s.usage, now)
            })
            .await?;
        }
        Ok(())
    }

    /// Records a checkpoint of each RUNNING execution whose last one is a checkpoint
    /// interval old.
    async fn checkpoint(&self) -> AppResult<()> {
        let now = clock::now();
        let cutoff = now - TimeDelta::from_std(self.config.checkpoint_interval).unwrap_or_default();
        for execution_id in self.store.checkpoints_due(cutoff, BATCH).await? {
            self.apply("createCheckpoint", &execution_id, |s, now| {
                schedule::checkpoint_running(&s.execution, &s.steps, now)
            })
            .await?;
        }
        Ok(())
    }
}
