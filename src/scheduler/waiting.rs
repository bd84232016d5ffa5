//! Steps that wait on a limit (`domain::limits`) get their turn here. A step waiting
//! for a slot is queued again when a change gives a slot of its key back: the most
//! deserving waiters first (priority, raised by aging), as many as slots were freed.
//! A step waiting for a rate was reserved a start; its job is queued to run then.
//! The maintenance sweep catches what a wake-up missed (a slot freed while the step
//! was still deciding to wait, a process that died with a delayed job, a limit
//! raised or removed): every tick it queues the waiters each key has room for.

use std::time::Duration;

use chrono::Utc;

use super::Scheduler;
use super::queue::{Job, Queue};
use crate::domain::aging::aged_level;
use crate::domain::change::Change;
use crate::domain::limits::{limit_for, rate_key, slot_key, waiting_label};
use crate::domain::schedule::job_for;
use crate::error::AppResult;
use crate::store::Store;

/// Waiters read per key and wake-up.
const WAITERS_READ: u64 = 500;

impl Scheduler {
    /// The jobs of a committed change's waits: a rate's reserved start, delayed
    /// until then; and, for each key it gave slots back, its best waiters.
    pub(super) fn follow_waits(&self, change: &Change) -> Vec<(Job, Duration)> {
        let now = Utc::now();
        let reserved = change.limits.due.iter().filter_map(|(step_id, until)| {
            let step = change.steps.iter().find(|s| &s.id == step_id)?;
            let delay = (*until - now).to_std().unwrap_or_default();
            Some((Job::Step(job_for(&change.execution, step)), delay))
        });
        let jobs = reserved.collect();
        let freed: Vec<(String, i64)> = (change.limits.freed())
            .map(|(key, count)| (key.clone(), count))
            .collect();
        if !freed.is_empty() {
            let (store, queue, aging) = (
                self.0.store.clone(),
                self.0.queue.clone(),
                self.0.config.priority_aging,
            );
            self.track_task(async move {
                for (key, count) in freed {
                    let label = waiting_label("concurrency", &key);
                    if let Err(error) = wake(&store, &queue, aging, &label, count as u64).await {
                        tracing::warn!(?error, %key, "could not wake steps waiting for a slot");
                    }
                }
            });
        }
        jobs
    }
}

/// Queues the `count` most deserving steps waiting on `label`.
async fn wake(
    store: &Store,
    queue: &Queue,
    aging: Duration,
    label: &str,
    count: u64,
) -> AppResult<()> {
    if count == 0 {
        return Ok(());
    }
    let now = Utc::now();
    let mut waiters = store.waiters(label, WAITERS_READ).await?;
    waiters.sort_by_key(|w| {
        let level = aged_level(w.job.priority, w.job.ready_at, now, aging);
        (std::cmp::Reverse(level), w.job.ready_at)
    });
    let jobs = waiters
        .into_iter()
        .take(count as usize)
        .map(|w| (Job::Step(w.job), Duration::ZERO))
        .collect();
    queue.push_or_warn(jobs).await;
    Ok(())
}

/// The maintenance sweep: reads the limits again (another process may have changed
/// them) and queues, per key, the waiters it has room for now; a key without a limit
/// any more lets its waiters go.
pub(super) async fn sweep(store: &Store, queue: &Queue, aging: Duration) -> AppResult<()> {
    store.reload_limits().await?;
    let labels = store.waiting_labels().await?;
    if labels.is_empty() {
        return Ok(());
    }
    let limits = store.limits();
    let usage = store.key_usage().await?;
    let now = Utc::now();
    for (label, waiting) in labels {
        let key = slot_key(&label).or_else(|| rate_key(&label)).unwrap_or(&label);
        let limit = limit_for(&limits, key);
        let held = usage.iter().find(|(k, ..)| k == key).map(|(_, u, ..)| u);
        let room = match (limit, slot_key(&label)) {
            (Some(limit), Some(_)) => {
                let running = held.map_or(0, |u| u.running);
                i64::from(limit.concurrency.unwrap_or(u32::MAX)) - running
            }
            (Some(limit), None) => match &limit.rate {
                Some(rate) => i64::from(rate.tokens_left(held.and_then(|u| u.tat), now)),
                None => waiting,
            },
            (None, _) => waiting,
        };
        let room = room.clamp(0, waiting).min(WAITERS_READ as i64) as u64;
        wake(store, queue, aging, &label, room).await?;
    }
    Ok(())
}
