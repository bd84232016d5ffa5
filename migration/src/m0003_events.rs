//! What live events need: on each execution, the event types its webhooks want
//! (`webhook_events`, so that publishing an event knows without a query whether a
//! delivery is due), and an index on event time for subscribers catching up.

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_events"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Executions {
    Table,
    WebhookEvents,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExecutionEvents {
    Table,
    Timestamp,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(json_binary_null(Executions::WebhookEvents))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                ExecutionEvents::Table,
                &[ExecutionEvents::Timestamp],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .drop_column(Executions::WebhookEvents)
                    .to_owned(),
            )
            .await
    }
}
