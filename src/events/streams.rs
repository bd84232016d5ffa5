//! The streams subscriptions serve. The bus is fast but may drop (a lagging
//! receiver, a lost Redis message) or reorder (two processes publishing); the events
//! table is complete and ordered. So each stream remembers the last sequence it sent
//! per execution and, when the bus skips ahead or reports a lag, reads the missing
//! events from the table: no gap, no duplicate, in sequence order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::catch_up::PAGE;
use super::feed_matches::{FeedFilter, FeedMatches};
use super::hub::{Hub, Message, Topic};
use crate::auth::Principal;
use crate::domain::query::Filter;
use crate::domain::records::{Event, Timestamp};
use crate::error::AppResult;
use crate::store::Store;

/// How far before the last event it sent a lagging feed looks in the table: events
/// are stamped before they commit, so one may commit after a later-stamped one.
const FEED_SLACK: Duration = Duration::from_secs(5);
/// Executions a feed remembers the last sequence of.
const FEED_MEMORY: usize = 100_000;

/// Which events a subscriber wants.
pub type Wanted = Box<dyn Fn(&Event) -> bool + Send + Sync>;

/// Where a stream of one execution's events starts.
pub enum Start {
    /// Replays the stored events after this sequence, then goes live.
    After(i64),
    /// Live from this sequence, the last one stored when the topic had already been
    /// subscribed: every later event comes through the topic (and a gap in it is read
    /// from the table), so there is nothing to read first: thousands of clients
    /// subscribing at once make no read of the events table.
    Now(i64),
}

/// The events of one execution from `start`: first those stored, then live, until
/// the event that settles the execution (`Event::settles_execution`), wanted or not.
/// `settled_at` is the last stored sequence when the execution had already settled
/// as the stream was asked for: a stream that starts there has nothing to wait for.
/// `topic` must have been subscribed before the sequence in `start` was read, so
/// nothing committed in between is missed.
pub fn execution_events(
    store: Store,
    mut topic: Topic,
    execution_id: String,
    start: Start,
    settled_at: Option<i64>,
    wanted: Wanted,
) -> impl Stream<Item = AppResult<Event>> + Send {
    async_stream::try_stream! {
        let mut last = match start {
            Start::After(sequence) | Start::Now(sequence) => sequence,
        };
        let catch_ups = topic.catch_ups();
        let mut settled = settled_at.is_some_and(|at| last >= at);
        // Whether the stored events after `last` are to be read before going on.
        let mut behind = matches!(start, Start::After(_)) && !settled;
        loop {
            if behind {
                let events = catch_ups.after(&store, &execution_id, last).await?;
                for (read, event) in events.iter().enumerate() {
                    last = event.sequence;
                    // Only the latest event read can settle the execution now: an
                    // earlier one was followed by more (a retry by hand, say).
                    settled = event.settles_execution() && read + 1 == events.len();
                    if wanted(event) {
                        yield event.clone();
                    }
                }
                behind = false;
            }
            if settled {
                break;
            }
            match topic.receiver().recv().await {
                Ok(message) if message.event.sequence <= last => {}
                Ok(message) if message.event.sequence == last + 1 => {
                    last += 1;
                    settled = message.event.settles_execution();
                    if wanted(&message.event) {
                        yield message.event.clone();
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => behind = true,
                Err(RecvError::Closed) => break,
            }
        }
    }
}

/// Every wanted event of every execution `principal` sees and `filter` matches,
/// from now on, each execution's in sequence order.
pub fn feed(
    store: Store,
    hub: &Hub,
    principal: Principal,
    filter: Filter,
    wanted: Wanted,
) -> impl Stream<Item = AppResult<Event>> + Send + use<> {
    let mut receiver = hub.subscribe_feed();
    let catch_ups = hub.catch_ups();
    let feed_matches = hub.feed_matches();
    let feed_filter = filter
        .get()
        .is_some()
        .then(|| FeedFilter::new(filter.clone()));
    async_stream::try_stream! {
        let mut last: HashMap<String, i64> = HashMap::new();
        let mut since: Timestamp = Utc::now();
        loop {
            let mut batch: Vec<Message> = Vec::new();
            let lagged = match receiver.recv().await {
                Ok(message) => {
                    batch.push(message);
                    while let Ok(message) = receiver.try_recv() {
                        batch.push(message);
                    }
                    false
                }
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => break,
            };
            let events = if lagged {
                store.events_since(&principal, &filter, since - FEED_SLACK, PAGE).await?
            } else {
                matching(&store, &feed_matches, &principal, feed_filter.as_ref(), batch).await?
            };
            if last.len() > FEED_MEMORY {
                last.clear();
            }
            for event in events {
                let seen = last.get(&event.execution_id).copied();
                if seen.is_some_and(|seen| event.sequence <= seen) {
                    continue;
                }
                let gap = match seen {
                    Some(seen) if event.sequence > seen + 1 => {
                        catch_ups.after(&store, &event.execution_id, seen).await?
                    }
                    _ => Arc::new(vec![event]),
                };
                for event in gap.iter().cloned() {
                    last.insert(event.execution_id.clone(), event.sequence);
                    since = since.max(event.timestamp);
                    if wanted(&event) {
                        yield event;
                    }
                }
            }
        }
    }
}

/// The events of a batch from the bus whose execution `principal` sees and `filter`
/// matches (asked once for all feeds of the same filter and scope).
async fn matching(
    store: &Store,
    feed_matches: &FeedMatches,
    principal: &Principal,
    filter: Option<&FeedFilter>,
    batch: Vec<Message>,
) -> AppResult<Vec<Event>> {
    let visible: Vec<Message> = batch
        .into_iter()
        .filter(|m| principal.sees(m.customer_id.as_deref(), m.provider_id.as_deref()))
        .collect();
    let Some(filter) = filter else {
        return Ok(visible.iter().map(|m| m.event.clone()).collect());
    };
    if visible.is_empty() {
        return Ok(Vec::new());
    }
    let events: Vec<&Event> = visible.iter().map(|m| &m.event).collect();
    let matched = (feed_matches.matching(store, principal, filter, &events)).await?;
    Ok(visible
        .iter()
        .filter(|m| matched.contains(&m.event.execution_id))
        .map(|m| m.event.clone())
        .collect())
}
