//! GraphQL over WebSocket on `/graphql`, in both subprotocols (`protocol`). One task
//! per connection reads, writes and keeps time (init timeout, pings, token expiry);
//! one task per operation runs it and hands its messages to the connection through a
//! small channel. A slow socket stalls only its own tasks: the bus never waits for it,
//! and its subscriptions catch up from the table when they lag. A message is at most
//! `--max-body-bytes`, as a request body is (and one that does not arrive whole
//! before the init timeout is dropped with the socket); a connection runs at most
//! `--max-operations-per-connection` operations at once, and a principal holds at
//! most its quota (`http::quota`) over all its connections.

mod protocol;

use std::collections::HashMap;
use std::time::SystemTime;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep_until};

use super::AppState;
use super::auth::authorize;
use crate::error::AppError;
use crate::graphql::context::Authentication;
use crate::graphql::error_codes::with_codes;
use protocol::*;

/// Messages an operation may have queued for its socket before it waits.
const OUTBOX: usize = 16;
/// The socket's read buffer, allocated up front for every connection: clients send
/// small messages (a subscription is a few hundred bytes), and a larger one grows it.
const READ_BUFFER_BYTES: usize = 1024;
/// How much the socket gathers before writing.
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
use super::NEVER;

pub fn upgrade(state: AppState, ws: WebSocketUpgrade) -> Response {
    let Ok(slot) = state.websockets.clone().try_acquire_owned() else {
        let refusal = "too many WebSockets are open (--max-websockets): try again later";
        return (StatusCode::SERVICE_UNAVAILABLE, refusal).into_response();
    };
    let ws = ws
        .protocols(Protocol::NAMES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(state.max_message_bytes)
        .max_frame_size(state.max_message_bytes);
    let protocol = Protocol::named(ws.selected_protocol().and_then(|p| p.to_str().ok()));
    ws.on_upgrade(move |socket| async move {
        let (connection, outbox) = Connection::new(state, protocol);
        connection.run(socket, outbox).await;
        drop(slot);
    })
}

/// What an operation's task hands to its connection. Small, because every outbox
/// reserves room for 32 of them when it is created.
enum Outgoing {
    Message(String),
    End(Box<Ending>),
}

/// An operation ended: `last` (its `complete` or `error`) is sent unless the client
/// stopped it first.
struct Ending {
    id: String,
    last: String,
}

/// What handling one event of the connection leads to.
enum Flow {
    Continue,
    Send(String),
    Close(Close),
    Stop,
}

struct Connection {
    state: AppState,
    protocol: Protocol,
    /// Set by `connection_init`.
    authentication: Option<Authentication>,
    expires: Option<SystemTime>,
    operations: HashMap<String, AbortHandle>,
    outbox: mpsc::Sender<Outgoing>,
}

impl Connection {
    /// The connection, and the receiving end of its operations' outbox.
    fn new(state: AppState, protocol: Protocol) -> (Self, mpsc::Receiver<Outgoing>) {
        let (outbox, receiver) = mpsc::channel(OUTBOX);
        let connection = Connection {
            state,
            protocol,
            authentication: None,
            expires: None,
            operations: HashMap::new(),
            outbox,
        };
        (connection, receiver)
    }

    async fn run(mut self, socket: WebSocket, mut outbox: mpsc::Receiver<Outgoing>) {
        let (mut sink, mut incoming) = socket.split();
        let init_deadline = sleep_until(Instant::now() + self.state.ws_init_timeout);
        tokio::pin!(init_deadline);
        let expiry = sleep_until(Instant::now() + NEVER);
        tokio::pin!(expiry);
        let ping_every = self.state.ws_ping_interval;
        let mut pings = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        loop {
            let flow = tokio::select! {
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let flow = self.on_text(text.as_str());
                        if let Some(expires) = self.expires.take() {
                            let left = expires.duration_since(SystemTime::now()).unwrap_or_default();
                            expiry.as_mut().reset(Instant::now() + left);
                        }
                        flow
                    }
                    Some(Ok(Message::Binary(_))) => {
                        Flow::Close(Close(BAD_REQUEST, "Invalid message received: binary".into()))
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => Flow::Stop,
                },
                Some(outgoing) = outbox.recv() => match outgoing {
                    Outgoing::Message(text) => Flow::Send(text),
                    Outgoing::End(ending) => match self.operations.remove(&ending.id) {
                        Some(_) => Flow::Send(ending.last),
                        None => Flow::Continue,
                    },
                },
                _ = &mut init_deadline, if self.authentication.is_none() => {
                    Flow::Close(Close(INIT_TIMEOUT, "Connection initialisation timeout".into()))
                }
                _ = &mut expiry => Flow::Close(Close(FORBIDDEN, "Forbidden: the token expired".into())),
                _ = pings.tick() => Flow::Send(self.protocol.keep_alive()),
                _ = self.state.shutdown.cancelled() => {
                    Flow::Close(Close(GOING_AWAY, "The server is shutting down".into()))
                }
            };
            let sent = match flow {
                Flow::Continue => Ok(()),
                Flow::Send(text) => sink.send(Message::Text(text.into())).await,
                Flow::Close(close) => {
                    tracing::debug!(code = close.0, reason = %close.1, "closing WebSocket");
                    let frame = CloseFrame {
                        code: close.0,
                        reason: close.sendable_reason().into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
                Flow::Stop => break,
            };
            if sent.is_err() {
                break;
            }
        }
        for (_, operation) in self.operations.drain() {
            operation.abort();
        }
    }

    fn on_text(&mut self, text: &str) -> Flow {
        let message = match self.protocol.parse(text) {
            Ok(message) => message,
            Err(close) => return Flow::Close(close),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => self.on_init(payload),
            ClientMessage::Subscribe { id, payload } | ClientMessage::Start { id, payload } => {
                self.on_subscribe(id, payload)
            }
            ClientMessage::Complete { id } | ClientMessage::Stop { id } => {
                if let Some(operation) = self.operations.remove(&id) {
                    operation.abort();
                }
                Flow::Continue
            }
            ClientMessage::ConnectionTerminate => Flow::Stop,
            ClientMessage::Ping { payload } => Flow::Send(self.protocol.pong(payload)),
            ClientMessage::Pong {} => Flow::Continue,
        }
    }

    fn on_init(&mut self, payload: Option<Value>) -> Flow {
        if self.authentication.is_some() {
            return Flow::Close(Close(
                TOO_MANY_INITS,
                "Too many initialisation requests".into(),
            ));
        }
        let authentication = match bearer(payload.as_ref()) {
            // No token: operations answer UNAUTHENTICATED, as over HTTP.
            None if !self.state.insecure_no_auth => Err(AppError::Unauthenticated(
                "send a token in connection_init".into(),
            )),
            authorization => match authorize(&self.state, authorization.as_deref()) {
                Ok((principal, expires)) => {
                    self.expires = expires;
                    Ok(principal)
                }
                Err(error) => {
                    return Flow::Close(Close(
                        FORBIDDEN,
                        format!("Forbidden: {}", error.message()),
                    ));
                }
            },
        };
        self.authentication = Some(Authentication(authentication));
        Flow::Send(self.protocol.ack())
    }

    fn on_subscribe(&mut self, id: String, request: async_graphql::Request) -> Flow {
        let Some(authentication) = &self.authentication else {
            return Flow::Close(Close(UNAUTHORIZED, "Unauthorized".into()));
        };
        if self.operations.contains_key(&id) {
            return Flow::Close(Close(
                DUPLICATE_SUBSCRIBER,
                format!("Subscriber for {id} already exists"),
            ));
        }
        if self.operations.len() >= self.state.max_operations_per_connection {
            let refusal = format!(
                "at most {} operations at once on one connection \
                 (--max-operations-per-connection)",
                self.state.max_operations_per_connection
            );
            return Flow::Send(self.protocol.error(&id, &[rate_limited(refusal)]));
        }
        let held = match &authentication.0 {
            Ok(principal) => match self.state.quota.hold(principal) {
                Some(held) => Some(held),
                None => {
                    let refusal = rate_limited(self.state.quota.refusal());
                    return Flow::Send(self.protocol.error(&id, &[refusal]));
                }
            },
            Err(_) => None,
        };
        let request = request.data(authentication.clone());
        let schema = self.state.schema.clone();
        let protocol = self.protocol;
        let outbox = self.outbox.clone();
        let operation_id = id.clone();
        let task = tokio::spawn(async move {
            let _held = held;
            let mut responses = schema.execute_stream(request);
            let mut first = true;
            while let Some(response) = responses.next().await {
                let response = with_codes(response);
                let failed =
                    first && response.is_err() && response.data == async_graphql::Value::Null;
                if failed {
                    let last = protocol.error(&operation_id, &response.errors);
                    let _ = outbox
                        .send(Outgoing::End(Box::new(Ending {
                            id: operation_id,
                            last,
                        })))
                        .await;
                    return;
                }
                first = false;
                let message = Outgoing::Message(protocol.next(&operation_id, &response));
                if outbox.send(message).await.is_err() {
                    return;
                }
            }
            let last = protocol.complete(&operation_id);
            let _ = outbox
                .send(Outgoing::End(Box::new(Ending {
                    id: operation_id,
                    last,
                })))
                .await;
        });
        self.operations.insert(id, task.abort_handle());
        Flow::Continue
    }
}

/// An operation refused for a limit, with the contract's `RATE_LIMITED`.
pub(super) fn rate_limited(message: String) -> async_graphql::ServerError {
    let mut error = async_graphql::ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", "RATE_LIMITED");
    error.extensions = Some(extensions);
    error
}

/// The `Authorization` value a `connection_init` payload carries:
/// `{"Authorization": "Bearer …"}` or `{"token": "…"}`.
fn bearer(payload: Option<&Value>) -> Option<String> {
    let payload = payload?;
    let header = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(Value::as_str);
    match header {
        Some(header) => Some(header.to_owned()),
        None => payload
            .get("token")
            .and_then(Value::as_str)
            .map(|token| format!("Bearer {token}")),
    }
}
