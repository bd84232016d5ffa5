//! Indexes for how analysts slice execution history: one service's executions of a
//! priority, or in a status, over a time range (the single-column `(column,
//! created_at)` indexes leave the other column to be checked row by row); and, on
//! Postgres, the error distribution read from the index of failed executions alone
//! (`INCLUDE` makes it covering; SQLite keeps the partial index without it).

use sea_orm_migration::prelude::*;

use crate::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_analyst_indexes"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Executions {
    Table,
    ServiceId,
    Priority,
    Status,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
    ErrorCode,
    ErrorRecoverable,
    ErrorMessage,
}

const ERRORS_INDEX: &str = "idx_executions_errors";

const INDEXES: [[Executions; 3]; 2] = [
    [
        Executions::ServiceId,
        Executions::Priority,
        Executions::CreatedAt,
    ],
    [
        Executions::ServiceId,
        Executions::Status,
        Executions::CreatedAt,
    ],
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for columns in INDEXES {
            manager
                .create_index(index(Executions::Table, &columns, false))
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(ERRORS_INDEX)
                    .table(Executions::Table)
                    .if_not_exists()
                    .col(Executions::ErrorCode)
                    .include(Executions::ErrorRecoverable)
                    .include(Executions::CompletedAt)
                    .include(Executions::UpdatedAt)
                    .include(Executions::ErrorMessage)
                    .and_where(Expr::col(Executions::ErrorCode).is_not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(ERRORS_INDEX)
                    .table(Executions::Table)
                    .to_owned(),
            )
            .await?;
        for columns in INDEXES {
            let name = index(Executions::Table, &columns, false)
                .get_index_spec()
                .get_name()
                .map(String::from);
            if let Some(name) = name {
                manager
                    .drop_index(Index::drop().name(name).table(Executions::Table).to_owned())
                    .await?;
            }
        }
        Ok(())
    }
}
