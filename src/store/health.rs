//! Whether the database can take writes, what a database error is for clients
//! (`Unavailable` or internal), and keeping a failed write from poisoning the pool. A write that failed for lack of room (a full disk) or an I/O error marks
//! the store unwritable until a write succeeds again, so `/readyz` answers 503 while
//! the database cannot write; a connection released while still inside a
//! transaction (a COMMIT that failed, a ROLLBACK that could not run) is closed
//! rather than handed to the next caller, whose writes would otherwise go into that
//! dead transaction and never be committed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sea_orm::sqlx::{self, Connection};
use sea_orm::{DbErr, RuntimeErr};

use crate::error::{AppError, AppResult};

/// How long after a write failed for lack of room the store counts as unwritable
/// without trying: a small write may still fit where the writes clients make do
/// not, and should not make it look ready while theirs keep failing.
pub const FAULT_HOLDS: Duration = Duration::from_secs(5);

/// Shared by every pool of one database: when the last write failed for lack of
/// room, if it did and no write succeeded since.
#[derive(Clone, Debug, Default)]
pub struct WriteHealth(Arc<Mutex<Option<Instant>>>);

impl WriteHealth {
    /// How long ago the last write failed for lack of room, while no write has
    /// succeeded since.
    pub fn fault_age(&self) -> Option<Duration> {
        self.lock().map(|at| at.elapsed())
    }

    /// Records the outcome of a write: a storage fault marks the store unwritable,
    /// a success writable again; other errors (a refused rule, a bad value) say
    /// nothing about the storage.
    pub fn record<T>(&self, outcome: &AppResult<T>) {
        match outcome {
            Ok(_) => *self.lock() = None,
            Err(AppError::Unavailable) => *self.lock() = Some(Instant::now()),
            Err(_) => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A database error as clients see it: `Unavailable` when the database cannot
/// write now, else internal; the details go to the log only.
impl From<DbErr> for AppError {
    fn from(error: DbErr) -> Self {
        tracing::error!(%error, "database error");
        if is_storage_fault(&error) {
            AppError::Unavailable
        } else {
            AppError::Internal("database error".into())
        }
    }
}

/// A full disk, an I/O error or a read-only database, on SQLite or Postgres.
pub fn is_storage_fault(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx))
    | DbErr::Conn(RuntimeErr::SqlxError(sqlx))) = error
    else {
        return false;
    };
    match sqlx.as_ref() {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(database) => {
            let code = database.code().unwrap_or_default();
            if database
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // Insufficient resources (53…, a full disk among them) or a system
                // error (58…).
                code.starts_with("53") || code.starts_with("58")
            } else {
                // SQLITE_READONLY, SQLITE_IOERR (and its extended codes), SQLITE_FULL.
                code.parse::<i32>()
                    .is_ok_and(|sqlite| matches!(sqlite & 0xff, 8 | 10 | 13))
            }
        }
        _ => false,
    }
}

/// The SQLite pool's release check: a connection still inside a transaction is
/// closed. A ROLLBACK queued on drop runs on the connection's own thread, so a
/// connection that looks inside one is asked again once it has (a ping queues
/// behind it). (On Postgres a failed COMMIT ends the transaction, and the queued
/// ROLLBACK clears sqlx's count at once, so no connection is released inside one.)
pub fn release_sqlite(
    connection: &mut sqlx::SqliteConnection,
) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        if !connection.is_in_transaction() {
            return Ok(true);
        }
        connection.ping().await?;
        Ok(!connection.is_in_transaction())
    })
}
