//! What the limited keys hold, in SQL: read under lock by the transactions that may
//! start or stop steps and executions of those keys, moved by the changes they save,
//! and the steps and executions waiting on a key, for the scheduler to wake.

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::Store;
use super::entities::{execution, limit_usage, step};
use super::mapping::{from_ms, to_ms};
use super::scheduler_queries::step_job;
use crate::domain::change::Change;
use crate::domain::limits::wait::{self, WaitKind};
use crate::domain::limits::{KeyUsage, Limit, Usage, keys_in_play};
use crate::domain::records::Timestamp;
use crate::domain::schedule::StepJob;
use crate::domain::snapshot::Snapshot;
use crate::domain::status::{ExecutionStatus, StepStatus};
use crate::domain::values::Priority;
use crate::error::AppResult;

/// What a `limit_usage` row says a key holds (the waiting counts are read apart).
pub(super) fn usage_from_row(row: &limit_usage::Model) -> KeyUsage {
    KeyUsage {
        running: row.running,
        executions: row.executions,
        tat: row.tat.map(from_ms),
        spent_cost: row.spent_cost,
        spent_tokens: row.spent_tokens,
        period_start: row.period_start.map(from_ms),
        ..Default::default()
    }
}

/// A waiting step, as the sweep and the wake-up read it.
pub struct Waiter {
    pub job: StepJob,
    pub waiting_until: Option<Timestamp>,
}

/// A waiting step as read: execution, step, attempt, handed out, reserved start.
type WaiterRow = (String, String, i32, Option<i64>, Option<i64>);

/// A QUEUED execution waiting for a slot: its id, priority and since when.
pub struct WaitingExecution {
    pub id: String,
    pub priority: Priority,
    pub since: Timestamp,
}

/// Labels with how many wait on each and the oldest wait (ms): of the steps waiting,
/// all of them or those on `labels`.
pub(super) async fn waiting_steps(
    db: &impl ConnectionTrait,
    labels: Option<Vec<String>>,
) -> AppResult<Vec<(String, i64, Option<i64>)>> {
    let mut query = step::Entity::find()
        .select_only()
        .column(step::Column::WaitingOn)
        .column_as(Expr::cust("COUNT(*)"), "waiting")
        .column_as(Expr::cust("MIN(ready_at)"), "oldest")
        .filter(step::Column::WaitingOn.is_not_null())
        .filter(step::Column::Status.eq(StepStatus::Pending.as_str()));
    if let Some(labels) = labels {
        query = query.filter(step::Column::WaitingOn.is_in(labels));
    }
    let rows = query.group_by(step::Column::WaitingOn).into_tuple();
    Ok(rows.all(db).await?)
}

/// As `waiting_steps`, of the QUEUED executions waiting.
pub(super) async fn waiting_executions(
    db: &impl ConnectionTrait,
    labels: Option<Vec<String>>,
) -> AppResult<Vec<(String, i64, Option<i64>)>> {
    let mut query = execution::Entity::find()
        .select_only()
        .column(execution::Column::WaitingOn)
        .column_as(Expr::cust("COUNT(*)"), "waiting")
        .column_as(Expr::cust("MIN(created_at)"), "oldest")
        .filter(execution::Column::WaitingOn.is_not_null())
        .filter(execution::Column::Status.eq(ExecutionStatus::Queued.as_str()));
    if let Some(labels) = labels {
        query = query.filter(execution::Column::WaitingOn.is_in(labels));
    }
    let rows = query.group_by(execution::Column::WaitingOn).into_tuple();
    Ok(rows.all(db).await?)
}

impl Store {
    /// The steps waiting on `label`, oldest first, at most `limit`.
    pub async fn waiters(&self, label: &str, limit: u64) -> AppResult<Vec<Waiter>> {
        let rows: Vec<WaiterRow> = step::Entity::find()
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
                let job = step_job(&executions, execution_id, step_id, attempt, ready_at?)?;
                let waiting_until = until.map(from_ms);
                Some(Waiter { job, waiting_until })
            })
            .collect())
    }

    /// The QUEUED executions waiting on `label`, oldest first, at most `limit`.
    pub async fn waiting_on(&self, label: &str, limit: u64) -> AppResult<Vec<WaitingExecution>> {
        let rows: Vec<(String, i16, i64)> = execution::Entity::find()
            .select_only()
            .columns([
                execution::Column::Id,
                execution::Column::Priority,
                execution::Column::CreatedAt,
            ])
            .filter(execution::Column::WaitingOn.eq(label))
            .filter(execution::Column::Status.eq(ExecutionStatus::Queued.as_str()))
            .order_by_asc(execution::Column::CreatedAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, priority, created_at)| WaitingExecution {
                id,
                priority: Priority::from_rank(priority),
                since: from_ms(created_at),
            })
            .collect())
    }
}

/// What the keys in play of these snapshots hold, read under lock and in key order,
/// so that two transactions never wait on each other's keys. Idle, and no query,
/// when no limit is in force or nothing in play counts against one.
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
    let keys = keys_in_play(&usage, snapshots.values());
    if keys.is_empty() {
        return Ok(usage);
    }
    // A row per key first, so that there is a row to lock.
    let rows = keys.iter().map(|key| limit_usage::ActiveModel {
        key: Set(key.clone()),
        running: Set(0),
        executions: Set(0),
        tat: Set(None),
        spent_cost: Set(0.0),
        spent_tokens: Set(0),
        period_start: Set(None),
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
        let key_usage = usage_from_row(&row);
        usage.keys.insert(row.key, key_usage);
    }
    let labels = |kind: WaitKind| -> Vec<String> { keys.iter().map(|key| kind.on(key)).collect() };
    // The keys in play include the shares' keys, which are their waiters' labels.
    let step_labels = labels(WaitKind::Concurrency)
        .into_iter()
        .chain(keys.iter().cloned());
    for (label, count, _) in waiting_steps(txn, Some(step_labels.collect())).await? {
        if let Some(key) = wait::counted_step_key(&label) {
            usage.keys.entry(key.to_owned()).or_default().waiting = count;
        }
    }
    for (label, count, _) in waiting_executions(txn, Some(labels(WaitKind::Executions))).await? {
        let key = wait::key_of(&label).to_owned();
        usage.keys.entry(key).or_default().executions_waiting = count;
    }
    Ok(usage)
}

/// What one transaction's changes did to one key.
#[derive(Default)]
struct KeyWrite {
    running: i64,
    executions: i64,
    tat: Option<Timestamp>,
    spent: Option<(f64, i64, Timestamp)>,
}

/// Saves what the changes did to the keys: slots of steps and executions taken and
/// given back, the rates' new arrival times, and what was spent against budgets (a
/// new period starts the count again).
pub(super) async fn write_usage(txn: &DatabaseTransaction, changes: &[&Change]) -> AppResult<()> {
    let mut keys: BTreeMap<&str, KeyWrite> = BTreeMap::new();
    for change in changes {
        let limits = &change.limits;
        for (key, delta) in &limits.running {
            keys.entry(key).or_default().running += delta;
        }
        for (key, delta) in &limits.executions {
            keys.entry(key).or_default().executions += delta;
        }
        for (key, tat) in &limits.tats {
            let entry = keys.entry(key).or_default();
            entry.tat = entry.tat.max(Some(*tat));
        }
        for (key, (cost, tokens, period)) in &limits.spent {
            let entry = keys.entry(key).or_default();
            entry.spent = match entry.spent {
                Some((c, t, p)) if p == *period => Some((c + cost, t + tokens, p)),
                Some(earlier) if earlier.2 > *period => Some(earlier),
                _ => Some((*cost, *tokens, *period)),
            };
        }
    }
    keys.retain(|_, w| w.running != 0 || w.executions != 0 || w.tat.is_some() || w.spent.is_some());
    if keys.is_empty() {
        return Ok(());
    }
    let rows = keys.into_iter().map(|(key, w)| limit_usage::ActiveModel {
        key: Set(key.to_owned()),
        running: Set(w.running),
        executions: Set(w.executions),
        tat: Set(w.tat.map(to_ms)),
        spent_cost: Set(w.spent.map_or(0.0, |s| s.0)),
        spent_tokens: Set(w.spent.map_or(0, |s| s.1)),
        period_start: Set(w.spent.map(|s| to_ms(s.2))),
    });
    // What was spent adds up within one period; spending in a new one starts over.
    let same_period =
        "excluded.period_start IS NULL OR limit_usage.period_start = excluded.period_start";
    let upsert = OnConflict::column(limit_usage::Column::Key)
        .value(
            limit_usage::Column::Running,
            Expr::cust("limit_usage.running + excluded.running"),
        )
        .value(
            limit_usage::Column::Executions,
            Expr::cust("limit_usage.executions + excluded.executions"),
        )
        .value(
            limit_usage::Column::Tat,
            // The later arrival time: a pause can move it on, never back.
            Expr::cust(
                "CASE WHEN limit_usage.tat IS NULL OR excluded.tat > limit_usage.tat \
                 THEN excluded.tat ELSE limit_usage.tat END",
            ),
        )
        .value(
            limit_usage::Column::SpentCost,
            Expr::cust(format!("CASE WHEN {same_period} THEN limit_usage.spent_cost + excluded.spent_cost ELSE excluded.spent_cost END")),
        )
        .value(
            limit_usage::Column::SpentTokens,
            Expr::cust(format!("CASE WHEN {same_period} THEN limit_usage.spent_tokens + excluded.spent_tokens ELSE excluded.spent_tokens END")),
        )
        .value(
            limit_usage::Column::PeriodStart,
            Expr::cust("COALESCE(excluded.period_start, limit_usage.period_start)"),
        )
        .to_owned();
    limit_usage::Entity::insert_many(rows)
        .on_conflict(upsert)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}
