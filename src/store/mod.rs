//! Persistence: the only module that talks to the database. It opens SQLite or
//! Postgres, runs the migrations, loads records (always within the caller's tenant
//! scope), and saves a domain `Change` in one transaction with its events. (The job
//! queue is apalis's, in Redis or its own `queue.db`, reached only from
//! `scheduler/queue.rs`.)

pub mod analytics;
pub mod changes;
pub mod creations;
mod deliveries;
pub mod entities;
pub mod executions;
pub mod feed;
pub mod filters;
pub mod first_rows;
pub mod health;
mod limit_usage;
mod limits;
pub use limit_usage::{Waiter, WaitingExecution};
pub use limits::KeyState;
mod import;
pub mod mapping;
pub mod reads;
pub mod retention;
pub mod scheduler_queries;
mod schedules;
pub use schedules::ScheduleAudit;
pub mod scope;
pub mod shared_transactions;
mod snapshots;
mod turns;
mod writes;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    TransactionTrait,
};
use turns::{Turn, Turns};

use crate::config::StoreConfig;
use crate::error::AppResult;

/// Prepared statements kept per connection. Multi-row writes are a statement of
/// their own for each row count, so the scheduler's shared transactions use a few
/// hundred; with sqlx's default of 100 most of them were prepared again each time.
const STATEMENT_CACHE: usize = 1024;
/// The Postgres advisory lock migrations take ("exechub" in ASCII).
const MIGRATION_LOCK: i64 = 0x65_78_65_63_68_75_62;

#[derive(Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    /// Where write transactions run: a pool of their own, so that a write never
    /// waits for a connection behind the reads of a burst of requests.
    writer: DatabaseConnection,
    /// On SQLite, the turn to write, taken before a write transaction begins.
    writing: Option<Turns>,
    /// Whether the database takes writes (`/readyz`), shared by every pool.
    health: health::WriteHealth,
    /// The limits in force, shared by every pool.
    limits: limits::LimitBook,
}

impl Store {
    /// Opens the configured database (creating the SQLite file and data directory if
    /// needed). Migrations are separate: see `migrate`.
    pub async fn connect(config: &StoreConfig) -> anyhow::Result<Self> {
        let db = open_pool(config, config.max_connections()).await?;
        let sqlite = db.get_database_backend() == DbBackend::Sqlite;
        // SQLite writes one at a time; Postgres writers wait on row locks.
        let writer = open_pool(config, if sqlite { 2 } else { 8 }).await?;
        Ok(Store {
            db,
            writer,
            writing: sqlite.then(Turns::default),
            health: health::WriteHealth::default(),
            limits: limits::LimitBook::default(),
        })
    }

    /// The same database through a pool of its own of at most `max_connections`,
    /// for reads and writes alike, taking turns to write with this one.
    pub async fn with_pool_of(
        &self,
        config: &StoreConfig,
        max_connections: u32,
    ) -> anyhow::Result<Self> {
        let pool = open_pool(config, max_connections).await?;
        Ok(Store {
            db: pool.clone(),
            writer: pool,
            writing: self.writing.clone(),
            health: self.health.clone(),
            limits: self.limits.clone(),
        })
    }

    /// Begins a write transaction, once it is this writer's turn (`turns`); the
    /// turn lasts as long as the returned guard.
    pub(crate) async fn begin_write(&self) -> AppResult<(Option<Turn>, DatabaseTransaction)> {
        let turn = match &self.writing {
            Some(turns) => Some(turns.take().await),
            None => None,
        };
        Ok((turn, self.writer.begin().await?))
    }

    /// `begin_write` for a shared transaction of the scheduler, which goes before
    /// API writers waiting for their turn.
    pub(crate) async fn begin_shared_write(
        &self,
    ) -> AppResult<(Option<Turn>, DatabaseTransaction)> {
        let turn = match &self.writing {
            Some(turns) => Some(turns.take_first().await),
            None => None,
        };
        Ok((turn, self.writer.begin().await?))
    }

    /// A write's outcome, recorded: a full disk or an I/O error marks the store
    /// unwritable until a write succeeds.
    pub(crate) fn recorded<T>(&self, outcome: AppResult<T>) -> AppResult<T> {
        self.health.record(&outcome);
        outcome
    }

    /// Brings the schema up to date. On Postgres the migrations run in one
    /// transaction under an advisory lock, so that processes started together on a
    /// fresh database (a `serve` and its workers) do not each create the same tables
    /// at once: the first migrates, the others wait and find nothing left to do.
    /// (SQLite's one writer serialises them.)
    pub async fn migrate(&self) -> anyhow::Result<()> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            Migrator::up(&self.db, None).await?;
            return Ok(());
        }
        let txn = self.db.begin().await?;
        let lock = format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})");
        txn.execute_unprepared(&lock).await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await?;
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

    /// Changes per shared transaction at most. On SQLite one writer runs at a time,
    /// and a client's command waits for the transaction in flight before its own:
    /// smaller transactions keep that wait short (128 did 7 % more steps/s than 512).
    pub fn max_batch(&self) -> usize {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => 128,
            _ => 512,
        }
    }

    /// Whether the database answers and takes writes (`/readyz`). A write that
    /// failed for lack of room makes it unready; once `FAULT_HOLDS` has passed
    /// without another, a write of its own tries again, so that the store is ready
    /// again as soon as it can write, with or without traffic.
    pub async fn ping(&self) -> bool {
        if self.db.ping().await.is_err() {
            return false;
        }
        match self.health.fault_age() {
            None => return true,
            Some(age) if age < health::FAULT_HOLDS => return false,
            Some(_) => {}
        }
        let probe = async {
            let (_turn, txn) = self.begin_write().await?;
            let now = crate::clock::now().timestamp_millis();
            let touch = format!(
                "INSERT INTO write_probe (id, written_at) VALUES (1, {now}) \
                 ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at"
            );
            txn.execute_unprepared(&touch).await?;
            txn.commit().await?;
            Ok(())
        };
        self.recorded(probe.await).is_ok()
    }
}

async fn open_pool(
    config: &StoreConfig,
    max_connections: u32,
) -> anyhow::Result<DatabaseConnection> {
    let url = config.url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
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
        .map_sqlx_sqlite_opts(|options| options.statement_cache_capacity(STATEMENT_CACHE))
        // A connection left inside a transaction (its COMMIT failed) is closed.
        .map_sqlx_sqlite_pool_opts(|pool| pool.after_release(|c, _| health::release_sqlite(c)));
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // WAL lets readers work while a writer commits; FULL keeps commits durable.
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    Ok(db)
}
