//! The in-process bus: one small broadcast channel per execution someone watches
//! (so an event wakes only that execution's subscribers) and one for the feed.
//! Sending never waits: a receiver that falls behind by more than the channel holds
//! is told it lagged and catches up from the table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};

use super::catch_up::CatchUps;
use super::feed_matches::FeedMatches;
use crate::domain::change::Change;
use crate::domain::records::Event;

/// One event as the bus carries it, with the owners that decide who may see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Published {
    pub event: Event,
    pub customer_id: Option<String>,
    pub provider_id: Option<String>,
}

pub type Message = Arc<Published>;

/// Where a process's events go to reach other processes (Redis, `fanout`).
pub trait Remote: Send + Sync {
    fn send(&self, message: &Message);
}

/// Events an execution's subscribers may fall behind by before they catch up from
/// the table; small, because every watched execution has a channel.
const TOPIC_CAPACITY: usize = 32;
/// Events the feed's subscribers may fall behind by.
const FEED_CAPACITY: usize = 4096;

#[derive(Clone)]
pub struct Hub(Arc<Inner>);

struct Inner {
    topics: Mutex<HashMap<String, broadcast::Sender<Message>>>,
    feed: broadcast::Sender<Message>,
    /// Set once Redis is connected (`fanout::connect`).
    fanout: OnceLock<Box<dyn Remote>>,
    /// The reads lagging subscribers catch up with.
    catch_ups: CatchUps,
    /// What filtered feeds pass, asked once per filter.
    feed_matches: FeedMatches,
    /// Bumped when events may have gone by unseen (a fan-out message this process
    /// cannot read): every subscriber then reads what it missed from the table.
    resync: watch::Sender<u64>,
}

/// A subscriber's end of a channel: its messages, and a lag whenever the hub asks
/// every subscriber to resynchronise.
pub struct Receiver {
    messages: broadcast::Receiver<Message>,
    resync: watch::Receiver<u64>,
}

impl Receiver {
    /// The next message, or `Lagged` when some may have been missed.
    pub async fn recv(&mut self) -> Result<Message, RecvError> {
        tokio::select! {
            biased;
            changed = self.resync.changed() => match changed {
                Ok(()) => Err(RecvError::Lagged(0)),
                Err(_) => std::future::pending().await,
            },
            message = self.messages.recv() => message,
        }
    }

    pub fn try_recv(&mut self) -> Result<Message, TryRecvError> {
        self.messages.try_recv()
    }
}

/// A subscription to one execution's events; leaving drops the channel when it was
/// the last one.
pub struct Topic {
    receiver: Option<Receiver>,
    execution_id: String,
    hub: Hub,
}

impl Topic {
    pub fn receiver(&mut self) -> &mut Receiver {
        self.receiver.as_mut().expect("receiver until dropped")
    }

    pub fn catch_ups(&self) -> CatchUps {
        self.hub.catch_ups()
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        self.receiver.take();
        let mut topics = self.hub.0.topics.lock().expect("topics lock");
        if topics
            .get(&self.execution_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            topics.remove(&self.execution_id);
        }
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A bus for this process; `fanout::connect` extends it to every process.
    pub fn new() -> Self {
        Hub(Arc::new(Inner {
            topics: Mutex::new(HashMap::new()),
            feed: broadcast::channel(FEED_CAPACITY).0,
            fanout: OnceLock::new(),
            catch_ups: CatchUps::default(),
            feed_matches: FeedMatches::default(),
            resync: watch::channel(0).0,
        }))
    }

    pub fn catch_ups(&self) -> CatchUps {
        self.0.catch_ups.clone()
    }

    pub fn feed_matches(&self) -> FeedMatches {
        self.0.feed_matches.clone()
    }

    pub(super) fn set_fanout(&self, fanout: Box<dyn Remote>) {
        let _ = self.0.fanout.set(fanout);
    }

    pub fn subscribe(&self, execution_id: &str) -> Topic {
        let mut topics = self.0.topics.lock().expect("topics lock");
        let messages = topics
            .entry(execution_id.to_owned())
            .or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0)
            .subscribe();
        Topic {
            receiver: Some(self.receiver(messages)),
            execution_id: execution_id.to_owned(),
            hub: self.clone(),
        }
    }

    pub fn subscribe_feed(&self) -> Receiver {
        self.receiver(self.0.feed.subscribe())
    }

    fn receiver(&self, messages: broadcast::Receiver<Message>) -> Receiver {
        Receiver {
            messages,
            resync: self.0.resync.subscribe(),
        }
    }

    /// Tells every subscriber of this process that events may have gone by unseen:
    /// each reads what it missed from the table.
    pub(super) fn resync(&self) {
        self.0.resync.send_modify(|generation| *generation += 1);
    }

    /// Publishes a committed change's events here and, with Redis, to every process.
    /// Costs nothing when no one could receive them.
    pub fn publish(&self, change: &Change) {
        let fanout = self.0.fanout.get();
        if fanout.is_none() && !self.is_watched(&change.execution.id) {
            return;
        }
        for event in &change.events {
            let message = Arc::new(Published {
                event: event.clone(),
                customer_id: change.execution.customer_id.clone(),
                provider_id: change.execution.provider_id.clone(),
            });
            if let Some(fanout) = fanout {
                fanout.send(&message);
            }
            self.deliver(message);
        }
    }

    /// Whether a subscriber in this process may want the execution's events.
    fn is_watched(&self, execution_id: &str) -> bool {
        self.0.feed.receiver_count() > 0
            || self
                .0
                .topics
                .lock()
                .expect("topics lock")
                .contains_key(execution_id)
    }

    /// Hands a message to this process's subscribers.
    pub(super) fn deliver(&self, message: Message) {
        if self.0.feed.receiver_count() > 0 {
            let _ = self.0.feed.send(message.clone());
        }
        let topics = self.0.topics.lock().expect("topics lock");
        if let Some(sender) = topics.get(&message.event.execution_id) {
            let _ = sender.send(message);
        }
    }
}
