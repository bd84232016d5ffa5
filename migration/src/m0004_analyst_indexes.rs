//! Indexes for how analysts slice execution history: one service's executions of a
//! priority, or in a status, over a time range (the single-column `(column,
//! created_at)` indexes leave the other column to be checked row by row).

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
}

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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
