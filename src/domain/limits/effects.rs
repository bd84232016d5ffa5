//! What a change does to the limited keys (`Change::limits`): how it moves each
//! key's counts, which the store adds to `limit_usage` and the next rule of the same
//! transaction sees (`Usage::advance`), the rates' new arrival times, the steps that
//! wait for a reserved start, and what was spent against budgets.

use std::collections::BTreeMap;

use super::wait::{self, WaitKind};
use crate::domain::records::{Execution, Step, Timestamp};

/// Counts by key: how much a change moves each.
pub type Counts = BTreeMap<String, i64>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyEffects {
    /// Slots held by steps (+1 a start, −1 a step that stopped running), and shares
    /// (under the share's key).
    pub running: Counts,
    /// Steps waiting for a slot (or for a share, under the share's key).
    pub waiting: Counts,
    /// Slots held by executions.
    pub executions: Counts,
    /// QUEUED executions waiting for a slot.
    pub executions_waiting: Counts,
    pub tats: Vec<(String, Timestamp)>,
    /// Steps waiting for a reserved start: (step id, when).
    pub due: Vec<(String, Timestamp)>,
    /// Per key with a budget: the cost and tokens spent, in the period starting then.
    pub spent: BTreeMap<String, (f64, i64, Timestamp)>,
}

/// Adds `from` to `into`.
pub fn add_counts<'a>(into: &mut Counts, from: impl IntoIterator<Item = (&'a String, &'a i64)>) {
    for (key, delta) in from {
        *into.entry(key.clone()).or_default() += delta;
    }
}

/// The decreases among `counts`, as slots given back.
fn freed(counts: &Counts) -> impl Iterator<Item = (&String, i64)> {
    (counts.iter())
        .filter(|(_, delta)| **delta < 0)
        .map(|(key, delta)| (key, -delta))
}

/// −1 for each of `before`, +1 for each of `after`.
fn count_moves(
    counts: &mut Counts,
    before: impl IntoIterator<Item = String>,
    after: impl IntoIterator<Item = String>,
) {
    for key in before {
        *counts.entry(key).or_default() -= 1;
    }
    for key in after {
        *counts.entry(key).or_default() += 1;
    }
}

impl KeyEffects {
    /// The four counts, always in this order (`absorb` pairs them with another's).
    fn counts(&mut self) -> [&mut Counts; 4] {
        [
            &mut self.running,
            &mut self.waiting,
            &mut self.executions,
            &mut self.executions_waiting,
        ]
    }

    /// Folds in the effects of a later change of the same transaction.
    pub fn absorb(&mut self, mut later: KeyEffects) {
        for (mine, theirs) in self.counts().into_iter().zip(later.counts()) {
            add_counts(mine, theirs.iter());
        }
        self.tats.extend(later.tats);
        self.due.extend(later.due);
        for (key, (cost, tokens, period)) in later.spent {
            self.spend(key, cost, tokens, period);
        }
    }

    /// Counts `cost` and `tokens` spent in the period starting at `period` against
    /// `key` (a later period replaces an earlier one).
    pub fn spend(&mut self, key: String, cost: f64, tokens: i64, period: Timestamp) {
        let entry = self.spent.entry(key).or_insert((0.0, 0, period));
        if entry.2 < period {
            *entry = (0.0, 0, period);
        }
        entry.0 += cost;
        entry.1 += tokens;
    }

    /// Drops the counts a change moved back to where they were.
    pub fn settle_counts(&mut self) {
        for counts in self.counts() {
            counts.retain(|_, delta| *delta != 0);
        }
    }

    pub fn is_empty(&self) -> bool {
        let counts = [
            &self.running,
            &self.waiting,
            &self.executions,
            &self.executions_waiting,
        ];
        counts.iter().all(|c| c.values().all(|d| *d == 0))
            && self.tats.is_empty()
            && self.due.is_empty()
            && self.spent.is_empty()
    }

    /// The keys that gave back step slots or shares, with how many.
    pub fn freed(&self) -> impl Iterator<Item = (&String, i64)> {
        freed(&self.running)
    }

    /// The keys that gave back execution slots, with how many.
    pub fn freed_executions(&self) -> impl Iterator<Item = (&String, i64)> {
        freed(&self.executions)
    }

    /// Counts the difference between the execution as it was and as a change
    /// leaves it.
    pub fn count_execution(&mut self, before: &Execution, after: &Execution) {
        let held = |e: &Execution| e.holds.clone();
        count_moves(&mut self.executions, held(before), held(after));
        fn waiting(e: &Execution) -> Option<String> {
            let label = e.waiting_on.as_deref()?;
            wait::is(WaitKind::Executions, label).then(|| wait::key_of(label).to_owned())
        }
        count_moves(
            &mut self.executions_waiting,
            waiting(before),
            waiting(after),
        );
    }

    /// Counts the difference between a step as it was and as a change leaves it.
    pub fn count_step(&mut self, before: Option<&Step>, after: &Step) {
        let held = |s: Option<&Step>| s.map(|s| s.schedule.holds.clone()).unwrap_or_default();
        count_moves(&mut self.running, held(before), held(Some(after)));
        fn waiting(s: Option<&Step>) -> Option<String> {
            wait::counted_step_key(s?.schedule.waiting_on.as_deref()?).map(str::to_owned)
        }
        count_moves(&mut self.waiting, waiting(before), waiting(Some(after)));
    }
}
