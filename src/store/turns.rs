//! On SQLite, whose turn it is to write. One writer runs at a time, and a writer
//! waiting for SQLite's lock sleeps in its busy handler (1, 2, 5, … 100 ms) however
//! soon the lock is free; waiting here instead, writers take turns without delay.
//!
//! The scheduler's shared transactions go first: each carries many changes (the
//! reports and commands of many clients among them), so behind a queue of API
//! writers of one change each it would wait for every one of them, and so would the
//! clients whose changes it carries. API writers queue among themselves, and only
//! the first of them waits for the turn beside the shared transactions.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Clone, Default)]
pub struct Turns {
    /// API writers wait here, in order, for the right to wait for the turn.
    queue: Arc<Mutex<()>>,
    turn: Arc<Mutex<()>>,
}

/// A writer's turn, until dropped.
pub struct Turn {
    _queued: Option<OwnedMutexGuard<()>>,
    _turn: OwnedMutexGuard<()>,
}

impl Turns {
    /// An API writer's turn: after the API writers before it, and after any shared
    /// transaction waiting when its own wait begins.
    pub async fn take(&self) -> Turn {
        let queued = self.queue.clone().lock_owned().await;
        let turn = self.turn.clone().lock_owned().await;
        Turn {
            _queued: Some(queued),
            _turn: turn,
        }
    }

    /// A shared transaction's turn: after the writer writing now and at most one
    /// API writer.
    pub async fn take_first(&self) -> Turn {
        Turn {
            _queued: None,
            _turn: self.turn.clone().lock_owned().await,
        }
    }
}
