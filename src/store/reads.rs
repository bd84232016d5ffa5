//! Reads of one execution and what hangs off it. The execution itself is always read
//! through the caller's tenant scope; the parts are read by execution id once the
//! execution was found visible.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use super::Store;
use super::entities::*;
use super::mapping::*;
use super::scope;
use crate::auth::Principal;
use crate::domain::records::*;
use crate::domain::types::LogLevel;
use crate::error::AppResult;

/// One page of logs, oldest first.
pub struct LogPage {
    pub logs: Vec<LogEntry>,
    pub has_next_page: bool,
}

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

async fn steps_on(conn: &impl ConnectionTrait, execution_id: &str) -> AppResult<Vec<Step>> {
    step::Entity::find()
        .filter(step::Column::ExecutionId.eq(execution_id))
        .order_by_asc(step::Column::Idx)
        .all(conn)
        .await?
        .into_iter()
        .map(step_from_row)
        .collect()
}

async fn webhooks_on(conn: &impl ConnectionTrait, execution_id: &str) -> AppResult<Vec<Webhook>> {
    webhook::Entity::find()
        .filter(webhook::Column::ExecutionId.eq(execution_id))
        .order_by_asc(webhook::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(webhook_from_row)
        .collect()
}

/// An execution's log lines, narrowed to some levels and one step when given.
fn log_selection(
    execution_id: &str,
    levels: Option<&[LogLevel]>,
    step_id: Option<&str>,
) -> Select<log::Entity> {
    let mut query = log::Entity::find().filter(log::Column::ExecutionId.eq(execution_id));
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

    pub async fn steps(&self, execution_id: &str) -> AppResult<Vec<Step>> {
        steps_on(&self.db, execution_id).await
    }

    pub async fn webhooks(&self, execution_id: &str) -> AppResult<Vec<Webhook>> {
        webhooks_on(&self.db, execution_id).await
    }

    pub async fn logs(
        &self,
        execution_id: &str,
        levels: Option<&[LogLevel]>,
        step_id: Option<&str>,
        first: u64,
        after_id: Option<&str>,
    ) -> AppResult<LogPage> {
        let mut query = log_selection(execution_id, levels, step_id)
            .order_by_asc(log::Column::Id)
            .limit(first + 1);
        if let Some(after) = after_id {
            query = query.filter(log::Column::Id.gt(after));
        }
        let mut logs = query
            .all(&self.db)
            .await?
            .into_iter()
            .map(log_from_row)
            .collect::<AppResult<Vec<_>>>()?;
        let has_next_page = logs.len() as u64 > first;
        logs.truncate(first as usize);
        Ok(LogPage {
            logs,
            has_next_page,
        })
    }

    pub async fn count_logs(
        &self,
        execution_id: &str,
        levels: Option<&[LogLevel]>,
        step_id: Option<&str>,
    ) -> AppResult<u64> {
        Ok(log_selection(execution_id, levels, step_id)
            .count(&self.db)
            .await?)
    }

    pub async fn checkpoints(&self, execution_id: &str) -> AppResult<Vec<Checkpoint>> {
        Ok(checkpoint::Entity::find()
            .filter(checkpoint::Column::ExecutionId.eq(execution_id))
            .order_by_asc(checkpoint::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(checkpoint_from_row)
            .collect())
    }

    pub async fn latest_checkpoint(&self, execution_id: &str) -> AppResult<Option<Checkpoint>> {
        Ok(checkpoint::Entity::find()
            .filter(checkpoint::Column::ExecutionId.eq(execution_id))
            .order_by_desc(checkpoint::Column::Id)
            .one(&self.db)
            .await?
            .map(checkpoint_from_row))
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
