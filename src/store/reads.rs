//! Reads of one execution and what hangs off it. The execution itself is always read
//! through the caller's tenant scope; the parts are read by execution id once the
//! execution was found visible.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use super::Store;
use super::entities::*;
use super::mapping::*;
use super::scope;
use crate::auth::{Principal, TenantScope};
use crate::domain::records::*;
use crate::domain::values::LogLevel;
use crate::error::AppResult;

/// The execution if it exists and the principal may see it.
async fn execution_on(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: &str,
) -> AppResult<Option<Execution>> {
    // `.all()` rather than `.one()`: a primary-key lookup needs no `LIMIT ?`, and on
    // SQLite a bound LIMIT makes every execution of the cached statement re-prepare it.
    execution::Entity::find_by_id(id.to_owned())
        .filter(scope::condition(&principal.scope()))
        .all(conn)
        .await?
        .into_iter()
        .next()
        .map(execution_from_row)
        .transpose()
}

/// Rows read for many executions at once, grouped by execution id (`rows` come
/// ordered within each execution).
pub(super) fn grouped<T>(
    rows: impl Iterator<Item = AppResult<(String, T)>>,
) -> AppResult<HashMap<String, Vec<T>>> {
    let mut groups: HashMap<String, Vec<T>> = HashMap::new();
    for row in rows {
        let (execution_id, item) = row?;
        groups.entry(execution_id).or_default().push(item);
    }
    Ok(groups)
}

/// The rows of `E` that belong to the executions, in `order` within each, grouped by
/// execution after `map` (which returns the row's execution id with the record).
async fn parts_of<E, T>(
    conn: &impl ConnectionTrait,
    ids: &[String],
    execution_id: E::Column,
    order: E::Column,
    map: impl Fn(E::Model) -> AppResult<(String, T)>,
) -> AppResult<HashMap<String, Vec<T>>>
where
    E: EntityTrait,
{
    let rows = E::find()
        .filter(execution_id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(execution_id)
        .order_by_asc(order)
        .all(conn)
        .await?;
    grouped(rows.into_iter().map(map))
}

/// The executions' log lines, narrowed to some levels and one step when given.
pub(super) fn log_selection(
    ids: &[String],
    levels: Option<&[LogLevel]>,
    step_id: Option<&str>,
) -> Select<log::Entity> {
    let mut query =
        log::Entity::find().filter(log::Column::ExecutionId.is_in(ids.iter().map(String::as_str)));
    if let Some(levels) = levels {
        query = query.filter(log::Column::Level.is_in(levels.iter().map(|l| l.as_str())));
    }
    if let Some(step_id) = step_id {
        query = query.filter(log::Column::StepId.eq(step_id));
    }
    query
}

impl Store {
    /// The execution if it exists and the principal may see it.
    pub async fn execution(&self, principal: &Principal, id: &str) -> AppResult<Option<Execution>> {
        execution_on(&self.db, principal, id).await
    }

    /// Those of the executions that exist and that `scope` may see (the GraphQL loaders
    /// batch here).
    pub async fn executions_of(
        &self,
        ids: &[String],
        scope: &TenantScope,
    ) -> AppResult<HashMap<String, Execution>> {
        execution::Entity::find()
            .filter(execution::Column::Id.is_in(ids.iter().map(String::as_str)))
            .filter(scope::condition(scope))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| execution_from_row(row).map(|e| (e.id.clone(), e)))
            .collect()
    }

    /// Steps by (execution, step), read without a lock; missing ones are absent.
    pub async fn steps_by_key(
        &self,
        keys: &[(String, String)],
    ) -> AppResult<HashMap<(String, String), Step>> {
        let key = Expr::tuple([
            Expr::col(step::Column::ExecutionId),
            Expr::col(step::Column::StepId),
        ]);
        step::Entity::find()
            .filter(key.in_tuples(keys.iter().cloned()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                let key = (row.execution_id.clone(), row.step_id.clone());
                Ok((key, step_from_row(row)?))
            })
            .collect()
    }

    /// The steps of each of the executions, in order (the GraphQL loaders batch here).
    pub async fn steps_of(&self, ids: &[String]) -> AppResult<HashMap<String, Vec<Step>>> {
        parts_of::<step::Entity, _>(
            &self.db,
            ids,
            step::Column::ExecutionId,
            step::Column::Idx,
            |row| Ok((row.execution_id.clone(), step_from_row(row)?)),
        )
        .await
    }

    pub async fn webhooks_of(&self, ids: &[String]) -> AppResult<HashMap<String, Vec<Webhook>>> {
        parts_of::<webhook::Entity, _>(
            &self.db,
            ids,
            webhook::Column::ExecutionId,
            webhook::Column::Id,
            |row| Ok((row.execution_id.clone(), webhook_from_row(row)?)),
        )
        .await
    }

    pub async fn webhooks(&self, execution_id: &str) -> AppResult<Vec<Webhook>> {
        let mut webhooks = self.webhooks_of(&[execution_id.to_owned()]).await?;
        Ok(webhooks.remove(execution_id).unwrap_or_default())
    }

    /// The checkpoints of each of the executions, oldest first.
    pub async fn checkpoints_of(
        &self,
        ids: &[String],
    ) -> AppResult<HashMap<String, Vec<Checkpoint>>> {
        let (execution_id, order) = (checkpoint::Column::ExecutionId, checkpoint::Column::Id);
        parts_of::<checkpoint::Entity, _>(&self.db, ids, execution_id, order, |row| {
            Ok((row.execution_id.clone(), checkpoint_from_row(row)))
        })
        .await
    }

    pub async fn count_logs(
        &self,
        execution_id: &str,
        levels: Option<&[LogLevel]>,
        step_id: Option<&str>,
    ) -> AppResult<u64> {
        Ok(log_selection(&[execution_id.to_owned()], levels, step_id)
            .count(&self.db)
            .await?)
    }

    /// Events after `after_sequence`, in order.
    pub async fn events(
        &self,
        execution_id: &str,
        after_sequence: i64,
        first: u64,
    ) -> AppResult<Vec<Event>> {
        event::Entity::find()
            .filter(event::Column::ExecutionId.eq(execution_id))
            .filter(event::Column::Sequence.gt(after_sequence))
            .order_by_asc(event::Column::Sequence)
            .limit(first)
            .all(&self.db)
            .await?
            .into_iter()
            .map(event_from_row)
            .collect()
    }

    /// Event `sequence` of an execution.
    pub async fn event(&self, execution_id: &str, sequence: i64) -> AppResult<Option<Event>> {
        event::Entity::find()
            .filter(event::Column::ExecutionId.eq(execution_id))
            .filter(event::Column::Sequence.eq(sequence))
            .one(&self.db)
            .await?
            .map(event_from_row)
            .transpose()
    }

    /// The newest delivery attempts of a webhook.
    pub async fn deliveries(
        &self,
        webhook_id: &str,
        first: u64,
    ) -> AppResult<Vec<WebhookDelivery>> {
        webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::WebhookId.eq(webhook_id))
            .order_by_desc(webhook_delivery::Column::DeliveredAt)
            .limit(first)
            .all(&self.db)
            .await?
            .into_iter()
            .map(delivery_from_row)
            .collect()
    }
}
