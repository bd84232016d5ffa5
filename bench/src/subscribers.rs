//! Subscribers at scale: N WebSocket subscribers (`graphql-transport-ws`) on one
//! server, each on its own execution or all on one, while events are published with
//! `appendLog` at a steady rate. Reports the idle memory per subscriber (server RSS
//! growth / N) and the event → client latency (client receipt − the event's
//! timestamp, one clock). The reference, in the same sitting, is the graphql-ws
//! library's `useServer` with graphql-js on Node.js (`bench/peers/graphql-ws`),
//! publishing from memory.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::server::{free_port, gql, node_peer, percentile, rss_kib, spawn_server, token};

#[derive(clap::Args)]
pub struct SubscribersBench {
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Events per second published when each subscriber has its own execution.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Events per second published when all subscribe to one execution (each is
    /// delivered to every subscriber).
    #[arg(long, default_value_t = 10)]
    rate_one: u64,
    /// Length of each publishing run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Database to serve from (default: SQLite in a fresh data dir).
    #[arg(long)]
    database_url: Option<String>,
    /// Also run the graphql-ws reference (Node.js).
    #[arg(long)]
    peer: bool,
}

const SUBSCRIPTION: &str =
    "subscription($id: ID!) { executionEvents(executionId: $id) { sequence type timestamp } }";
const APPEND: &str = "mutation($id: ID!) { appendLog(id: $id, log: { message: \"tick\" }) }";
const APPEND_EXECHUB: &str =
    "mutation($id: ID!) { appendLog(id: $id, log: { message: \"tick\" }) { id } }";
/// Connections opened at once while subscribers join.
const JOINING: usize = 100;
/// HTTP clients publishing.
const PUBLISHERS: usize = 16;

/// A server under test: exechub or the peer.
struct Target {
    name: &'static str,
    base: String,
    pid: u32,
    token: String,
    append: &'static str,
    _process: Box<dyn Send>,
}

struct Report {
    idle_kib_per_subscriber: f64,
    published: usize,
    offered_rate: u64,
    delivered: usize,
    expected: usize,
    p50: Duration,
    p99: Duration,
}

pub async fn run(bench: SubscribersBench) {
    for all_on_one in [false, true] {
        for with_peer in [false, true] {
            if with_peer && !bench.peer {
                continue;
            }
            let target = if with_peer {
                peer()
            } else {
                exechub(&bench).await
            };
            let report = measure(&target, &bench, all_on_one).await;
            let case = if all_on_one {
                "all on one execution"
            } else {
                "each on its own execution"
            };
            println!(
                "{}: {} subscribers {case}: idle {:.1} KiB/subscriber; {} events at {}/s offered \
                 ({:.0}/s published), {}/{} deliveries; latency p50 {:.2} ms, p99 {:.2} ms",
                target.name,
                bench.subscribers,
                report.idle_kib_per_subscriber,
                report.published,
                report.offered_rate,
                report.published as f64 / bench.seconds as f64,
                report.delivered,
                report.expected,
                report.p50.as_secs_f64() * 1e3,
                report.p99.as_secs_f64() * 1e3,
            );
        }
    }
}

async fn exechub(bench: &SubscribersBench) -> Target {
    // One token subscribes every socket: no cap of one principal applies here.
    let unbounded = [
        ("EXECHUB_MAX_WEBSOCKETS", "1000000"),
        ("EXECHUB_MAX_SUBSCRIPTIONS_PER_PRINCIPAL", "1000000"),
    ];
    let (server, _) = spawn_server(bench.database_url.as_deref(), &unbounded).await;
    Target {
        name: "exechub",
        base: server.base.clone(),
        pid: server.child.id(),
        token: token(),
        append: APPEND_EXECHUB,
        _process: Box::new(server),
    }
}

/// A child process killed when the benchmark is done with it.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peer() -> Target {
    let dir = node_peer("graphql-ws");
    let port = free_port();
    let child = Command::new("node")
        .arg("server.mjs")
        .arg(port.to_string())
        .current_dir(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("node server.mjs");
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the peer never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Target {
        name: "graphql-ws (Node.js, useServer + graphql-js, in-memory)",
        base,
        pid: child.id(),
        token: String::new(),
        append: APPEND,
        _process: Box::new(Peer(child)),
    }
}

/// The executions to subscribe to: created through the API on exechub, made-up ids
/// on the peer.
async fn executions(target: &Target, count: usize) -> Vec<String> {
    if target.name != "exechub" {
        return (0..count).map(|i| format!("e{i}")).collect();
    }
    let client = reqwest::Client::new();
    futures::stream::iter(0..count)
        .map(|_| {
            let client = client.clone();
            async move {
                let body = gql(
                    &client,
                    &target.base,
                    &target.token,
                    "mutation { createExecution(input: { orderId: \"o\", serviceId: \"bench\" }) { id } }",
                    json!({}),
                )
                .await;
                body["data"]["createExecution"]["id"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
}

async fn measure(target: &Target, bench: &SubscribersBench, all_on_one: bool) -> Report {
    let count = bench.subscribers;
    let ids = executions(target, if all_on_one { 1 } else { count }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(target.pid);

    let stop = CancellationToken::new();
    let joining = Arc::new(Semaphore::new(JOINING));
    let mut subscribers = Vec::with_capacity(count);
    let (joined, mut joins) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..count {
        let id = ids[n % ids.len()].clone();
        let url = format!("{}/graphql", target.base.replacen("http", "ws", 1));
        let token = target.token.clone();
        let stop = stop.clone();
        let joining = joining.clone();
        let joined = joined.clone();
        subscribers.push(tokio::spawn(async move {
            let permit = joining.acquire_owned().await.unwrap();
            let mut socket = subscribe(&url, &token, &id).await;
            drop(permit);
            let _ = joined.send(());
            let mut latencies = Vec::new();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    message = socket.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            let received = Utc::now();
                            let value: Value = serde_json::from_str(&text).unwrap();
                            if value["type"] != "next" {
                                continue;
                            }
                            let stamp = &value["payload"]["data"]["executionEvents"]["timestamp"];
                            let Some(stamp) = stamp.as_str() else {
                                continue;
                            };
                            let sent: DateTime<Utc> = stamp.parse().unwrap();
                            latencies.push((received - sent).to_std().unwrap_or_default());
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            latencies
        }));
    }
    for _ in 0..count {
        joins.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(target.pid);

    let rate = if all_on_one {
        bench.rate_one
    } else {
        bench.rate
    };
    let published = publish(target, &ids, rate, bench.seconds).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let mut latencies = Vec::new();
    for subscriber in subscribers {
        latencies.extend(subscriber.await.unwrap());
    }
    latencies.sort();
    Report {
        idle_kib_per_subscriber: idle.saturating_sub(before) as f64 / count as f64,
        published,
        offered_rate: rate,
        delivered: latencies.len(),
        expected: if all_on_one {
            published * count
        } else {
            published
        },
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
}

/// Opens a WebSocket with small buffers, initialises and subscribes to `id`.
async fn subscribe(
    url: &str,
    token: &str,
    id: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false)
            .await
            .expect("WebSocket connect");
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket
        .send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message
            && text.contains("connection_ack")
        {
            break;
        }
    }
    let subscribe = json!({ "type": "subscribe", "id": "1",
        "payload": { "query": SUBSCRIPTION, "variables": { "id": id } } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    socket
}

/// Calls `appendLog` at `rate` per second for `seconds`, round-robin over `ids`;
/// returns how many were published.
async fn publish(target: &Target, ids: &[String], rate: u64, seconds: u64) -> usize {
    let client = reqwest::Client::new();
    let total = (rate * seconds) as usize;
    let started = tokio::time::Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    futures::stream::iter(0..total)
        .map(|n| {
            let client = client.clone();
            let id = ids[n % ids.len()].clone();
            async move {
                tokio::time::sleep_until(started + gap * n as u32).await;
                let response = client
                    .post(format!("{}/graphql", target.base))
                    .bearer_auth(&target.token)
                    .json(&json!({ "query": target.append, "variables": { "id": id } }))
                    .send()
                    .await;
                response.is_ok_and(|r| r.status().is_success())
            }
        })
        .buffered(PUBLISHERS)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await
}
