//! Benchmarks of the running binary (see BENCHMARKS.md). It starts `exechub serve`
//! from the same build as a child process, like a user would, and measures it from
//! outside over real HTTP:
//!
//! - `bench startup`: time from spawn to `/readyz` = 200 on a fresh SQLite data dir,
//!   and the idle resident memory afterwards.
//! - `bench read`: `execution(id)` with 10 steps under N concurrent clients: requests
//!   per second and latency percentiles, on SQLite or on `--database-url`.
//! - `bench write`: `appendLog` under N concurrent clients, each on its own execution.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

const SECRET: &str = "bench-secret";

#[derive(Parser)]
#[command(about = "Benchmarks of the exechub binary")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Spawn → /readyz latency and idle RSS, over fresh SQLite data dirs.
    Startup {
        #[arg(long, default_value_t = 11)]
        runs: usize,
    },
    /// execution(id) with 10 steps under concurrent load.
    Read {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Database to serve from (default: SQLite in a fresh data dir).
        #[arg(long)]
        database_url: Option<String>,
        /// Send `{ me { subject } }` instead: the same HTTP, JWT and GraphQL work with
        /// no database access, as a ceiling to compare with.
        #[arg(long)]
        baseline: bool,
    },
    /// `appendLog` (one transaction: row lock, log, event, audit) under concurrent load,
    /// each client on its own execution.
    Write {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Database to serve from (default: SQLite in a fresh data dir).
        #[arg(long)]
        database_url: Option<String>,
    },
}

struct Server {
    child: Child,
    base: String,
    data_dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn exechub_binary() -> PathBuf {
    std::env::current_exe()
        .expect("current exe")
        .with_file_name("exechub")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Spawns `exechub serve` and returns once `/readyz` answers 200, with the time that took.
async fn spawn_server(database_url: Option<&str>) -> (Server, Duration) {
    let port = free_port();
    let data_dir = std::env::temp_dir().join(format!("exechub-bench-{}", uuid::Uuid::now_v7()));
    let mut command = Command::new(exechub_binary());
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("EXECHUB_JWT_SECRET", SECRET)
        .env("EXECHUB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match database_url {
        Some(url) => command.env("EXECHUB_DATABASE_URL", url),
        None => command.env_remove("EXECHUB_DATABASE_URL"),
    };
    let started = Instant::now();
    let child = command
        .spawn()
        .expect("spawn exechub (build it with --release first)");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server never became ready"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ready = started.elapsed();
    (
        Server {
            child,
            base,
            data_dir,
        },
        ready,
    )
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|v| v.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn token() -> String {
    let output = Command::new(exechub_binary())
        .args(["token", "--role", "admin", "--ttl", "1h"])
        .env("EXECHUB_JWT_SECRET", SECRET)
        .output()
        .expect("exechub token");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn gql(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let body: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    body
}

async fn startup(runs: usize) {
    let mut ready = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let (server, took) = spawn_server(None).await;
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
    let created = gql(
        client,
        base,
        token,
        "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }",
        json!({ "input": { "orderId": "bench", "serviceId": "bench", "steps": steps, "autoStart": true } }),
    )
    .await;
    created["data"]["createExecution"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
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

async fn read(concurrency: usize, seconds: u64, database_url: Option<String>, baseline: bool) {
    let (server, _) = spawn_server(database_url.as_deref()).await;
    let token = token();
    let id = create_execution(&reqwest::Client::new(), &server.base, &token).await;
    let query = if baseline { BASELINE } else { READ };
    let body = json!({ "query": query, "variables": { "id": id } }).to_string();
    let what = if baseline {
        "baseline { me }"
    } else {
        "execution(id) with 10 steps"
    };
    let label = format!("{what} on {}", backend_name(&database_url));
    load(&server, &token, vec![body], concurrency, seconds, &label).await;
}

async fn write(concurrency: usize, seconds: u64, database_url: Option<String>) {
    let (server, _) = spawn_server(database_url.as_deref()).await;
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

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Bench::Startup { runs } => startup(runs).await,
        Bench::Read {
            concurrency,
            seconds,
            database_url,
            baseline,
        } => read(concurrency, seconds, database_url, baseline).await,
        Bench::Write {
            concurrency,
            seconds,
            database_url,
        } => write(concurrency, seconds, database_url).await,
    }
}
