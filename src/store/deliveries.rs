//! Recording webhook delivery attempts, each its own row, readable through
//! `Webhook.deliveries`; and the outbox of events whose first delivery is still to
//! do (written with the events, in `writes`).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Store;
use super::entities::{webhook_delivery, webhook_outbox};
use super::mapping::{delivery_to_row, to_ms};
use crate::domain::records::{Timestamp, WebhookDelivery};
use crate::error::AppResult;

impl Store {
    pub async fn record_delivery(
        &self,
        webhook_id: &str,
        delivery: &WebhookDelivery,
    ) -> AppResult<()> {
        webhook_delivery::Entity::insert(delivery_to_row(webhook_id, delivery))
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// The event's first delivery round is done: it leaves the outbox.
    pub async fn delivered(&self, execution_id: &str, sequence: i64) -> AppResult<()> {
        webhook_outbox::Entity::delete_many()
            .filter(webhook_outbox::Column::ExecutionId.eq(execution_id))
            .filter(webhook_outbox::Column::Sequence.eq(sequence))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Events still in the outbox since before `cutoff`, oldest first: their delivery
    /// was never queued, or its job was lost. Each is marked as queued again at
    /// `now`, so that it is queued again only if it is still there a whole interval
    /// later (and not at every look while its delivery is on its way).
    pub async fn requeue_undelivered(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        limit: u64,
    ) -> AppResult<Vec<(String, i64)>> {
        let (_turn, txn) = self.begin_write().await?;
        let rows = webhook_outbox::Entity::find()
            .filter(webhook_outbox::Column::CreatedAt.lt(to_ms(cutoff)))
            .order_by_asc(webhook_outbox::Column::CreatedAt)
            .limit(limit)
            .all(&txn)
            .await?;
        for row in &rows {
            webhook_outbox::Entity::update_many()
                .col_expr(webhook_outbox::Column::CreatedAt, Expr::value(to_ms(now)))
                .filter(webhook_outbox::Column::ExecutionId.eq(&row.execution_id))
                .filter(webhook_outbox::Column::Sequence.eq(row.sequence))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.execution_id, r.sequence))
            .collect())
    }
}
