//! The priority gate: the worker process's `--worker-concurrency` slots, handed to
//! waiting jobs in priority order. Jobs arrive from one queue per priority level; here
//! URGENT goes before HIGH before NORMAL before LOW, first come first served within a
//! level, and a job that has waited one aging interval counts one level higher, so
//! LOW never starves. The same gate serves the embedded and the Redis queues.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::oneshot;

use crate::domain::aging::aged_level;
use crate::domain::records::Timestamp;
use crate::domain::values::Priority;

pub struct PriorityGate {
    aging: Duration,
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Set when the process stops: no job gets a slot any more.
    closed: bool,
    next_ticket: u64,
    waiting: Vec<Waiter>,
}

struct Waiter {
    priority: Priority,
    ready_at: Timestamp,
    ticket: u64,
    wake: oneshot::Sender<()>,
}

impl State {
    /// Takes a slot if one is free and no job waits for it.
    fn take_free(&mut self) -> bool {
        let free = self.free > 0 && self.waiting.is_empty() && !self.closed;
        if free {
            self.free -= 1;
        }
        free
    }
}

/// One slot; given back when dropped.
pub struct Slot(Arc<PriorityGate>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl PriorityGate {
    pub fn new(slots: usize, aging: Duration) -> Arc<Self> {
        Arc::new(PriorityGate {
            aging,
            state: Mutex::new(State {
                free: slots.max(1),
                closed: false,
                next_ticket: 0,
                waiting: Vec::new(),
            }),
        })
    }

    /// A slot if one is free and no job waits for it.
    pub fn try_enter(self: &Arc<Self>) -> Option<Slot> {
        let taken = self.state.lock().expect("gate lock").take_free();
        taken.then(|| Slot(self.clone()))
    }

    /// Waits for a slot for a job of `priority` that became ready at `ready_at`.
    pub async fn enter(self: &Arc<Self>, priority: Priority, ready_at: Timestamp) -> Slot {
        let wait = {
            let mut state = self.state.lock().expect("gate lock");
            if state.take_free() {
                None
            } else {
                let (wake, woken) = oneshot::channel();
                let ticket = state.next_ticket;
                state.next_ticket += 1;
                state.waiting.push(Waiter {
                    priority,
                    ready_at,
                    ticket,
                    wake,
                });
                Some(woken)
            }
        };
        if let Some(woken) = wait {
            // The sender is only dropped after sending, so this cannot fail.
            let _ = woken.await;
        }
        Slot(self.clone())
    }

    /// How many jobs wait for a slot.
    pub fn waiting(&self) -> usize {
        self.state.lock().expect("gate lock").waiting.len()
    }

    /// Gives no more slots: the jobs waiting wait for good (their process is
    /// stopping, and the reconciler queues their steps again elsewhere).
    pub fn close(&self) {
        self.state.lock().expect("gate lock").closed = true;
    }

    /// Hands a freed slot to the most deserving waiter still waiting.
    fn release(&self) {
        let mut state = self.state.lock().expect("gate lock");
        let now = Utc::now();
        while let Some(best) = self
            .most_deserving(&state.waiting, now)
            .filter(|_| !state.closed)
        {
            let waiter = state.waiting.swap_remove(best);
            if waiter.wake.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }

    fn most_deserving(&self, waiting: &[Waiter], now: Timestamp) -> Option<usize> {
        waiting
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                aged_level(a.priority, a.ready_at, now, self.aging)
                    .cmp(&aged_level(b.priority, b.ready_at, now, self.aging))
                    .then(b.ready_at.cmp(&a.ready_at))
                    .then(b.ticket.cmp(&a.ticket))
            })
            .map(|(index, _)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    async fn order_of(gate: &Arc<PriorityGate>, jobs: Vec<(Priority, Timestamp)>) -> Vec<usize> {
        let first = gate.enter(Priority::Low, Utc::now()).await;
        let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
        for (index, (priority, ready_at)) in jobs.into_iter().enumerate() {
            let gate = gate.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let _slot = gate.enter(priority, ready_at).await;
                done.send(index).unwrap();
            });
            tokio::task::yield_now().await;
        }
        drop(done);
        drop(first);
        let mut order = Vec::new();
        while let Some(index) = finished.recv().await {
            order.push(index);
        }
        order
    }

    #[tokio::test]
    async fn higher_priority_first_then_first_come() {
        let gate = PriorityGate::new(1, Duration::from_secs(30));
        let now = Utc::now();
        let jobs = vec![
            (Priority::Low, now),
            (Priority::Normal, now),
            (Priority::Urgent, now + TimeDelta::milliseconds(2)),
            (Priority::Normal, now + TimeDelta::milliseconds(1)),
            (Priority::Urgent, now + TimeDelta::milliseconds(3)),
        ];
        assert_eq!(order_of(&gate, jobs).await, vec![2, 4, 1, 3, 0]);
    }

    #[tokio::test]
    async fn a_slot_is_taken_at_once_only_when_free_and_nobody_waits() {
        let gate = PriorityGate::new(2, Duration::from_secs(30));
        let first = gate.try_enter().expect("two slots free");
        let second = gate.enter(Priority::Low, Utc::now()).await;
        assert!(gate.try_enter().is_none(), "both slots are taken");
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(Priority::Low, Utc::now()).await }
        });
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        drop(first);
        let _third = waiting.await.unwrap();
        assert!(
            gate.try_enter().is_none(),
            "the freed slot went to the waiter"
        );
        drop(second);
        assert!(gate.try_enter().is_some());
    }

    #[tokio::test]
    async fn a_job_that_waited_long_enough_outranks_newer_urgent_ones() {
        let gate = PriorityGate::new(1, Duration::from_secs(30));
        let now = Utc::now();
        let jobs = vec![
            (Priority::Urgent, now),
            (Priority::Low, now - TimeDelta::seconds(95)),
            (Priority::Urgent, now),
        ];
        assert_eq!(order_of(&gate, jobs).await, vec![1, 0, 2]);
    }
}
