//! A GraphQL WebSocket client for tests, speaking either subprotocol over a real
//! socket, and a Server-Sent Events reader.
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: &'static str,
}

/// How a connection ended.
#[derive(Debug, PartialEq)]
pub enum Ending {
    Closed(u16, String),
    /// No close frame: the socket just ended.
    Dropped,
}

impl WsClient {
    /// Opens `/graphql` of the server at `base` (`http://…`) with `protocol`.
    pub async fn open(base: &str, protocol: &'static str) -> WsClient {
        let url = format!("{}/graphql", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket connect");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            protocol,
            "negotiated subprotocol"
        );
        WsClient { socket, protocol }
    }

    /// Opens and initialises with `token` (none: an empty payload); returns after the ack.
    pub async fn connect(base: &str, protocol: &'static str, token: Option<&str>) -> WsClient {
        let mut client = Self::open(base, protocol).await;
        let payload = match token {
            Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = client.next_message().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Starts operation `id` (`subscribe`, or `start` in the legacy protocol).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.protocol == LEGACY_WS {
            "start"
        } else {
            "subscribe"
        };
        self.send(json!({ "type": kind, "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next protocol message other than keep-alives, within 20 s.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("a message within 20 s")
                .expect("socket open")
                .expect("socket message");
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" || value["type"] == "ka" {
                    continue;
                }
                return value;
            }
        }
    }

    /// The payload of the next `next`/`data` message of operation `id`, panicking on
    /// anything else.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let message = self.next_message().await;
        assert!(
            (message["type"] == "next" || message["type"] == "data") && message["id"] == id,
            "expected data of {id}: {message}"
        );
        message["payload"].clone()
    }

    /// Reads until the server closes; returns how (within `within`).
    pub async fn ending(&mut self, within: Duration) -> Ending {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("the server to close in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Ending::Closed(frame.code.into(), frame.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Ending::Dropped,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Every raw text message (keep-alives included) for `period`.
    pub async fn texts_for(&mut self, period: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + period;
        let mut texts = Vec::new();
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout_at(deadline, self.socket.next()).await
        {
            if let Message::Text(text) = message {
                texts.push(serde_json::from_str(&text).unwrap());
            }
        }
        texts
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// The events of a subscription `next` payload: `data.<field>`.
pub fn event_of(payload: &Value, field: &str) -> Value {
    assert!(payload.get("errors").is_none(), "errors: {payload}");
    payload["data"][field].clone()
}
