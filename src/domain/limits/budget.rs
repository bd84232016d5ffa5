//! An execution's budget: the most it may cost, the most tokens it may use and the
//! longest it may run. Checked on every change of a RUNNING execution: once what its
//! steps recorded crosses the budget, it hands out no further step and is PAUSED (or
//! FAILED with `BUDGET_EXCEEDED`, per `onExceed`), with a `BUDGET_EXCEEDED` event and
//! a WARN log line. Raising the budget (`updateExecution`) and resuming continues;
//! resuming without raising it pauses it again at once. A key's budget over all its
//! executions stops them the same way (`tenant_budget`).

use async_graphql::{Enum, InputObject, SimpleObject};
use serde::{Deserialize, Serialize};

use super::{Usage, tenant_budget};
use crate::domain::change::Change;
use crate::domain::lifecycle::fail_into;
use crate::domain::records::{EventPayload, Execution, Timestamp};
use crate::domain::status::ExecutionStatus;
use crate::domain::values::{EventType, ExecutionError, LogLevel};
use crate::error::{AppError, AppResult};

/// What happens to an execution that crosses its budget.
#[derive(Enum, Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BudgetAction {
    /// PAUSED: raise the budget and resume to go on.
    #[default]
    Pause,
    /// FAILED with `BUDGET_EXCEEDED`, not retried.
    Fail,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    pub max_cost: Option<f64>,
    pub max_tokens: Option<i64>,
    pub max_duration_ms: Option<i64>,
    pub on_exceed: BudgetAction,
}

#[derive(InputObject, Clone, Debug)]
pub struct BudgetInput {
    /// At most this cost, as the steps' metrics report it.
    pub max_cost: Option<f64>,
    /// At most this many tokens.
    pub max_tokens: Option<i64>,
    /// At most this long running, paused time not counted.
    pub max_duration_ms: Option<i64>,
    #[graphql(default)]
    pub on_exceed: BudgetAction,
}

impl BudgetInput {
    /// The budget, every bound positive and finite; `field` names it in errors.
    pub fn parse(self, field: &str) -> AppResult<Budget> {
        if self.max_cost.is_none() && self.max_tokens.is_none() && self.max_duration_ms.is_none() {
            return Err(AppError::bad_input(
                field,
                "a budget sets maxCost, maxTokens, maxDurationMs, or several",
            ));
        }
        check_bounds(field, self.max_cost, self.max_tokens)?;
        let duration_ok = self.max_duration_ms.is_none_or(|d| d > 0);
        bound(&format!("{field}.maxDurationMs"), duration_ok)?;
        Ok(Budget {
            max_cost: self.max_cost,
            max_tokens: self.max_tokens,
            max_duration_ms: self.max_duration_ms,
            on_exceed: self.on_exceed,
        })
    }
}

/// `Ok` when `ok`, else `BAD_USER_INPUT` on `field`: a budget's bound is positive.
fn bound(field: &str, ok: bool) -> AppResult<()> {
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_input(
            field,
            "a budget's bound is a positive number",
        ))
    }
}

/// Checks a cost and a token bound (an execution's or a key's), named under
/// `prefix` (`input.budget`; empty for a limit's own fields).
pub fn check_bounds(prefix: &str, max_cost: Option<f64>, max_tokens: Option<i64>) -> AppResult<()> {
    let name = |field: &str| match prefix {
        "" => field.to_owned(),
        _ => format!("{prefix}.{field}"),
    };
    bound(
        &name("maxCost"),
        max_cost.is_none_or(|c| c.is_finite() && c > 0.0),
    )?;
    bound(&name("maxTokens"), max_tokens.is_none_or(|t| t > 0))
}

/// What the execution of `change` has spent beyond its budget at `now`, if anything:
/// which bound, what was spent and what the bound is.
fn exceeded(change: &Change, now: Timestamp) -> Option<String> {
    let execution = &change.execution;
    let budget = execution.budget.as_ref()?;
    let metrics = &execution.metrics;
    if let (Some(max), Some(cost)) = (budget.max_cost, metrics.cost)
        && cost > max
    {
        return Some(format!("cost {cost} is over maxCost {max}"));
    }
    if let (Some(max), Some(tokens)) = (budget.max_tokens, metrics.tokens_used)
        && tokens > max
    {
        return Some(format!("tokens {tokens} are over maxTokens {max}"));
    }
    let ran = metrics
        .started_at
        .map(|started| (now - started).num_milliseconds() - execution.paused_ms);
    if let (Some(max), Some(ran)) = (budget.max_duration_ms, ran)
        && ran > max
    {
        return Some(format!("running {ran} ms is over maxDurationMs {max}"));
    }
    None
}

/// Stops a RUNNING execution that the change (from `before`) left over its budget,
/// or whose key spent its own (`tenant_budget`, what the keys spent in `usage`).
/// Applied to every change, before its steps are handed out.
pub fn enforce(change: &mut Change, before: &Execution, usage: &Usage) -> AppResult<()> {
    if change.execution.status != ExecutionStatus::Running {
        return Ok(());
    }
    let now = change.now;
    let why = exceeded(change, now)
        .or_else(|| tenant_budget::exceeded(before, &change.execution, usage, now));
    let Some(why) = why else {
        return Ok(());
    };
    let message = format!("Budget exceeded: {why}");
    change.emit(
        EventType::BudgetExceeded,
        EventPayload::default(),
        Some(message.clone()),
    );
    change.note(LogLevel::Warn, None, message.clone(), None);
    let action = change.execution.budget.as_ref().map(|b| b.on_exceed);
    match action.unwrap_or_default() {
        BudgetAction::Pause => {
            change.move_to(ExecutionStatus::Paused)?;
            change.emit(
                EventType::ExecutionPaused,
                EventPayload::default(),
                Some(message),
            );
        }
        BudgetAction::Fail => {
            let error = ExecutionError {
                code: "BUDGET_EXCEEDED".into(),
                message,
                stack: None,
                step: None,
                recoverable: false,
                retry_count: 0,
                context: None,
                timestamp: Some(now),
            };
            fail_into(change, error, None)?;
        }
    }
    Ok(())
}
