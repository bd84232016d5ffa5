//! Snapshots (`domain::snapshot`) read under lock: the executions a transaction
//! changes, locked in id order before anything is read (so writers to one execution
//! queue instead of retrying, and two transactions locking several never deadlock),
//! with their steps. SQLite
//! takes its write lock with a no-op UPDATE; Postgres locks the rows it reads with
//! `SELECT … FOR UPDATE`.

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::entities::*;
use super::mapping::*;
use super::scope;
use crate::auth::Principal;
use crate::domain::snapshot::Snapshot;
use crate::error::AppResult;

/// Locks the executions among `ids` that the principal may see and reads them, with
/// their steps and, when asked, their webhooks; keyed by id. Missing or invisible
/// executions are absent.
pub(super) async fn lock_snapshots(
    txn: &DatabaseTransaction,
    principal: &Principal,
    ids: &[&str],
    with_webhooks: bool,
) -> AppResult<BTreeMap<String, Snapshot>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    let mut visible = execution::Entity::find()
        .filter(execution::Column::Id.is_in(ids.iter().copied()))
        .filter(scope::condition(&principal.scope()))
        .order_by_asc(execution::Column::Id);
    if txn.get_database_backend() == DbBackend::Sqlite {
        execution::Entity::update_many()
            .col_expr(
                execution::Column::LastSequence,
                Expr::col(execution::Column::LastSequence),
            )
            .filter(execution::Column::Id.is_in(ids.iter().copied()))
            .exec(txn)
            .await?;
    } else {
        visible = visible.lock_exclusive();
    }
    let mut snapshots = BTreeMap::new();
    for row in visible.all(txn).await? {
        let execution = execution_from_row(row)?;
        let snapshot = Snapshot {
            execution,
            steps: Vec::new(),
            webhooks: Vec::new(),
            usage: Default::default(),
        };
        snapshots.insert(snapshot.execution.id.clone(), snapshot);
    }
    if snapshots.is_empty() {
        return Ok(snapshots);
    }
    let found: Vec<String> = snapshots.keys().cloned().collect();
    let steps = step::Entity::find()
        .filter(step::Column::ExecutionId.is_in(found.clone()))
        .order_by_asc(step::Column::ExecutionId)
        .order_by_asc(step::Column::Idx)
        .all(txn)
        .await?;
    for row in steps {
        let execution_id = row.execution_id.clone();
        if let Some(snapshot) = snapshots.get_mut(&execution_id) {
            snapshot.steps.push(step_from_row(row)?);
        }
    }
    if with_webhooks {
        let webhooks = webhook::Entity::find()
            .filter(webhook::Column::ExecutionId.is_in(found))
            .order_by_asc(webhook::Column::Id)
            .all(txn)
            .await?;
        for row in webhooks {
            let webhook = webhook_from_row(row)?;
            if let Some(snapshot) = snapshots.get_mut(&webhook.execution_id) {
                snapshot.webhooks.push(webhook);
            }
        }
    }
    Ok(snapshots)
}
