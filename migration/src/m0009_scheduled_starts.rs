//! Executions created to start later (`createExecution(input: {startAt})`): when each
//! starts itself (`scheduled_at`), indexed with the status so that the maintenance
//! loop finds the QUEUED ones that are due.

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_scheduled_starts"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Executions {
    Table,
    Status,
    ScheduledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Executions as E;
        manager
            .alter_table(
                Table::alter()
                    .table(E::Table)
                    .add_column(big_integer_null(E::ScheduledAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(E::Table, &[E::Status, E::ScheduledAt], false))
            .await
    }
}
