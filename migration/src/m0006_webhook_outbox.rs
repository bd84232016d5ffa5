//! The webhook outbox: an event that an execution's webhooks want is recorded here
//! in the same transaction as the event, and the row goes once its first delivery
//! round is done. A process that dies between the commit and queuing the delivery
//! loses nothing: the reconciler queues every row left behind.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_webhook_outbox"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookOutbox {
    Table,
    ExecutionId,
    Sequence,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use WebhookOutbox as O;
        manager
            .create_table(
                Table::create()
                    .table(O::Table)
                    .if_not_exists()
                    .col(string(O::ExecutionId))
                    .col(big_integer(O::Sequence))
                    .col(big_integer(O::CreatedAt))
                    .primary_key(Index::create().col(O::ExecutionId).col(O::Sequence))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(crate::index(O::Table, &[O::CreatedAt], false))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookOutbox::Table).to_owned())
            .await
    }
}
