//! Fan-out across processes through Redis pub/sub: every process publishes the
//! events it commits on one channel, those waiting together as one message, and
//! delivers the ones other processes published to its own subscribers. Pub/sub may
//! lose messages while a connection is down; subscribers notice the gap at the next
//! event and read it from the table.

use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::hub::{Hub, Message, Published, Remote};

/// Messages waiting to be published before new ones are dropped (and later read
/// from the table by whoever needs them).
const BACKLOG: usize = 65_536;

/// The publishing half, held by the hub.
pub struct Fanout {
    sender: mpsc::Sender<String>,
}

/// A message on the channel is a header line, `exechub-events/<version>
/// <publishing process's id>`, then each event as JSON, each on a line of its own
/// (JSON text has no raw newline). A process skips its own messages (delivered
/// already) without parsing them, and ignores a version it cannot read (during a
/// rolling upgrade), asking its subscribers to read what they missed from the table.
const LINE_END: char = '\n';
/// The message format this process writes and reads. Raise it when `Published`
/// changes in a way older readers would misread.
const FORMAT: &str = "exechub-events/2";

impl Remote for Fanout {
    fn send(&self, message: &Message) {
        let json = serde_json::to_string(&**message).expect("events serialize");
        if self.sender.try_send(json).is_err() {
            tracing::warn!("event fan-out is behind; other processes will read the table");
        }
    }
}

/// Extends `hub` to every process publishing on `{prefix}:events` on the Redis at
/// `url`: starts the publisher and the listener, which reconnect on their own.
pub async fn connect(hub: &Hub, url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let channel = format!("{prefix}:events");
    let origin = crate::domain::records::new_id();
    let (sender, receiver) = mpsc::channel(BACKLOG);
    let connection = client.get_connection_manager().await?;
    tokio::spawn(publish(
        connection,
        channel.clone(),
        origin.clone(),
        receiver,
    ));
    tokio::spawn(listen(client, channel, origin, hub.clone()));
    hub.set_fanout(Box::new(Fanout { sender }));
    Ok(())
}

/// Publishes the events waiting, up to `BATCH` of them as one message.
async fn publish(
    mut connection: redis::aio::ConnectionManager,
    channel: String,
    origin: String,
    mut receiver: mpsc::Receiver<String>,
) {
    const BATCH: usize = 256;
    let mut batch = Vec::new();
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let mut message = header(&origin);
        for json in batch.drain(..) {
            message.push(LINE_END);
            message.push_str(&json);
        }
        let published: redis::RedisResult<()> = connection.publish(&channel, message).await;
        if let Err(error) = published {
            tracing::warn!(?error, "could not publish events to Redis");
        }
    }
}

fn header(origin: &str) -> String {
    format!("{FORMAT} {origin}")
}

/// Delivers what other processes publish, reconnecting after a second on failure.
async fn listen(client: redis::Client, channel: String, origin: String, hub: Hub) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    // Messages published while no connection listened are lost.
                    hub.resync();
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Ok(payload) = message.get_payload::<String>() else {
                            continue;
                        };
                        let mut lines = payload.split(LINE_END);
                        let head = lines.next().unwrap_or_default();
                        if head == header(&origin) {
                            continue;
                        }
                        if !head.starts_with(FORMAT)
                            || head.as_bytes().get(FORMAT.len()) != Some(&b' ')
                        {
                            tracing::warn!(header = %head, "an event message in another format; reading from the table");
                            hub.resync();
                            continue;
                        }
                        for json in lines {
                            match serde_json::from_str::<Published>(json) {
                                Ok(message) => hub.deliver(message.into()),
                                Err(error) => tracing::warn!(?error, "unreadable event from Redis"),
                            }
                        }
                    }
                    tracing::warn!("Redis event subscription ended; reconnecting");
                }
                Err(error) => tracing::warn!(?error, "could not subscribe to Redis events"),
            },
            Err(error) => tracing::warn!(?error, "could not connect to Redis for events"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
