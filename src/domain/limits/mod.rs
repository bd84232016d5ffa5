//! Flow control's rules: the limits an operator declares on keys (at most N steps
//! running per key, at most R starts per period per key), the keys a step counts
//! against (`keys`), rates (`rate`), and whether a step may start now given what its
//! keys hold (`admission`). Pure: the store reads what the keys hold under lock, a
//! rule decides, and the change carries what the store saves.

mod admission;
pub mod budget;
mod effects;
mod executions;
mod in_play;
mod keys;
mod rate;
pub mod share;
pub mod tenant_budget;
pub mod wait;

use async_graphql::InputObject;

pub use admission::*;
pub use effects::KeyEffects;
pub use executions::{retry_execution, start_due, start_execution};
pub use in_play::keys_in_play;
pub use keys::{KeyTemplate, execution_keys, keys_of};
pub use rate::Rate;
pub use tenant_budget::{BudgetPeriod, TenantBudget};

use super::change::Change;
use super::records::{Execution, Step, Timestamp};
use super::status::{ExecutionStatus, StepStatus};
use crate::error::{AppError, AppResult};

/// The most steps a concurrency limit may let run at once.
const MAX_CONCURRENCY: i32 = 1_000_000;

/// A limit on one key, or one per key a template names.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    pub key: KeyTemplate,
    /// At most this many steps running at once per key.
    pub concurrency: Option<u32>,
    /// At most this many executions per key started and not yet settled.
    pub executions: Option<u32>,
    /// At most this many steps per key handed to workers at once (`share`).
    pub share: Option<u32>,
    /// At most this many starts per period per key.
    pub rate: Option<Rate>,
    /// At most this much spent per day or month per key.
    pub budget: Option<TenantBudget>,
    pub updated_at: Timestamp,
    pub updated_by: String,
}

/// A limit as an admin sets it (`setLimit`, or a `[[limit]]` of the limits file,
/// with the same field names). It replaces the whole limit on its key: a field left
/// out is no limit.
#[derive(InputObject, Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitInput {
    /// `customer:{customerId}`, `service:{serviceId}`, `provider:{providerId}`, or
    /// a literal key: one customer (`customer:acme`) or a `concurrencyKey` (`openai`).
    pub key: String,
    /// At most this many steps of each key running at once (0 stops new starts).
    pub concurrency: Option<i32>,
    /// At most this many executions of each key started and not yet settled (a
    /// QUEUED one waits to start; 0 starts none).
    pub executions: Option<i32>,
    /// Fair share: at most this many steps of each key queued or running at once,
    /// the rest waiting their key's turn (at least 1).
    pub share: Option<i32>,
    /// At most this many step starts per period of each key: `60/min`, `10/s`, `5/10s`.
    pub rate: Option<String>,
    /// How many of the rate's starts may go at once (default 1: evenly spaced).
    pub burst: Option<i32>,
    /// At most this cost spent by each key's executions per `budgetPeriod`.
    pub max_cost: Option<f64>,
    /// At most this many tokens used by each key's executions per `budgetPeriod`.
    pub max_tokens: Option<i64>,
    /// The period of `maxCost` and `maxTokens` (UTC; default DAY).
    pub budget_period: Option<BudgetPeriod>,
}

impl Limit {
    /// Parses an admin's limit; the error names the field that is wrong.
    pub fn parse(input: LimitInput, by: &str, now: Timestamp) -> AppResult<Limit> {
        let key = KeyTemplate::parse("key", &input.key)?;
        let concurrency = at_most("concurrency", input.concurrency)?;
        let executions = at_most("executions", input.executions)?;
        let share = at_most("share", input.share)?;
        if share == Some(0) {
            return Err(AppError::bad_input("share", "a share is at least 1"));
        }
        let rate = match (&input.rate, input.burst) {
            (Some(text), burst) => Some(Rate::parse("rate", text, burst)?),
            (None, Some(_)) => return Err(AppError::bad_input("burst", "a burst needs a rate")),
            (None, None) => None,
        };
        let budget = parse_budget(&input)?;
        let sets_nothing = [concurrency, executions, share].iter().all(Option::is_none);
        if sets_nothing && rate.is_none() && budget.is_none() {
            return Err(AppError::bad_input(
                "concurrency",
                "a limit sets a concurrency, executions, a share, a rate, a budget, or several",
            ));
        }
        Ok(Limit {
            key,
            concurrency,
            executions,
            share,
            rate,
            budget,
            updated_at: now,
            updated_by: by.to_owned(),
        })
    }
}

/// A key's budget, when the input sets one: bounds positive and finite.
fn parse_budget(input: &LimitInput) -> AppResult<Option<TenantBudget>> {
    if input.max_cost.is_none() && input.max_tokens.is_none() {
        return match input.budget_period {
            Some(_) => Err(AppError::bad_input(
                "budgetPeriod",
                "a period needs maxCost or maxTokens",
            )),
            None => Ok(None),
        };
    }
    budget::check_bounds("", input.max_cost, input.max_tokens)?;
    Ok(Some(TenantBudget {
        max_cost: input.max_cost,
        max_tokens: input.max_tokens,
        period: input.budget_period.unwrap_or_default(),
    }))
}

/// How long a step's service asked to wait before the next call: the
/// `retryAfterMs` of its `API_RATE_LIMIT` error.
fn retry_after(step: &Step) -> Option<chrono::TimeDelta> {
    let error = step.error.as_ref().filter(|e| e.code == "API_RATE_LIMIT")?;
    let ms = error.context.as_ref()?.0.get("retryAfterMs")?.as_i64()?;
    Some(chrono::TimeDelta::milliseconds(ms.max(0)))
}

/// A count limit named `field`: from 0 to `MAX_CONCURRENCY`.
fn at_most(field: &str, value: Option<i32>) -> AppResult<Option<u32>> {
    match value {
        None => Ok(None),
        Some(n) if (0..=MAX_CONCURRENCY).contains(&n) => Ok(Some(n as u32)),
        Some(_) => Err(AppError::bad_input(
            field,
            format!("a limit is from 0 to {MAX_CONCURRENCY}"),
        )),
    }
}

/// The limit in force for `key`: a literal key's before a template's.
pub fn limit_for<'a>(limits: &'a [Limit], key: &str) -> Option<&'a Limit> {
    let covering = || limits.iter().filter(|l| l.key.covers(key));
    (covering().find(|l| matches!(l.key, KeyTemplate::Literal(_)))).or_else(|| covering().next())
}

/// Brings the keys in line with the execution and steps a change leaves (a step
/// still queued keeps its shares), and counts
/// what that does to them: a step that stopped running gives its slots back, a step
/// no longer handed out stops waiting; an execution that settled gives its slots
/// back, one no longer QUEUED stops waiting; what it spent counts against the
/// budgets of its keys (`usage` says which have one); a step its service answered
/// 429 with a `Retry-After` pauses its rate-limited keys until then. Applied to every change,
/// after `schedule::settle`.
pub fn account(change: &mut Change, before: &Execution, before_steps: &[Step], usage: &Usage) {
    // With no limit in force and nothing held or waiting, there is nothing to count
    // (the hot path of a deployment without limits).
    let holds_nothing = |s: &Step| s.schedule.holds.is_empty() && s.schedule.waiting_on.is_none();
    let was = |step: &Step| before_steps.iter().find(|s| s.id == step.id);
    let nothing_held = before.holds.is_empty()
        && before.waiting_on.is_none()
        && change.execution.holds.is_empty()
        && change.execution.waiting_on.is_none()
        && (change.steps.iter()).all(|s| holds_nothing(s) && was(s).is_none_or(holds_nothing));
    if usage.is_idle() && nothing_held && change.limits.is_empty() {
        return;
    }
    let mut effects = std::mem::take(&mut change.limits);
    let (cost, tokens) = tenant_budget::spent(before, &change.execution);
    if cost > 0.0 || tokens > 0 {
        for (key, budget) in tenant_budget::budget_keys(usage, &change.execution) {
            effects.spend(key, cost, tokens, budget.period.start(change.now));
        }
    }
    if change.execution.is_settled() {
        change.execution.holds.clear();
    }
    if change.execution.status != ExecutionStatus::Queued {
        change.execution.waiting_on = None;
    }
    effects.count_execution(before, &change.execution);
    for step in &mut change.steps {
        let handed_out = step.status == StepStatus::Pending && step.schedule.ready_at.is_some();
        if step.status != StepStatus::Running {
            // A share is held from hand-out (waiting on another limit too) to the
            // end of the attempt; a slot only while the step runs.
            let keeps = |hold: &String| handed_out && wait::is(wait::WaitKind::Share, hold);
            step.schedule.holds.retain(keeps);
        }
        if !handed_out {
            step.schedule.waiting_on = None;
            step.schedule.waiting_until = None;
        }
        let before = before_steps.iter().find(|s| s.id == step.id);
        effects.count_step(before, step);
        let ended = before.is_some_and(|b| b.status == StepStatus::Running)
            && step.status != StepStatus::Running;
        if let Some(wait) = ended.then(|| retry_after(step)).flatten() {
            let until = change.now + wait;
            for (key, limit) in usage.limited_keys(&change.execution, step) {
                if let Some(rate) = &limit.rate {
                    effects.tats.push((key, rate.paused_until(until)));
                }
            }
        }
    }
    effects.settle_counts();
    change.limits = effects;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeDelta, Utc};
    use serde_json::json;

    use super::*;
    use crate::domain::testing;

    fn limit(key: &str, concurrency: Option<i32>, rate: Option<&str>) -> Limit {
        let input = LimitInput {
            key: key.into(),
            concurrency,
            executions: None,
            rate: rate.map(str::to_owned),
            ..Default::default()
        };
        Limit::parse(input, "admin", Utc::now()).unwrap()
    }

    fn created(customer: &str, concurrency_key: Option<&str>) -> Change {
        let step = json!({ "id": "a", "name": "a", "handler": { "kind": "echo" }, "concurrencyKey": concurrency_key });
        let input = json!({ "orderId": "o", "serviceId": "s", "steps": [step], "autoStart": true });
        let mut change = testing::created(input, &["echo"], Utc::now());
        change.execution.customer_id = Some(customer.into());
        change
    }

    #[test]
    fn bad_limits_name_their_field() {
        let cases = [
            (
                json!({ "key": "customer:{tenant}", "concurrency": 1 }),
                "key",
            ),
            (json!({ "key": "openai", "concurrency": -1 }), "concurrency"),
            (json!({ "key": "openai", "rate": "sixty a minute" }), "rate"),
            (
                json!({ "key": "openai", "rate": "60/min", "burst": 0 }),
                "burst",
            ),
            (json!({ "key": "openai", "burst": 3 }), "burst"),
            (json!({ "key": "openai" }), "concurrency"),
        ];
        for (input, field) in cases {
            let input: LimitInput = serde_json::from_value(input.clone()).unwrap();
            let error = Limit::parse(input.clone(), "admin", Utc::now()).unwrap_err();
            assert!(
                matches!(&error, AppError::BadInput { field: f, .. } if f == field),
                "{input:?}: {error:?}"
            );
        }
    }

    #[test]
    fn a_literal_key_overrides_a_template() {
        let limits = [
            limit("customer:{customerId}", Some(2), None),
            limit("customer:acme", Some(9), None),
        ];
        assert_eq!(
            limit_for(&limits, "customer:acme").unwrap().concurrency,
            Some(9)
        );
        assert_eq!(
            limit_for(&limits, "customer:zeta").unwrap().concurrency,
            Some(2)
        );
        assert!(limit_for(&limits, "openai").is_none());
    }

    #[test]
    fn a_full_key_makes_new_starts_wait_behind_those_waiting() {
        let change = created("acme", Some("openai"));
        let (execution, step) = (&change.execution, &change.steps[0]);
        let mut usage = Usage {
            limits: Arc::new(vec![limit("customer:{customerId}", Some(1), None)]),
            ..Default::default()
        };
        let now = Utc::now();
        let Admission::Start { holds, .. } = usage.admit(execution, step, now) else {
            panic!("a free slot")
        };
        assert_eq!(holds, ["customer:acme"]);
        usage
            .keys
            .entry("customer:acme".into())
            .or_default()
            .running = 1;
        let waits = usage.admit(execution, step, now);
        assert!(
            matches!(&waits, Admission::Wait { on, until: None, .. } if on == "concurrency customer:acme")
        );
        // A slot frees, but another step waited first: a new one still waits; the
        // woken one starts.
        let acme = usage.keys.get_mut("customer:acme").unwrap();
        (acme.running, acme.waiting) = (0, 1);
        assert!(matches!(
            usage.admit(execution, step, now),
            Admission::Wait { .. }
        ));
        let mut woken = step.clone();
        woken.schedule.waiting_on = Some("concurrency customer:acme".into());
        assert!(matches!(
            usage.admit(execution, &woken, now),
            Admission::Start { .. }
        ));
    }

    #[test]
    fn a_rate_reserves_the_next_start_for_the_step_that_waits() {
        let change = created("acme", Some("openai"));
        let (execution, step) = (&change.execution, &change.steps[0]);
        let mut usage = Usage {
            limits: Arc::new(vec![limit("openai", None, Some("1/s"))]),
            ..Default::default()
        };
        let now = Utc::now();
        let Admission::Start { tats, .. } = usage.admit(execution, step, now) else {
            panic!("the first start goes")
        };
        usage.keys.entry("openai".into()).or_default().tat = Some(tats[0].1);
        let Admission::Wait {
            on,
            until: Some(until),
            tats,
        } = usage.admit(execution, step, now)
        else {
            panic!("the second waits")
        };
        assert_eq!(
            (on.as_str(), until),
            ("rate openai", now + TimeDelta::seconds(1))
        );
        assert_eq!(
            tats[0].1,
            now + TimeDelta::seconds(2),
            "its start is reserved"
        );
        usage.keys.get_mut("openai").unwrap().tat = Some(tats[0].1);
        let mut waiting = step.clone();
        waiting.schedule.waiting_on = Some(on);
        waiting.schedule.waiting_until = Some(until);
        assert!(matches!(
            usage.admit(execution, &waiting, until),
            Admission::Start { .. }
        ));
    }
}
