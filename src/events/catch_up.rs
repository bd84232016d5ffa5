//! Reads of the events table that subscribers catch up with, one per execution and
//! starting sequence however many ask at once. When the thousands of subscribers of
//! one execution fall behind the bus together, they would otherwise queue thousands
//! of identical reads for a few connections (seconds of tail latency), so those
//! with the same starting point wait for one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::domain::records::Event;
use crate::error::{AppError, AppResult};
use crate::store::Store;

/// Events read from the table per query while catching up.
pub const PAGE: u64 = 500;

pub type Events = Arc<Vec<Event>>;
type Read = Shared<BoxFuture<'static, Result<Events, AppError>>>;

#[derive(Clone, Default)]
pub struct CatchUps(Arc<Mutex<HashMap<(String, i64), Read>>>);

impl CatchUps {
    /// Every stored event of an execution after sequence `after`, read once for all
    /// who ask while the read runs. Boxed, so that an idle stream does not carry the
    /// space of a database query: a stream's state is as large as the largest future
    /// it awaits, and thousands of streams sit idle at once.
    pub fn after(
        &self,
        store: &Store,
        execution_id: &str,
        after: i64,
    ) -> BoxFuture<'static, AppResult<Events>> {
        let key = (execution_id.to_owned(), after);
        let read = self
            .lock()
            .entry(key.clone())
            .or_insert_with(|| stored_after(store.clone(), key.0.clone(), after).shared())
            .clone();
        let waiter = Waiter {
            reads: self.clone(),
            key,
            read,
        };
        Box::pin(async move { waiter.read.clone().await })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Read>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One caller's wait. When it ends, finished or dropped with its subscriber, the
/// read leaves the map, so the next caller reads anew and an abandoned read is not
/// kept.
struct Waiter {
    reads: CatchUps,
    key: (String, i64),
    read: Read,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut pending = self.reads.lock();
        // A later read of the same key may have replaced this one: leave it.
        if pending
            .get(&self.key)
            .is_some_and(|current| current.ptr_eq(&self.read))
        {
            pending.remove(&self.key);
        }
    }
}

fn stored_after(
    store: Store,
    execution_id: String,
    after: i64,
) -> BoxFuture<'static, AppResult<Events>> {
    Box::pin(async move {
        let mut events = Vec::new();
        let mut last = after;
        loop {
            let page = store.events(&execution_id, last, PAGE).await?;
            let full = page.len() as u64 == PAGE;
            last = page.last().map_or(last, |e| e.sequence);
            events.extend(page);
            if !full {
                return Ok(Arc::new(events));
            }
        }
    })
}
