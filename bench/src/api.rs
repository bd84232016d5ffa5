//! The core API under load: start-up time and idle memory, `execution(id)` reads and
//! `appendLog` writes under concurrent clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::{Server, gql, percentile, rss_kib, spawn_server, token};

/// Concurrent clients against one server, for a while.
#[derive(clap::Args)]
pub struct Load {
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Database to serve from (default: SQLite in a fresh data dir).
    #[arg(long)]
    database_url: Option<String>,
}

pub async fn startup(runs: usize) {
    let mut ready = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let (server, took) = spawn_server(None, &[]).await;
        ready.push(took);
        // Idle: one query served, then a second of nothing.
        let client = reqwest::Client::new();
        gql(
            &client,
            &server.base,
            &token(),
            "{ me { subject } }",
            json!({}),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(rss_kib(server.child.id()));
    }
    ready.sort();
    rss.sort();
    println!(
        "startup (spawn → /readyz 200, fresh SQLite, {runs} runs): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        ready[runs / 2].as_secs_f64() * 1e3,
        ready[0].as_secs_f64() * 1e3,
        ready[runs - 1].as_secs_f64() * 1e3,
    );
    println!(
        "idle RSS after start: median {:.1} MiB (min {:.1}, max {:.1})",
        rss[runs / 2] as f64 / 1024.0,
        rss[0] as f64 / 1024.0,
        rss[runs - 1] as f64 / 1024.0
    );
}

const BASELINE: &str = "{ me { subject } }";

const READ: &str = "query($id: ID!) { execution(id: $id) { id status progress priority \
    metrics { stepsTotal stepsCompleted } steps { id name status dependsOn output startedAt } } }";

const WRITE: &str =
    "mutation($id: ID!) { appendLog(id: $id, log: { message: \"bench line\" }) { id } }";

/// A running execution with 10 steps; returns its id.
async fn create_execution(client: &reqwest::Client, base: &str, token: &str) -> String {
    let steps: Vec<Value> = (0..10)
        .map(|i| json!({ "id": format!("step-{i}"), "name": format!("Step {i}") }))
        .collect();
    let input =
        json!({ "orderId": "bench", "serviceId": "bench", "steps": steps, "autoStart": true });
    crate::server::create_execution(client, base, token, input).await
}

/// Runs `concurrency` clients, client `i` posting `bodies[i % bodies.len()]` in a loop,
/// for a 2 s warm-up and then `seconds`; prints the measured run as `label`.
async fn load(
    server: &Server,
    token: &str,
    bodies: Vec<String>,
    concurrency: usize,
    seconds: u64,
    label: &str,
) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    for (measured, duration) in [
        (false, Duration::from_secs(2)),
        (true, Duration::from_secs(seconds)),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..concurrency)
            .map(|i| {
                let (client, base, token, body, stop) = (
                    client.clone(),
                    server.base.clone(),
                    token.to_owned(),
                    bodies[i % bodies.len()].clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let start = Instant::now();
                        let response = client
                            .post(format!("{base}/graphql"))
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await
                            .expect("request");
                        let bytes = response.bytes().await.expect("body");
                        assert!(
                            bytes.starts_with(b"{\"data\":{")
                                && !bytes.windows(8).any(|w| w == b"\"errors\""),
                            "{}",
                            String::from_utf8_lossy(&bytes)
                        );
                        latencies.push(start.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let started = Instant::now();
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for worker in workers {
            latencies.extend(worker.await.unwrap());
        }
        let elapsed = started.elapsed();
        if !measured {
            continue;
        }
        latencies.sort();
        println!(
            "{label}: {concurrency} clients, {:.1} s: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({} requests)",
            elapsed.as_secs_f64(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.len(),
        );
    }
}

fn backend_name(database_url: &Option<String>) -> &'static str {
    if database_url.is_some() {
        "Postgres"
    } else {
        "SQLite"
    }
}

pub async fn read(
    Load {
        concurrency,
        seconds,
        database_url,
    }: Load,
    baseline: bool,
    executions: usize,
) {
    let (server, _) = spawn_server(database_url.as_deref(), &[]).await;
    let token = token();
    let client = reqwest::Client::new();
    let mut bodies = Vec::new();
    for _ in 0..executions.max(1) {
        let id = create_execution(&client, &server.base, &token).await;
        let query = if baseline { BASELINE } else { READ };
        bodies.push(json!({ "query": query, "variables": { "id": id } }).to_string());
    }
    let what = if baseline {
        "baseline { me }".to_owned()
    } else {
        format!("execution(id) with 10 steps, {} execution(s)", bodies.len())
    };
    let label = format!("{what} on {}", backend_name(&database_url));
    load(&server, &token, bodies, concurrency, seconds, &label).await;
}

pub async fn write(
    Load {
        concurrency,
        seconds,
        database_url,
    }: Load,
) {
    let (server, _) = spawn_server(database_url.as_deref(), &[]).await;
    let token = token();
    let client = reqwest::Client::new();
    let mut bodies = Vec::new();
    for _ in 0..concurrency {
        let id = create_execution(&client, &server.base, &token).await;
        bodies.push(json!({ "query": WRITE, "variables": { "id": id } }).to_string());
    }
    let label = format!(
        "appendLog, one execution per client, on {}",
        backend_name(&database_url)
    );
    load(&server, &token, bodies, concurrency, seconds, &label).await;
}
