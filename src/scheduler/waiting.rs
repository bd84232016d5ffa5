//! Steps that wait on a limit (`domain::limits`) get their turn here. A step waiting
//! for a slot is queued again when a change gives a slot of its key back: the most
//! deserving waiters first (priority, raised by aging), as many as slots were freed.
//! A step waiting for a rate was reserved a start; its job is queued to run then.
//! The maintenance sweep catches what a wake-up missed (a slot freed while the step
//! was still deciding to wait, a process that died with a delayed job, a limit
//! raised or removed): every tick it queues the waiters each key has room for.

use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::Scheduler;
use super::queue::{Job, Queue};
use crate::domain::aging::aged_level;
use crate::domain::change::Change;
use crate::domain::limits::{limit_for, rate_key, slot_key, waiting_label};
use crate::domain::schedule::job_for;
use crate::error::AppResult;
use crate::store::{Store, Waiter};

/// Waiters read per key and wake-up.
const WAITERS_READ: u64 = 500;

/// How long after its reserved start a rate's waiter counts as forgotten.
const OVERDUE: Duration = Duration::from_secs(2);

impl Scheduler {
    /// What a committed change's waits ask for: a rate's reserved start, queued
    /// then from here (a delayed job on Redis is only promoted at its queue's next
    /// poll, which may be late and would bunch the starts up); and, for each key it
    /// gave slots back, its most deserving waiters, queued now.
    pub(super) fn follow_waits(&self, change: &Change) {
        let now = Utc::now();
        for (step_id, until) in &change.limits.due {
            let Some(step) = change.steps.iter().find(|s| &s.id == step_id) else {
                continue;
            };
            let job = Job::Step(job_for(&change.execution, step));
            let delay = (*until - now).to_std().unwrap_or_default();
            let queue = self.0.queue.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                queue.push_or_warn(vec![(job, Duration::ZERO)]).await;
            });
        }
        let freed: Vec<(String, i64)> = (change.limits.freed())
            .map(|(key, count)| (key.clone(), count))
            .collect();
        if freed.is_empty() {
            return;
        }
        let (store, queue, aging) = (
            self.0.store.clone(),
            self.0.queue.clone(),
            self.0.config.priority_aging,
        );
        self.track_task(async move {
            for (key, count) in freed {
                let label = waiting_label("concurrency", &key);
                let best = |waiters| most_deserving(waiters, aging, count as usize);
                if let Err(error) = wake(&store, &queue, &label, best).await {
                    tracing::warn!(?error, %key, "could not wake steps waiting for a slot");
                }
            }
        });
    }
}

/// The `count` most deserving of `waiters`: priority raised by aging, then oldest.
fn most_deserving(mut waiters: Vec<Waiter>, aging: Duration, count: usize) -> Vec<Waiter> {
    let now = Utc::now();
    waiters.sort_by_key(|w| {
        let level = aged_level(w.job.priority, w.job.ready_at, now, aging);
        (std::cmp::Reverse(level), w.job.ready_at)
    });
    waiters.truncate(count);
    waiters
}

/// Queues the steps waiting on `label` that `choose` picks.
async fn wake(
    store: &Store,
    queue: &Queue,
    label: &str,
    choose: impl FnOnce(Vec<Waiter>) -> Vec<Waiter>,
) -> AppResult<()> {
    let waiters = choose(store.waiters(label, WAITERS_READ).await?);
    let jobs = waiters
        .into_iter()
        .map(|w| (Job::Step(w.job), Duration::ZERO))
        .collect();
    queue.push_or_warn(jobs).await;
    Ok(())
}

/// The maintenance sweep: reads the limits again (another process may have changed
/// them) and queues, per key, the waiters for a slot it has room for now, and the
/// waiters for a rate whose reserved start went by unclaimed (the process that was
/// to queue it stopped); a key without a limit any more lets its waiters go.
pub(super) async fn sweep(store: &Store, queue: &Queue, aging: Duration) -> AppResult<()> {
    store.reload_limits().await?;
    let labels = store.waiting_labels().await?;
    if labels.is_empty() {
        return Ok(());
    }
    let limits = store.limits();
    let usage = store.key_usage().await?;
    for (label, waiting) in labels {
        let key = slot_key(&label)
            .or_else(|| rate_key(&label))
            .unwrap_or(&label);
        let limit = limit_for(&limits, key);
        let everyone = |waiters: Vec<Waiter>| waiters;
        match (limit, slot_key(&label)) {
            (None, _) => wake(store, queue, &label, everyone).await?,
            (Some(limit), Some(_)) => {
                let running =
                    (usage.iter().find(|(k, ..)| k == key)).map_or(0, |(_, u, ..)| u.running);
                let max = i64::from(limit.concurrency.unwrap_or(u32::MAX));
                let room = (max - running).clamp(0, waiting) as usize;
                if room > 0 {
                    let best = |waiters| most_deserving(waiters, aging, room);
                    wake(store, queue, &label, best).await?;
                }
            }
            (Some(_), None) => {
                let overdue = Utc::now() - TimeDelta::from_std(OVERDUE).unwrap_or_default();
                let unclaimed = |waiters: Vec<Waiter>| {
                    (waiters.into_iter())
                        .filter(|w| w.waiting_until.is_none_or(|until| until < overdue))
                        .collect()
                };
                wake(store, queue, &label, unclaimed).await?;
            }
        }
    }
    Ok(())
}
