//! One row that `/readyz` rewrites to learn whether the database takes writes
//! again after one failed for lack of room: a write that changes nothing is not
//! written at all, so it would prove nothing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_write_probe"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum WriteProbe {
    Table,
    Id,
    WrittenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WriteProbe::Table)
                    .if_not_exists()
                    .col(integer(WriteProbe::Id).primary_key())
                    .col(big_integer(WriteProbe::WrittenAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WriteProbe::Table).to_owned())
            .await
    }
}
