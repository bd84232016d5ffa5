//! Flow control's limits in SQL: the limits admins set, each with its audit row,
//! kept in memory too (`LimitBook`, shared by every pool of the process and read
//! again by each maintenance tick, so that a limit another process set takes effect
//! here within a second); and the view of what every key holds. What a transaction
//! reads and writes of the keys is `limit_usage`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;

use super::Store;
use super::entities::{audit, limit, limit_usage};
use super::limit_usage::{usage_from_row, waiting_executions, waiting_steps};
use super::mapping::{from_ms, to_ms};
use crate::auth::Principal;
use crate::domain::limits::wait::{self, WaitKind};
use crate::domain::limits::{BudgetPeriod, KeyTemplate, KeyUsage, Limit, Rate, TenantBudget};
use crate::domain::records::{Timestamp, new_id};
use crate::error::{AppError, AppResult};

/// The limits in force in this process.
#[derive(Clone, Default)]
pub struct LimitBook(Arc<RwLock<Arc<Vec<Limit>>>>);

impl LimitBook {
    pub fn current(&self) -> Arc<Vec<Limit>> {
        self.0.read().expect("limit book").clone()
    }

    fn replace(&self, limits: Vec<Limit>) {
        *self.0.write().expect("limit book") = Arc::new(limits);
    }
}

fn limit_from_row(row: limit::Model) -> AppResult<Limit> {
    let key = KeyTemplate::parse("key", &row.key)?;
    let rate = match (row.rate_count, row.rate_period_ms) {
        (Some(count), Some(period_ms)) => Some(Rate {
            count: count.max(1) as u32,
            period: Duration::from_millis(period_ms.max(1) as u64),
            burst: row.burst.unwrap_or(1).max(1) as u32,
        }),
        _ => None,
    };
    Ok(Limit {
        key,
        concurrency: row.concurrency.map(|c| c.max(0) as u32),
        executions: row.executions.map(|c| c.max(0) as u32),
        share: row.share.map(|c| c.max(1) as u32),
        rate,
        budget: (row.max_cost.is_some() || row.max_tokens.is_some()).then(|| TenantBudget {
            max_cost: row.max_cost,
            max_tokens: row.max_tokens,
            period: (row.budget_period.as_deref())
                .and_then(BudgetPeriod::parse)
                .unwrap_or_default(),
        }),
        updated_at: from_ms(row.updated_at),
        updated_by: row.updated_by,
    })
}

fn limit_to_row(l: &Limit) -> limit::ActiveModel {
    limit::ActiveModel {
        key: Set(l.key.to_string()),
        concurrency: Set(l.concurrency.map(|c| c as i32)),
        executions: Set(l.executions.map(|c| c as i32)),
        share: Set(l.share.map(|c| c as i32)),
        rate_count: Set(l.rate.as_ref().map(|r| r.count as i32)),
        rate_period_ms: Set(l.rate.as_ref().map(|r| r.period.as_millis() as i64)),
        burst: Set(l.rate.as_ref().map(|r| r.burst as i32)),
        max_cost: Set(l.budget.as_ref().and_then(|b| b.max_cost)),
        max_tokens: Set(l.budget.as_ref().and_then(|b| b.max_tokens)),
        budget_period: Set(l.budget.as_ref().map(|b| b.period.as_str().to_owned())),
        updated_at: Set(to_ms(l.updated_at)),
        updated_by: Set(l.updated_by.clone()),
    }
}

fn limit_audit_row(by: &Principal, action: &str, key: &str, at: Timestamp) -> audit::ActiveModel {
    audit_row_of(by, action, json!({ "key": key }), at)
}

/// The audit row of an admin's change that is not a change to an execution (a
/// limit, a schedule), with `detail` naming what it changed.
pub(super) fn audit_row_of(
    by: &Principal,
    action: &str,
    detail: serde_json::Value,
    at: Timestamp,
) -> audit::ActiveModel {
    audit::ActiveModel {
        id: Set(new_id()),
        at: Set(to_ms(at)),
        subject: Set(by.subject.clone()),
        role: Set(by.role.as_str().to_owned()),
        tenant: Set(by.tenant.clone()),
        action: Set(action.to_owned()),
        execution_id: Set(None),
        detail: Set(Some(detail)),
    }
}

impl Store {
    /// The limits in force, as this process last read them.
    pub fn limits(&self) -> Arc<Vec<Limit>> {
        self.limits.current()
    }

    /// Reads the limits again (another process may have changed them).
    pub async fn reload_limits(&self) -> AppResult<()> {
        let rows = limit::Entity::find()
            .order_by_asc(limit::Column::Key)
            .all(&self.db)
            .await?;
        let limits = rows
            .into_iter()
            .map(limit_from_row)
            .collect::<AppResult<_>>()?;
        self.limits.replace(limits);
        Ok(())
    }

    /// Sets each of `limits` (replacing every field of the one on its key) with
    /// its audit row, all in one transaction; in force here at once.
    pub async fn save_limits(&self, by: &Principal, limits: &[Limit]) -> AppResult<()> {
        let (_turn, txn) = self.begin_write().await?;
        let upsert = OnConflict::column(limit::Column::Key)
            .update_columns([
                limit::Column::Concurrency,
                limit::Column::Executions,
                limit::Column::Share,
                limit::Column::RateCount,
                limit::Column::RatePeriodMs,
                limit::Column::Burst,
                limit::Column::MaxCost,
                limit::Column::MaxTokens,
                limit::Column::BudgetPeriod,
                limit::Column::UpdatedAt,
                limit::Column::UpdatedBy,
            ])
            .to_owned();
        for limit in limits {
            limit::Entity::insert(limit_to_row(limit))
                .on_conflict(upsert.clone())
                .exec_without_returning(&txn)
                .await?;
            let key = limit.key.to_string();
            let audit = limit_audit_row(by, "setLimit", &key, limit.updated_at);
            audit::Entity::insert(audit)
                .exec_without_returning(&txn)
                .await?;
        }
        self.recorded(txn.commit().await.map_err(AppError::from))?;
        self.reload_limits().await
    }

    /// Removes the limit on `key` with its audit row; false when there was none.
    pub async fn remove_limit(&self, by: &Principal, key: &str, now: Timestamp) -> AppResult<bool> {
        let (_turn, txn) = self.begin_write().await?;
        let removed = limit::Entity::delete_many()
            .filter(limit::Column::Key.eq(key))
            .exec(&txn)
            .await?
            .rows_affected;
        if removed > 0 {
            let audit = limit_audit_row(by, "removeLimit", key, now);
            audit::Entity::insert(audit)
                .exec_without_returning(&txn)
                .await?;
        }
        self.recorded(txn.commit().await.map_err(AppError::from))?;
        self.reload_limits().await?;
        Ok(removed > 0)
    }

    /// What every key that holds or waits on anything holds now.
    pub async fn key_states(&self) -> AppResult<Vec<KeyState>> {
        let rows = limit_usage::Entity::find()
            .order_by_asc(limit_usage::Column::Key)
            .all(&self.db)
            .await?;
        let mut keys: BTreeMap<String, KeyState> = rows
            .into_iter()
            .map(|row| {
                let usage = usage_from_row(&row);
                let state = KeyState {
                    key: row.key.clone(),
                    usage,
                    waiting_steps: 0,
                    oldest_waiting_since: None,
                };
                (row.key, state)
            })
            .collect();
        let steps = waiting_steps(&self.db, None).await?;
        let executions = waiting_executions(&self.db, None).await?;
        for (label, count, oldest) in steps.into_iter().chain(executions) {
            // A share's waiters count under the share's key, other waits under theirs.
            let key = match wait::parse(&label) {
                Some((WaitKind::Share, _)) => label.as_str(),
                _ => wait::key_of(&label),
            };
            let state = keys.entry(key.to_owned()).or_insert_with(|| KeyState {
                key: key.to_owned(),
                usage: KeyUsage::default(),
                waiting_steps: 0,
                oldest_waiting_since: None,
            });
            if let Some(oldest) = oldest.map(from_ms) {
                let since = state.oldest_waiting_since.get_or_insert(oldest);
                *since = (*since).min(oldest);
            }
            match wait::parse(&label).map(|(kind, _)| kind) {
                Some(WaitKind::Executions) => state.usage.executions_waiting += count,
                Some(WaitKind::Concurrency) => {
                    state.usage.waiting += count;
                    state.waiting_steps += count;
                }
                _ => state.waiting_steps += count,
            }
        }
        Ok(keys.into_values().collect())
    }

    /// The labels steps and executions wait on, with how many wait on each.
    pub async fn waiting_labels(&self) -> AppResult<Vec<(String, i64)>> {
        let steps = waiting_steps(&self.db, None).await?;
        let executions = waiting_executions(&self.db, None).await?;
        Ok(steps
            .into_iter()
            .chain(executions)
            .map(|(label, count, _)| (label, count))
            .collect())
    }
}

/// What one key holds and what waits on it.
pub struct KeyState {
    pub key: String,
    pub usage: KeyUsage,
    /// Steps waiting on the key: for a slot, or for their turn at its rate.
    pub waiting_steps: i64,
    /// When the longest-waiting step was handed out, or execution created.
    pub oldest_waiting_since: Option<Timestamp>,
}
