//! Whether a step may start now: every key it counts against that has a concurrency
//! limit must have a free slot (and no step waiting for one before it), and every key
//! with a rate must have a start left. A step that may not start waits, naming what
//! it waits on: for a slot, until a step of that key stops running (or the
//! maintenance sweep finds one free); for a rate, until the instant reserved for it,
//! so that waiting steps start one interval apart instead of all at once (a step that
//! comes more than an interval after its reserved start asks again).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Limit, execution_keys, keys_of, limit_for};
use crate::domain::records::{Execution, Step, Timestamp};

/// What one key holds now, as read under lock and as the changes before in the same
/// transaction left it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyUsage {
    /// Steps running that hold a slot of the key.
    pub running: i64,
    /// Steps waiting for a slot of the key.
    pub waiting: i64,
    /// Executions started and not yet settled that hold a slot of the key.
    pub executions: i64,
    /// QUEUED executions waiting for a slot of the key.
    pub executions_waiting: i64,
    /// The rate's theoretical arrival time of the next start (`rate`).
    pub tat: Option<Timestamp>,
    /// Spent by the key's executions since `period_start` (`tenant_budget`).
    pub spent_cost: f64,
    pub spent_tokens: i64,
    pub period_start: Option<Timestamp>,
}

/// The limits in force and what their keys hold: what a start is admitted against.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    pub limits: Arc<Vec<Limit>>,
    pub keys: BTreeMap<String, KeyUsage>,
}

/// What a change does to the keys: how it moves each key's counts (slots held: +1
/// a start, −1 a step that stopped running; steps waiting for a slot), the rates'
/// new arrival times, and the steps that wait for a reserved start (step id, when).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyEffects {
    pub running: BTreeMap<String, i64>,
    pub waiting: BTreeMap<String, i64>,
    pub executions: BTreeMap<String, i64>,
    pub executions_waiting: BTreeMap<String, i64>,
    pub tats: Vec<(String, Timestamp)>,
    pub due: Vec<(String, Timestamp)>,
    /// Per key with a budget: the cost and tokens spent, in the period starting then.
    pub spent: BTreeMap<String, (f64, i64, Timestamp)>,
}

impl KeyEffects {
    /// Folds in the effects of a later change of the same transaction.
    pub fn absorb(&mut self, later: KeyEffects) {
        for (key, delta) in later.running {
            *self.running.entry(key).or_default() += delta;
        }
        for (key, delta) in later.waiting {
            *self.waiting.entry(key).or_default() += delta;
        }
        for (key, delta) in later.executions {
            *self.executions.entry(key).or_default() += delta;
        }
        for (key, delta) in later.executions_waiting {
            *self.executions_waiting.entry(key).or_default() += delta;
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

    pub fn is_empty(&self) -> bool {
        [
            &self.running,
            &self.waiting,
            &self.executions,
            &self.executions_waiting,
        ]
        .iter()
        .all(|counts| counts.values().all(|d| *d == 0))
            && self.tats.is_empty()
            && self.due.is_empty()
            && self.spent.is_empty()
    }

    /// The keys that gave back step slots, with how many: where waiting steps may
    /// start.
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
        for key in &before.holds {
            *self.executions.entry(key.clone()).or_default() -= 1;
        }
        for key in &after.holds {
            *self.executions.entry(key.clone()).or_default() += 1;
        }
        let waiting = |e: &Execution| {
            e.waiting_on
                .as_deref()
                .and_then(executions_key)
                .map(str::to_owned)
        };
        if let Some(key) = waiting(before) {
            *self.executions_waiting.entry(key).or_default() -= 1;
        }
        if let Some(key) = waiting(after) {
            *self.executions_waiting.entry(key).or_default() += 1;
        }
    }

    /// Counts the difference between a step as it was and as a change leaves it.
    pub fn count_step(&mut self, before: Option<&Step>, after: &Step) {
        let held = |s: Option<&Step>| s.map(|s| s.schedule.holds.clone()).unwrap_or_default();
        for key in held(before) {
            *self.running.entry(key).or_default() -= 1;
        }
        for key in held(Some(after)) {
            *self.running.entry(key).or_default() += 1;
        }
        // A wait for a slot counts on the key, a wait for a share on the share's key.
        let waiting = |s: Option<&Step>| {
            let label = s.and_then(|s| s.schedule.waiting_on.as_deref())?;
            let counted = if is_share_label(label) {
                Some(label)
            } else {
                slot_key(label)
            };
            counted.map(str::to_owned)
        };
        if let Some(key) = waiting(before) {
            *self.waiting.entry(key).or_default() -= 1;
        }
        if let Some(key) = waiting(Some(after)) {
            *self.waiting.entry(key).or_default() += 1;
        }
    }
}

/// The outcome of asking to start a step.
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    /// Start, holding a slot of each of `holds`.
    Start {
        holds: Vec<String>,
        tats: Vec<(String, Timestamp)>,
    },
    /// Wait on `on` (`concurrency <key>` or `rate <key>`), for a rate until `until`.
    Wait {
        on: String,
        until: Option<Timestamp>,
        tats: Vec<(String, Timestamp)>,
    },
}

/// What a step waits on, as `waitingOn` shows it.
pub fn waiting_label(kind: &str, key: &str) -> String {
    format!("{kind} {key}")
}

/// The key a wait label names, when it is a wait for a slot.
pub fn slot_key(label: &str) -> Option<&str> {
    label.strip_prefix("concurrency ")
}

/// The key a wait label names, when it is an execution's wait for a slot.
pub fn executions_key(label: &str) -> Option<&str> {
    label.strip_prefix("executions ")
}

/// The decreases among `counts`, as slots given back.
fn freed(counts: &BTreeMap<String, i64>) -> impl Iterator<Item = (&String, i64)> {
    (counts.iter())
        .filter(|(_, delta)| **delta < 0)
        .map(|(key, delta)| (key, -delta))
}

/// Whether a wait label is a wait for a share (`share`).
pub fn is_share_label(label: &str) -> bool {
    label.starts_with("share ")
}

/// The key a wait label names, when it is a wait for a rate.
pub fn rate_key(label: &str) -> Option<&str> {
    label.strip_prefix("rate ")
}

impl Usage {
    /// Whether any limit is in force: with none, starts are not looked at.
    pub fn is_idle(&self) -> bool {
        self.limits.is_empty()
    }

    /// The keys of `step` that have a limit, each with its limit.
    pub fn limited_keys<'a>(
        &'a self,
        execution: &Execution,
        step: &Step,
    ) -> Vec<(String, &'a Limit)> {
        keys_of(execution, step)
            .into_iter()
            .filter_map(|key| limit_for(&self.limits, &key).map(|limit| (key, limit)))
            .collect()
    }

    /// The keys with a limit on executions whose slots `execution` would hold when
    /// started now, or the first key that has none free (an execution that waited
    /// on it goes before those still waiting; a new one waits behind them).
    pub fn admit_execution(&self, execution: &Execution) -> Result<Vec<String>, String> {
        let mut holds = Vec::new();
        if self.is_idle() {
            return Ok(holds);
        }
        for key in execution_keys(execution) {
            let Some(max) = limit_for(&self.limits, &key).and_then(|l| l.executions) else {
                continue;
            };
            let usage = self.keys.get(&key).cloned().unwrap_or_default();
            let woken = execution.waiting_on == Some(waiting_label("executions", &key));
            let queued_before = if woken { 0 } else { usage.executions_waiting };
            if usage.executions + queued_before >= i64::from(max) {
                return Err(key);
            }
            holds.push(key);
        }
        Ok(holds)
    }

    /// Whether `step` of `execution` may start at `now`.
    pub fn admit(&self, execution: &Execution, step: &Step, now: Timestamp) -> Admission {
        let mut holds = Vec::new();
        if self.is_idle() {
            return Admission::Start {
                holds,
                tats: Vec::new(),
            };
        }
        let mut tats = Vec::new();
        let waits_on = step.schedule.waiting_on.as_deref();
        let keys = self.limited_keys(execution, step);
        for (key, limit) in &keys {
            let Some(max) = limit.concurrency else {
                continue;
            };
            let usage = self.keys.get(key).cloned().unwrap_or_default();
            let label = waiting_label("concurrency", key);
            let woken = waits_on == Some(label.as_str());
            // A step woken for a slot goes before those still waiting; a new one
            // waits behind them.
            let queued_before = if woken { 0 } else { usage.waiting };
            if usage.running + queued_before >= i64::from(max) {
                return Admission::Wait {
                    on: label,
                    until: None,
                    tats,
                };
            }
            holds.push(key.clone());
        }
        for (key, limit) in &keys {
            let Some(rate) = &limit.rate else {
                continue;
            };
            let label = waiting_label("rate", key);
            let reserved = waits_on == Some(label.as_str())
                && (step.schedule.waiting_until).is_some_and(|until| rate.honours(until, now));
            if reserved {
                continue;
            }
            let tat = self.keys.get(key).and_then(|u| u.tat);
            match rate.admit(tat, now) {
                Ok(next) => tats.push((key.clone(), next)),
                Err(allowed_from) => {
                    // The start waits for its own turn on this key, reserved now;
                    // the other keys are asked again when it comes.
                    let reserved = rate.admit(tat, allowed_from).expect("allowed then");
                    return Admission::Wait {
                        on: label,
                        until: Some(allowed_from),
                        tats: vec![(key.clone(), reserved)],
                    };
                }
            }
        }
        Admission::Start { holds, tats }
    }

    /// Folds in what a change of the same transaction did to the keys.
    pub fn advance(&mut self, effects: &KeyEffects) {
        for (key, delta) in &effects.running {
            self.keys.entry(key.clone()).or_default().running += delta;
        }
        for (key, delta) in &effects.waiting {
            self.keys.entry(key.clone()).or_default().waiting += delta;
        }
        for (key, delta) in &effects.executions {
            self.keys.entry(key.clone()).or_default().executions += delta;
        }
        for (key, delta) in &effects.executions_waiting {
            self.keys.entry(key.clone()).or_default().executions_waiting += delta;
        }
        for (key, tat) in &effects.tats {
            let usage = self.keys.entry(key.clone()).or_default();
            usage.tat = usage.tat.max(Some(*tat));
        }
        for (key, (cost, tokens, period)) in &effects.spent {
            let usage = self.keys.entry(key.clone()).or_default();
            if usage.period_start != Some(*period) {
                (usage.spent_cost, usage.spent_tokens) = (0.0, 0);
                usage.period_start = Some(*period);
            }
            usage.spent_cost += cost;
            usage.spent_tokens += tokens;
        }
    }
}
