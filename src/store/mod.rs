//! Persistence: the only module that talks to the database. It opens SQLite or
//! Postgres, runs the migrations, loads records (always within the caller's tenant
//! scope), and saves a domain `Change` in one transaction with its events.

pub mod analytics;
pub mod batch;
pub mod changes;
mod deliveries;
pub mod entities;
pub mod executions;
pub mod feed;
mod import;
pub mod mapping;
pub mod reads;
pub mod retention;
pub mod schedule;
pub mod scope;
mod snapshots;
pub mod windows;
mod writes;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

use crate::config::StoreConfig;

/// Prepared statements kept per connection. Multi-row writes are a statement of
/// their own for each row count, so the scheduler's shared transactions use a few
/// hundred; with sqlx's default of 100 most of them were prepared again each time.
const STATEMENT_CACHE: usize = 1024;

#[derive(Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
}

impl Store {
    /// Opens the configured database (creating the SQLite file and data directory if
    /// needed). Migrations are separate: see `migrate`.
    pub async fn connect(config: &StoreConfig) -> anyhow::Result<Self> {
        let url = config.url();
        if url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir)?;
        }
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(config.max_connections())
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            // Postgres' JIT compiles an analytics query for longer than the
            // compiled code saves (80 ms of a 1.3 s query over a million rows), and
            // never pays off for the short statements that are everything else.
            .map_sqlx_postgres_opts(|options| {
                options
                    .options([("jit", "off")])
                    .statement_cache_capacity(STATEMENT_CACHE)
            })
            .map_sqlx_sqlite_opts(|options| options.statement_cache_capacity(STATEMENT_CACHE));
        let db = Database::connect(options).await?;
        if db.get_database_backend() == DbBackend::Sqlite {
            // WAL lets readers work while a writer commits; FULL keeps commits durable.
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        }
        Ok(Store { db })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// How many write transactions are worth running side by side: SQLite has one
    /// writer at a time; Postgres flushes the WAL of concurrent commits together.
    pub fn write_lanes(&self) -> usize {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => 1,
            _ => 4,
        }
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }
}
