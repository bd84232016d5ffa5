//! Steps and executions that wait on a limit (`domain::limits`) get their turn here.
//! A step waiting for a slot is queued again when a change gives a slot of its key
//! back, and a QUEUED execution waiting for one is started: the most deserving
//! first (priority, raised by aging), as many as slots were freed. A step waiting
//! for a rate was reserved a start; its job is queued then. The maintenance sweep
//! catches what a wake-up missed (a slot freed while the step was still deciding to
//! wait, a process that died before a reserved start, a limit raised or removed):
//! every tick it wakes the waiters each key has room for.

use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::Scheduler;
use super::queue::{Job, Queue};
use crate::domain::aging::aged_level;
use crate::domain::change::Change;
use crate::domain::limits::share::hand_out_waiting;
use crate::domain::limits::wait::{self, WaitKind};
use crate::domain::limits::{Limit, limit_for, start_execution};
use crate::domain::records::Timestamp;
use crate::domain::schedule::{SCHEDULER, StepJob, job_for};
use crate::domain::values::Priority;
use crate::error::AppResult;
use crate::service::Service;
use crate::store::{KeyState, Store, Waiter};

/// Waiters read per key and wake-up, at most.
const WAITERS_READ: u64 = 500;

/// The oldest waiters read to wake `count` of them: enough for a more urgent one
/// among them to go first, few enough that a freed slot costs a small read.
fn waiters_to_read(count: usize) -> u64 {
    ((count as u64).saturating_mul(8)).clamp(32, WAITERS_READ)
}

/// How long after its reserved start a rate's waiter counts as forgotten.
const OVERDUE: Duration = Duration::from_secs(2);

/// What waking needs: the service starts executions, the store finds the waiters,
/// the queue takes the steps' jobs.
#[derive(Clone)]
pub(super) struct Waking {
    pub service: Service,
    pub store: Store,
    pub queue: Queue,
    pub aging: Duration,
}

impl Scheduler {
    pub(super) fn waking(&self) -> Waking {
        Waking {
            service: self.0.service.clone(),
            store: self.0.store.clone(),
            queue: self.0.queue.clone(),
            aging: self.0.config.priority_aging,
        }
    }

    /// What a committed change's waits ask for: a rate's reserved start, queued
    /// then from here (a delayed job on Redis is only promoted at its queue's next
    /// poll, which may be late and would bunch the starts up); and, for each key it
    /// gave slots back, its most deserving waiters, woken now.
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
        // A share's key is its waiters' label; a slot's key is named in theirs.
        let steps =
            (change.limits.freed()).map(|(key, count)| match wait::is(WaitKind::Share, key) {
                true => (key.clone(), count),
                false => (WaitKind::Concurrency.on(key), count),
            });
        let executions = (change.limits.freed_executions())
            .map(|(key, count)| (WaitKind::Executions.on(key), count));
        let freed: Vec<(String, usize)> = (steps.chain(executions))
            .map(|(label, count)| (label, count as usize))
            .collect();
        if freed.is_empty() {
            return;
        }
        let waking = self.waking();
        self.track_task(async move {
            for (label, count) in freed {
                if let Err(error) = waking.wake_best(&label, count).await {
                    tracing::warn!(?error, %label, "could not wake what waits for a slot");
                }
            }
        });
    }
}

/// The `count` most deserving of `waiting`, each with its priority and since when
/// it waits: priority raised by aging, then the oldest.
fn most_deserving<T>(
    mut waiting: Vec<T>,
    rank: impl Fn(&T) -> (Priority, Timestamp),
    aging: Duration,
    count: usize,
) -> Vec<T> {
    let now = Utc::now();
    waiting.sort_by_key(|w| {
        let (priority, since) = rank(w);
        (
            std::cmp::Reverse(aged_level(priority, since, now, aging)),
            since,
        )
    });
    waiting.truncate(count);
    waiting
}

impl Waking {
    /// Wakes the `count` most deserving of what waits on `label`, a slot's label.
    async fn wake_best(&self, label: &str, count: usize) -> AppResult<()> {
        if wait::is(WaitKind::Executions, label) {
            let waiting = self.store.waiting_on(label, waiters_to_read(count)).await?;
            let best = most_deserving(waiting, |e| (e.priority, e.since), self.aging, count);
            for execution in best {
                self.start(&execution.id).await;
            }
            return Ok(());
        }
        let rank = |w: &Waiter| (w.job.priority, w.job.ready_at);
        let waiters = self.store.waiters(label, waiters_to_read(count)).await?;
        let best = most_deserving(waiters, rank, self.aging, count);
        if wait::is(WaitKind::Share, label) {
            for waiter in best {
                self.hand_out(waiter.job).await;
            }
        } else {
            self.queue_steps(best).await;
        }
        Ok(())
    }

    /// Hands out a step that waited for its key's share, if the share allows now:
    /// a change, whose follow-up queues the step.
    async fn hand_out(&self, job: StepJob) {
        let step_id = job.step_id.clone();
        let handed_out = self
            .service
            .as_scheduler("handOutStep", &job.execution_id, move |s, now| {
                hand_out_waiting(&s.execution, &s.steps, &s.usage, &step_id, SCHEDULER, now)
            })
            .await;
        if let Err(error) = handed_out {
            tracing::debug!(
                ?job,
                ?error,
                "a step waiting for a share was not handed out"
            );
        }
    }

    /// Starts a waiting execution, if its keys have room now (else it waits on).
    async fn start(&self, execution_id: &str) {
        let started = self
            .service
            .as_scheduler("startExecution", execution_id, |s, now| {
                start_execution(&s.execution, &s.usage, SCHEDULER, now)
            })
            .await;
        if let Err(error) = started {
            tracing::debug!(%execution_id, ?error, "a waiting execution did not start");
        }
    }

    async fn queue_steps(&self, waiters: Vec<Waiter>) {
        let jobs = waiters
            .into_iter()
            .map(|w| (Job::Step(w.job), Duration::ZERO))
            .collect();
        self.queue.push_or_warn(jobs).await;
    }

    /// The maintenance sweep: reads the limits again (another process may have
    /// changed them) and wakes, per key, the waiters for a slot it has room for now
    /// and the waiters for a rate whose reserved start went by unclaimed (the
    /// process that was to queue it stopped); a key without a limit any more lets
    /// its waiters go. Answers whether anything waits; with no limit set, waiters
    /// are only looked for while the last sweep found some (`look`).
    pub(super) async fn sweep(&self, look: bool) -> AppResult<bool> {
        self.store.reload_limits().await?;
        let limits = self.store.limits();
        if limits.is_empty() && !look {
            return Ok(false);
        }
        let labels = self.store.waiting_labels().await?;
        if labels.is_empty() {
            return Ok(false);
        }
        let states = self.store.key_states().await?;
        for (label, waiting) in labels {
            let Some(room) = room(&limits, &states, &label, waiting) else {
                self.wake_rate_overdue(&label).await?;
                continue;
            };
            if room > 0 {
                self.wake_best(&label, room).await?;
            }
        }
        Ok(true)
    }

    async fn wake_rate_overdue(&self, label: &str) -> AppResult<()> {
        let overdue = Utc::now() - TimeDelta::from_std(OVERDUE).unwrap_or_default();
        let waiters = self.store.waiters(label, WAITERS_READ).await?;
        let unclaimed = (waiters.into_iter())
            .filter(|w| w.waiting_until.is_none_or(|until| until < overdue))
            .collect();
        self.queue_steps(unclaimed).await;
        Ok(())
    }
}

/// How many of the `waiting` on `label` its key has room for now: all of them when
/// the key has no limit any more; `None` for a rate's waiters, each of which has
/// its own reserved start.
fn room(limits: &[Limit], states: &[KeyState], label: &str, waiting: i64) -> Option<usize> {
    let (kind, key) = wait::parse(label)?;
    let Some(limit) = limit_for(limits, key) else {
        return Some(waiting.max(0) as usize);
    };
    let held = |counted: &str, field: fn(&KeyState) -> i64| {
        states.iter().find(|s| s.key == counted).map_or(0, field)
    };
    let (max, held) = match kind {
        WaitKind::Concurrency => (limit.concurrency, held(key, |s| s.usage.running)),
        WaitKind::Executions => (limit.executions, held(key, |s| s.usage.executions)),
        // A share's count is kept under its label.
        WaitKind::Share => (limit.share, held(label, |s| s.usage.running)),
        WaitKind::Rate if limit.rate.is_some() => return None,
        WaitKind::Rate => return Some(waiting.max(0) as usize),
    };
    let max = i64::from(max.unwrap_or(u32::MAX));
    Some((max - held).clamp(0, waiting) as usize)
}
