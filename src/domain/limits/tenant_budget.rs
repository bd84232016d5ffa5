//! A key's budget: what all executions of one customer (service, provider, key) may
//! spend per UTC day or month, set on a limit (`maxCost`, `maxTokens`,
//! `budgetPeriod`). What each change adds to an execution's cost and tokens is added
//! to every such key of the execution (`limits::account`); once a key has spent its
//! budget in the period, each of its executions is stopped as its own budget would
//! stop it (`budget::enforce`) at its next change, a start included, until the
//! period ends or the budget is raised.

use async_graphql::Enum;
use chrono::{Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{Usage, execution_keys, limit_for};
use crate::domain::records::{Execution, Timestamp};

#[derive(Enum, Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BudgetPeriod {
    #[default]
    Day,
    Month,
}

impl BudgetPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Day => "DAY",
            BudgetPeriod::Month => "MONTH",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [BudgetPeriod::Day, BudgetPeriod::Month]
            .into_iter()
            .find(|p| p.as_str() == name)
    }

    /// When the period holding `now` began (UTC).
    pub fn start(self, now: Timestamp) -> Timestamp {
        let day = now.date_naive();
        let first = match self {
            BudgetPeriod::Day => day,
            BudgetPeriod::Month => day.with_day(1).unwrap_or(day),
        };
        Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TenantBudget {
    pub max_cost: Option<f64>,
    pub max_tokens: Option<i64>,
    pub period: BudgetPeriod,
}

/// What a change adds to the execution's cost and tokens.
pub fn spent(before: &Execution, after: &Execution) -> (f64, i64) {
    let cost = after.metrics.cost.unwrap_or(0.0) - before.metrics.cost.unwrap_or(0.0);
    let tokens = after.metrics.tokens_used.unwrap_or(0) - before.metrics.tokens_used.unwrap_or(0);
    (cost.max(0.0), tokens.max(0))
}

/// The keys of `execution` that have a budget, each with it.
pub fn budget_keys<'a>(usage: &'a Usage, execution: &Execution) -> Vec<(String, &'a TenantBudget)> {
    if usage.is_idle() {
        return Vec::new();
    }
    execution_keys(execution)
        .into_iter()
        .filter_map(|key| {
            let budget = limit_for(&usage.limits, &key)?.budget.as_ref()?;
            Some((key, budget))
        })
        .collect()
}

/// What a key of `after` has spent beyond its budget once this change (from
/// `before`) is counted, if anything.
pub fn exceeded(
    before: &Execution,
    after: &Execution,
    usage: &Usage,
    now: Timestamp,
) -> Option<String> {
    let (cost, tokens) = spent(before, after);
    for (key, budget) in budget_keys(usage, after) {
        let period = budget.period.start(now);
        let held = usage.keys.get(&key);
        let in_period = held.filter(|u| u.period_start == Some(period));
        let spent_cost = in_period.map_or(0.0, |u| u.spent_cost) + cost;
        let spent_tokens = in_period.map_or(0, |u| u.spent_tokens) + tokens;
        let period = budget.period.as_str().to_lowercase();
        if let Some(max) = budget.max_cost
            && spent_cost > max
        {
            return Some(format!(
                "{key} spent {spent_cost} this {period}, over maxCost {max}"
            ));
        }
        if let Some(max) = budget.max_tokens
            && spent_tokens > max
        {
            return Some(format!(
                "{key} used {spent_tokens} tokens this {period}, over maxTokens {max}"
            ));
        }
    }
    None
}
