//! exechub's database schema as sea-orm migrations: one place that creates every
//! table and index, run at start-up by `serve` and on demand by `exechub migrate`.
//! The same migrations build the SQLite and the Postgres schema.

pub use sea_orm_migration::prelude::*;

mod m0001_core;
mod m0002_scheduler;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_core::Migration),
            Box::new(m0002_scheduler::Migration),
        ]
    }
}
