//! Whether a step may start now: every key it counts against that has a concurrency
//! limit must have a free slot (and no step waiting for one before it), and every key
//! with a rate must have a start left. A step that may not start waits, naming what
//! it waits on: for a slot, until a step of that key stops running (or the
//! maintenance sweep finds one free); for a rate, until the instant reserved for it,
//! so that waiting steps start one interval apart instead of all at once (a step that
//! comes more than an interval after its reserved start asks again).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::effects::{Counts, KeyEffects};
use super::wait::WaitKind;
use super::{Limit, execution_keys, keys_of, limit_for};
use crate::domain::records::{Execution, Step, Timestamp};

/// Whether a key holding `held` slots of `max`, with `waiting` waiting for one,
/// has a slot for one more: a waiter woken for it goes before those still waiting,
/// anything new waits behind them.
pub(super) fn has_room(held: i64, waiting: i64, woken: bool, max: u32) -> bool {
    let queued_before = if woken { 0 } else { waiting };
    held + queued_before < i64::from(max)
}

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
            let woken = execution.waiting_on == Some(WaitKind::Executions.on(&key));
            if !has_room(usage.executions, usage.executions_waiting, woken, max) {
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
            let label = WaitKind::Concurrency.on(key);
            let woken = waits_on == Some(label.as_str());
            if !has_room(usage.running, usage.waiting, woken, max) {
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
            let label = WaitKind::Rate.on(key);
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
        type Field = fn(&mut KeyUsage) -> &mut i64;
        let moves: [(&Counts, Field); 4] = [
            (&effects.running, |u| &mut u.running),
            (&effects.waiting, |u| &mut u.waiting),
            (&effects.executions, |u| &mut u.executions),
            (&effects.executions_waiting, |u| &mut u.executions_waiting),
        ];
        for (counts, field) in moves {
            for (key, delta) in counts {
                *field(self.keys.entry(key.clone()).or_default()) += delta;
            }
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
