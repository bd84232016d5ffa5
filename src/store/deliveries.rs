//! Recording webhook delivery attempts, each its own row, readable through
//! `Webhook.deliveries`.

use sea_orm::EntityTrait;

use super::Store;
use super::entities::webhook_delivery;
use super::mapping::delivery_to_row;
use crate::domain::records::WebhookDelivery;
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
}
