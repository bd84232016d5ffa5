//! What the scheduler keeps beside each step and execution: when a step was handed to
//! the queue (`ready_at`, also the start of its wait for priority aging), the lease of
//! the attempt running it (`lease_expires_at`, `lease_owner`: a worker name or a claim
//! nonce), and when a failed execution retries (`retry_at`).

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_scheduler"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Executions {
    Table,
    RetryAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExecutionSteps {
    Table,
    Status,
    ReadyAt,
    LeaseExpiresAt,
    LeaseOwner,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ExecutionSteps as S;
        // One column per statement: SQLite's ALTER TABLE adds one column at a time.
        for column in [
            big_integer_null(S::ReadyAt),
            big_integer_null(S::LeaseExpiresAt),
            string_null(S::LeaseOwner),
        ] {
            manager
                .alter_table(Table::alter().table(S::Table).add_column(column).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(big_integer_null(Executions::RetryAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(S::Table, &[S::Status, S::LeaseExpiresAt], false))
            .await?;
        manager
            .create_index(index(S::Table, &[S::Status, S::ReadyAt], false))
            .await?;
        manager
            .create_index(index(Executions::Table, &[Executions::RetryAt], false))
            .await
    }
}
