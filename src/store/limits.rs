//! Flow control's SQL. The limits admins set, kept in memory too (`LimitBook`, shared
//! by every pool of the process and read again by each maintenance tick, so that a
//! limit another process set takes effect here within a second); what each limited
//! key holds, read under lock by the transactions that may start or stop steps of
//! those keys and moved by the changes they save; and the steps that wait on a key.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use super::Store;
use super::entities::{audit, limit, limit_usage, step};
use super::mapping::{from_ms, to_ms};
use crate::auth::Principal;
use crate::domain::change::Change;
use crate::domain::limits::{KeyTemplate, KeyUsage, Limit, Rate, Usage, slot_key};
use crate::domain::records::{Timestamp, new_id};
use crate::domain::schedule::StepJob;
use crate::domain::snapshot::Snapshot;
use crate::domain::status::StepStatus;
use crate::domain::values::Priority;
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

/// A waiting step, as the sweep and the wake-up read it.
pub struct Waiter {
    pub job: StepJob,
    pub waiting_until: Option<Timestamp>,
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
        rate,
        updated_at: from_ms(row.updated_at),
        updated_by: row.updated_by,
    })
}

fn limit_to_row(l: &Limit) -> limit::ActiveModel {
    limit::ActiveModel {
        key: Set(l.key.to_string()),
        concurrency: Set(l.concurrency.map(|c| c as i32)),
        rate_count: Set(l.rate.as_ref().map(|r| r.count as i32)),
        rate_period_ms: Set(l.rate.as_ref().map(|r| r.period.as_millis() as i64)),
        burst: Set(l.rate.as_ref().map(|r| r.burst as i32)),
        updated_at: Set(to_ms(l.updated_at)),
        updated_by: Set(l.updated_by.clone()),
    }
}

fn limit_audit_row(by: &Principal, action: &str, key: &str, at: Timestamp) -> audit::ActiveModel {
    audit::ActiveModel {
        id: Set(new_id()),
        at: Set(to_ms(at)),
        subject: Set(by.subject.clone()),
        role: Set(by.role.as_str().to_owned()),
        tenant: Set(by.tenant.clone()),
        action: Set(action.to_owned()),
        execution_id: Set(None),
        detail: Set(Some(json!({ "key": key }))),
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

    /// Sets `limit` (replacing the one on its key) with its audit row, in one
    /// transaction; in force here at once.
    pub async fn save_limit(&self, by: &Principal, limit: &Limit) -> AppResult<()> {
        let (_turn, txn) = self.begin_write().await?;
        let upsert = OnConflict::column(limit::Column::Key)
            .update_columns([
                limit::Column::Concurrency,
                limit::Column::RateCount,
                limit::Column::RatePeriodMs,
                limit::Column::Burst,
                limit::Column::UpdatedAt,
                limit::Column::UpdatedBy,
            ])
            .to_owned();
        limit::Entity::insert(limit_to_row(limit))
            .on_conflict(upsert)
            .exec_without_returning(&txn)
            .await?;
        let key = limit.key.to_string();
        let audit = limit_audit_row(by, "setLimit", &key, limit.updated_at);
        audit::Entity::insert(audit)
            .exec_without_returning(&txn)
            .await?;
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

    /// What every key that held or waited on anything holds now: slots, rate and
    /// the steps waiting, with when the longest-waiting one was handed out.
    pub async fn key_usage(&self) -> AppResult<Vec<(String, KeyUsage, i64, Option<Timestamp>)>> {
        let rows = limit_usage::Entity::find()
            .order_by_asc(limit_usage::Column::Key)
            .all(&self.db)
            .await?;
        let mut keys: BTreeMap<String, (KeyUsage, i64, Option<Timestamp>)> = rows
            .into_iter()
            .map(|row| {
                let usage = KeyUsage {
                    running: row.running,
                    waiting: 0,
                    tat: row.tat.map(from_ms),
                };
                (row.key, (usage, 0, None))
            })
            .collect();
        let waiting: Vec<(String, i64, Option<i64>)> = step::Entity::find()
            .select_only()
            .column(step::Column::WaitingOn)
            .column_as(Expr::cust("COUNT(*)"), "waiting")
            .column_as(Expr::cust("MIN(ready_at)"), "oldest")
            .filter(step::Column::WaitingOn.is_not_null())
            .filter(step::Column::Status.eq(StepStatus::Pending.as_str()))
            .group_by(step::Column::WaitingOn)
            .into_tuple()
            .all(&self.db)
            .await?;
        for (label, count, oldest) in waiting {
            let key = label.split_once(' ').map_or(label.as_str(), |(_, key)| key);
            let entry = keys.entry(key.to_owned()).or_default();
            entry.1 += count;
            let oldest = oldest.map(from_ms);
            entry.2 = match (entry.2, oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if slot_key(&label).is_some() {
                entry.0.waiting += count;
            }
        }
        Ok(keys
            .into_iter()
            .map(|(key, (usage, waiting, oldest))| (key, usage, waiting, oldest))
            .collect())
    }

    /// The steps waiting on `label`, oldest first, at most `limit`.
    pub async fn waiters(&self, label: &str, limit: u64) -> AppResult<Vec<Waiter>> {
        let rows: Vec<(String, String, i32, Option<i64>, Option<i64>)> = step::Entity::find()
            .select_only()
            .columns([
                step::Column::ExecutionId,
                step::Column::StepId,
                step::Column::Attempt,
                step::Column::ReadyAt,
                step::Column::WaitingUntil,
            ])
            .filter(step::Column::WaitingOn.eq(label))
            .filter(step::Column::Status.eq(StepStatus::Pending.as_str()))
            .order_by_asc(step::Column::ReadyAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        let ids = rows.iter().map(|r| r.0.clone()).collect();
        let executions = self.executions_by_id(ids).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(execution_id, step_id, attempt, ready_at, until)| {
                let priority = executions
                    .get(&execution_id)
                    .map_or(Priority::Normal, |e| e.priority);
                Some(Waiter {
                    job: StepJob {
                        execution_id,
                        step_id,
                        attempt,
                        priority,
                        ready_at: from_ms(ready_at?),
                    },
                    waiting_until: until.map(from_ms),
                })
            })
            .collect())
    }

    /// The labels steps wait on, with how many wait on each.
    pub async fn waiting_labels(&self) -> AppResult<Vec<(String, i64)>> {
        Ok(step::Entity::find()
            .select_only()
            .column(step::Column::WaitingOn)
            .column_as(Expr::cust("COUNT(*)"), "waiting")
            .filter(step::Column::WaitingOn.is_not_null())
            .filter(step::Column::Status.eq(StepStatus::Pending.as_str()))
            .group_by(step::Column::WaitingOn)
            .into_tuple()
            .all(&self.db)
            .await?)
    }
}

/// What the limited keys of these snapshots' steps hold, read under lock: the keys
/// of steps that may start (pending) and of steps holding slots (running), locked
/// in key order, so that two transactions never wait on each other's keys. Idle, and
/// no query, when no limit is in force or no step counts against one.
pub(super) async fn read_usage(
    txn: &DatabaseTransaction,
    limits: Arc<Vec<Limit>>,
    snapshots: &BTreeMap<String, Snapshot>,
) -> AppResult<Usage> {
    let mut usage = Usage {
        limits,
        keys: BTreeMap::new(),
    };
    if usage.is_idle() {
        return Ok(usage);
    }
    let mut keys = BTreeSet::new();
    for snapshot in snapshots.values() {
        for step in &snapshot.steps {
            match step.status {
                StepStatus::Pending => keys.extend(
                    usage
                        .limited_keys(&snapshot.execution, step)
                        .into_iter()
                        .map(|(key, _)| key),
                ),
                StepStatus::Running => keys.extend(step.schedule.holds.iter().cloned()),
                _ => {}
            }
        }
    }
    if keys.is_empty() {
        return Ok(usage);
    }
    // A row per key first, so that there is a row to lock.
    let rows = keys.iter().map(|key| limit_usage::ActiveModel {
        key: Set(key.clone()),
        running: Set(0),
        tat: Set(None),
    });
    limit_usage::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(limit_usage::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    let mut locked = limit_usage::Entity::find()
        .filter(limit_usage::Column::Key.is_in(keys.iter().cloned()))
        .order_by_asc(limit_usage::Column::Key);
    if txn.get_database_backend() == DbBackend::Postgres {
        locked = locked.lock_exclusive();
    }
    for row in locked.all(txn).await? {
        let key_usage = KeyUsage {
            running: row.running,
            waiting: 0,
            tat: row.tat.map(from_ms),
        };
        usage.keys.insert(row.key, key_usage);
    }
    let labels: Vec<String> = keys
        .iter()
        .map(|key| crate::domain::limits::waiting_label("concurrency", key))
        .collect();
    let waiting: Vec<(String, i64)> = step::Entity::find()
        .select_only()
        .column(step::Column::WaitingOn)
        .column_as(Expr::cust("COUNT(*)"), "waiting")
        .filter(step::Column::WaitingOn.is_in(labels))
        .filter(step::Column::Status.eq(StepStatus::Pending.as_str()))
        .group_by(step::Column::WaitingOn)
        .into_tuple()
        .all(txn)
        .await?;
    for (label, count) in waiting {
        if let Some(key) = slot_key(&label) {
            usage.keys.entry(key.to_owned()).or_default().waiting = count;
        }
    }
    Ok(usage)
}

/// Saves what the changes did to the keys: slots taken and given back, and the
/// rates' new arrival times.
pub(super) async fn write_usage(txn: &DatabaseTransaction, changes: &[&Change]) -> AppResult<()> {
    let mut keys: BTreeMap<&str, (i64, Option<Timestamp>)> = BTreeMap::new();
    for change in changes {
        for (key, delta) in &change.limits.running {
            keys.entry(key).or_default().0 += delta;
        }
        for (key, tat) in &change.limits.tats {
            let entry = keys.entry(key).or_default();
            entry.1 = entry.1.max(Some(*tat));
        }
    }
    keys.retain(|_, (delta, tat)| *delta != 0 || tat.is_some());
    if keys.is_empty() {
        return Ok(());
    }
    let rows = keys
        .into_iter()
        .map(|(key, (delta, tat))| limit_usage::ActiveModel {
            key: Set(key.to_owned()),
            running: Set(delta),
            tat: Set(tat.map(to_ms)),
        });
    let upsert = OnConflict::column(limit_usage::Column::Key)
        .value(
            limit_usage::Column::Running,
            Expr::cust("limit_usage.running + excluded.running"),
        )
        .value(
            limit_usage::Column::Tat,
            Expr::cust("COALESCE(excluded.tat, limit_usage.tat)"),
        )
        .to_owned();
    limit_usage::Entity::insert_many(rows)
        .on_conflict(upsert)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}
