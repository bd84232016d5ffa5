//! The two WebSocket subprotocols of GraphQL: `graphql-transport-ws` (the
//! `graphql-ws` library's) and the legacy `graphql-ws` (of
//! `subscriptions-transport-ws`): what clients send, what the server answers with in
//! each, and the close codes of the graphql-ws spec.

use async_graphql::{Response, ServerError};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Protocol {
    TransportWs,
    Legacy,
}

/// A message that ends the connection: a close code and its reason.
pub struct Close(pub u16, pub String);

/// The most bytes a close reason may have: a close frame is a control frame, whose
/// payload (2 bytes of code, then the reason) RFC 6455 caps at 125 bytes. Clients
/// fail the whole connection on a longer one instead of reading the code.
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

impl Close {
    /// The reason as it can be sent: cut to `MAX_CLOSE_REASON_BYTES` on a character
    /// boundary.
    pub fn sendable_reason(&self) -> &str {
        let reason = self.1.as_str();
        let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        &reason[..end]
    }
}

/// The server is going away (RFC 6455).
pub const GOING_AWAY: u16 = 1001;
pub const BAD_REQUEST: u16 = 4400;
pub const UNAUTHORIZED: u16 = 4401;
pub const FORBIDDEN: u16 = 4403;
pub const INIT_TIMEOUT: u16 = 4408;
pub const DUPLICATE_SUBSCRIBER: u16 = 4409;
pub const TOO_MANY_INITS: u16 = 4429;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    /// `graphql-transport-ws`.
    Subscribe {
        id: String,
        payload: async_graphql::Request,
    },
    /// Legacy.
    Start {
        id: String,
        payload: async_graphql::Request,
    },
    /// `graphql-transport-ws`.
    Complete { id: String },
    /// Legacy.
    Stop { id: String },
    /// Legacy.
    ConnectionTerminate,
    /// `graphql-transport-ws`.
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    /// `graphql-transport-ws`; its payload is ignored.
    Pong {},
}

impl Protocol {
    /// The subprotocol names offered, preferred first.
    pub const NAMES: [&'static str; 2] = ["graphql-transport-ws", "graphql-ws"];

    /// The protocol of a negotiated subprotocol; `graphql-transport-ws` when the
    /// client asked for none.
    pub fn named(name: Option<&str>) -> Self {
        match name {
            Some("graphql-ws") => Protocol::Legacy,
            _ => Protocol::TransportWs,
        }
    }

    /// Parses a client's message, refusing what this protocol does not have.
    pub fn parse(self, text: &str) -> Result<ClientMessage, Close> {
        let message: ClientMessage = serde_json::from_str(text)
            .map_err(|e| Close(BAD_REQUEST, format!("Invalid message received: {e}")))?;
        let legacy_only = matches!(
            message,
            ClientMessage::Start { .. }
                | ClientMessage::Stop { .. }
                | ClientMessage::ConnectionTerminate
        );
        let transport_only = matches!(
            message,
            ClientMessage::Subscribe { .. }
                | ClientMessage::Complete { .. }
                | ClientMessage::Ping { .. }
                | ClientMessage::Pong { .. }
        );
        let foreign = match self {
            Protocol::TransportWs => legacy_only,
            Protocol::Legacy => transport_only,
        };
        if foreign {
            return Err(Close(
                BAD_REQUEST,
                "Invalid message received: unknown type".into(),
            ));
        }
        Ok(message)
    }

    pub fn ack(self) -> String {
        json!({"type": "connection_ack"}).to_string()
    }

    /// The keep-alive the server sends on its interval.
    pub fn keep_alive(self) -> String {
        match self {
            Protocol::TransportWs => json!({"type": "ping"}),
            Protocol::Legacy => json!({"type": "ka"}),
        }
        .to_string()
    }

    pub fn pong(self, payload: Option<Value>) -> String {
        match payload {
            Some(payload) => json!({"type": "pong", "payload": payload}),
            None => json!({"type": "pong"}),
        }
        .to_string()
    }

    /// A result of an operation.
    pub fn next(self, id: &str, response: &Response) -> String {
        let kind = match self {
            Protocol::TransportWs => "next",
            Protocol::Legacy => "data",
        };
        json!({"type": kind, "id": id, "payload": response}).to_string()
    }

    /// The errors that ended an operation before it produced anything.
    pub fn error(self, id: &str, errors: &[ServerError]) -> String {
        json!({"type": "error", "id": id, "payload": errors}).to_string()
    }

    pub fn complete(self, id: &str) -> String {
        json!({"type": "complete", "id": id}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_control_frame_on_a_character_boundary() {
        let long = Close(BAD_REQUEST, format!("Invalid message: {}", "é".repeat(100)));
        let reason = long.sendable_reason();
        assert!(reason.len() <= MAX_CLOSE_REASON_BYTES);
        assert!(
            reason.len() >= MAX_CLOSE_REASON_BYTES - 1,
            "cut no more than needed"
        );
        assert!(long.1.starts_with(reason));
        let short = Close(UNAUTHORIZED, "Unauthorized".into());
        assert_eq!(short.sendable_reason(), "Unauthorized");
    }
}
