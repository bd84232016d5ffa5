//! exechub's database schema as sea-orm migrations: one place that creates every
//! table and index, run at start-up by `serve` and on demand by `exechub migrate`.
//! The same migrations build the SQLite and the Postgres schema.

pub use sea_orm_migration::prelude::*;

mod m0001_core;
mod m0002_scheduler;
mod m0003_events;
mod m0004_analyst_indexes;
mod m0005_daily_stats_index;
mod m0006_webhook_outbox;
mod m0007_write_probe;
mod m0008_flow_control;
mod m0009_scheduled_starts;
mod m0010_schedules;

/// A plain (or unique) index named after its table and columns.
pub(crate) fn index<T: Iden + Copy + 'static, C: Iden + Copy + 'static>(
    table: T,
    columns: &[C],
    unique: bool,
) -> IndexCreateStatement {
    let name = format!(
        "idx_{}_{}",
        table.to_string(),
        columns
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("_")
    );
    let mut statement = Index::create();
    statement.name(name).table(table).if_not_exists();
    for column in columns {
        statement.col(*column);
    }
    if unique {
        statement.unique();
    }
    statement
}

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_core::Migration),
            Box::new(m0002_scheduler::Migration),
            Box::new(m0003_events::Migration),
            Box::new(m0004_analyst_indexes::Migration),
            Box::new(m0005_daily_stats_index::Migration),
            Box::new(m0006_webhook_outbox::Migration),
            Box::new(m0007_write_probe::Migration),
            Box::new(m0008_flow_control::Migration),
            Box::new(m0009_scheduled_starts::Migration),
            Box::new(m0010_schedules::Migration),
        ]
    }
}
