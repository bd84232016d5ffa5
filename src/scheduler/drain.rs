//! Stopping a worker process without losing work (SIGTERM, as orchestrators send):
//! take no more jobs, let the steps running here finish within `--shutdown-grace`,
//! interrupt the rest and give them back at once as lost attempts (so they run again
//! elsewhere now, not when their lease runs out), then wait for every report and
//! queued job still on its way to the database or the queue.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::Scheduler;
use crate::domain::failure;
use crate::domain::schedule::Fence;

/// How long the reports and jobs on their way may take once the steps are done.
const FLUSH: Duration = Duration::from_secs(10);
/// How often attempts that began after the slots closed are looked for and given back.
const ROUND: Duration = Duration::from_millis(100);

impl Scheduler {
    /// Drains this process's scheduler (see the module comment). Returns once
    /// everything started here is settled in the database, or after the grace and
    /// `FLUSH` have passed.
    pub async fn drain(&self) {
        let grace = self.0.config.shutdown_grace;
        self.0.stopping.cancel();
        self.0.workers_started.store(false, Ordering::Relaxed);
        self.0.gate.close();
        let running = self.0.running.lock().expect("running lock").len();
        tracing::info!(running, ?grace, "stopping: letting running steps finish");
        let deadline = Instant::now() + grace;
        while !self.0.running.lock().expect("running lock").is_empty() && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // An attempt whose start was still committing when the slots closed is
        // tracked only once it commits: give back until no task is left.
        self.0.tasks.close();
        let flushed = Instant::now() + FLUSH;
        loop {
            self.give_back_running().await;
            let settled = tokio::time::timeout(ROUND, self.0.tasks.wait()).await;
            if settled.is_ok() || Instant::now() >= flushed {
                break;
            }
        }
        self.flush().await;
        tracing::info!("stopped");
    }

    /// Waits (at most `FLUSH`) for the reports and jobs still on their way: after
    /// `drain`, and again once the last API request that might dispatch is done.
    pub async fn flush(&self) {
        self.0.tasks.close();
        if tokio::time::timeout(FLUSH, self.0.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("stopping with reports still on their way; their leases will run out");
        }
    }

    /// Interrupts the attempts still running here and records each as lost.
    async fn give_back_running(&self) {
        let unfinished: Vec<_> = self
            .0
            .running
            .lock()
            .expect("running lock")
            .drain()
            .collect();
        for ((execution_id, step_id), (attempt, interrupt)) in unfinished {
            interrupt.cancel();
            let fence = Fence {
                step_id: step_id.clone(),
                attempt,
                owner: self.0.name.clone(),
            };
            let given = self
                .0
                .service
                .as_scheduler("giveBackStep", &execution_id, move |s, now| {
                    failure::give_back(&s.execution, &s.steps, &fence, now)
                })
                .await;
            match given {
                Ok(_) => tracing::info!(%execution_id, %step_id, attempt, "step given back"),
                Err(error) => {
                    tracing::info!(%execution_id, %step_id, ?error, "step not given back")
                }
            }
        }
    }

    /// Runs `task` as part of this process's work in flight, which `drain` waits for.
    pub(super) fn track_task(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.tasks.spawn(task);
    }
}
