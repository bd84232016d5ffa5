//! The maintenance loop of a worker process. Every tick it returns steps whose lease
//! ran out (a worker died, an agent went quiet) to PENDING and fails executions that
//! ran out of time; every reconcile interval, and at start-up, it re-queues handed-out
//! steps that no worker started (the queue may have lost them, e.g. a Redis flush),
//! runs retries whose job never came and lets the queue forget finished jobs; and it
//! records the periodic checkpoints of RUNNING executions. Several processes may do
//! this at once: every action is fenced, so the second one finds nothing left to do.

use std::time::Duration;

use chrono::TimeDelta;

use super::Scheduler;
use super::queue::Job;
use super::webhooks;
use super::worker::is_stale;
use crate::clock;
use crate::domain::{failure, schedule};
use crate::error::AppResult;

/// Rows looked at per query and tick.
const BATCH: u64 = 500;

pub async fn run(scheduler: Scheduler) {
    let config = &scheduler.0.config;
    let mut ticks = tokio::time::interval((config.lease / 3).min(Duration::from_secs(1)));
    let mut reconcile = tokio::time::interval(config.reconcile_interval);
    let mut checkpoints = tokio::time::interval(
        (config.checkpoint_interval / 10)
            .clamp(Duration::from_millis(100), Duration::from_secs(60)),
    );
    loop {
        tokio::select! {
            _ = scheduler.0.stopping.cancelled() => return,
            _ = ticks.tick() => {
                if let Err(error) = scheduler.reap().await {
                    tracing::warn!(?error, "reaping leases and timeouts failed");
                }
            }
            _ = reconcile.tick() => {
                if let Err(error) = scheduler.reconcile().await {
                    tracing::warn!(?error, "reconciling the queue failed");
                }
            }
            _ = checkpoints.tick() => {
                if let Err(error) = scheduler.checkpoint().await {
                    tracing::warn!(?error, "recording checkpoints failed");
                }
            }
        }
    }
}

impl Scheduler {
    async fn reap(&self) -> AppResult<()> {
        let now = clock::now();
        for (execution_id, step_id, attempt) in self.0.store.expired_leases(now, BATCH).await? {
            let random = rand::random::<f64>();
            let released = self
                .apply("loseLease", &execution_id, {
                    let step_id = step_id.clone();
                    move |s, now| {
                        failure::lose_lease(&s.execution, &s.steps, &step_id, attempt, random, now)
                    }
                })
                .await;
            match released {
                Ok(_) => {
                    tracing::warn!(%execution_id, %step_id, attempt, "lease expired; the attempt failed as lost")
                }
                Err(error) if is_stale(&error) => {}
                Err(error) => return Err(error),
            }
        }
        for execution_id in self.0.store.timed_out(now, BATCH).await? {
            let failed = self
                .apply("timeoutExecution", &execution_id, |s, now| {
                    schedule::time_out(&s.execution, now)
                })
                .await;
            match failed {
                Ok(_) => tracing::warn!(%execution_id, "execution timed out"),
                Err(error) if is_stale(&error) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    async fn reconcile(&self) -> AppResult<()> {
        let now = clock::now();
        let cutoff =
            now - TimeDelta::from_std(self.0.config.reconcile_interval).unwrap_or_default();
        let lost = self.0.store.unstarted_jobs(cutoff, BATCH).await?;
        let undelivered = self.0.store.requeue_undelivered(cutoff, now, BATCH).await?;
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
        self.push(
            steps
                .chain(deliveries)
                .map(|job| (job, Duration::ZERO))
                .collect(),
        )
        .await;
        if let Err(error) = self.0.queue.forget_finished().await {
            tracing::warn!(?error, "could not forget finished jobs");
        }
        for execution_id in self.0.store.due_retries(cutoff, BATCH).await? {
            let retried = self
                .apply("retryExecution", &execution_id, |s, now| {
                    schedule::retry_due(&s.execution, &s.steps, now)
                })
                .await;
            if let Err(error) = retried
                && !is_stale(&error)
            {
                return Err(error);
            }
        }
        Ok(())
    }

    /// Records a checkpoint of each RUNNING execution whose last one is a checkpoint
    /// interval old.
    async fn checkpoint(&self) -> AppResult<()> {
        let now = clock::now();
        let cutoff =
            now - TimeDelta::from_std(self.0.config.checkpoint_interval).unwrap_or_default();
        for execution_id in self.0.store.checkpoints_due(cutoff, BATCH).await? {
            let recorded = self
                .apply("createCheckpoint", &execution_id, |s, now| {
                    schedule::checkpoint_running(&s.execution, &s.steps, now)
                })
                .await;
            if let Err(error) = recorded
                && !is_stale(&error)
            {
                return Err(error);
            }
        }
        Ok(())
    }
}
