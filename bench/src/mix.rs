//! `bench mix`: many clients doing what a deployment's users do at once, to see
//! whether writes wait behind reads: each request picks at random a list (40 %),
//! a detail (15 %), a create with three `echo` steps (20 %), an `appendLog` (13 %),
//! an `updateProgress` (7 %) or statistics (5 %). Prints requests per second,
//! errors, latency percentiles per kind and for writes, and the server's memory.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use crate::server::{create_execution, exechub_binary, percentile, rss_kib, spawn_server, token};

#[derive(clap::Args)]
pub struct MixBench {
    #[arg(long, default_value_t = 500)]
    clients: usize,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Database to serve from (default: SQLite in a fresh data dir).
    #[arg(long)]
    database_url: Option<String>,
    /// Redis for the queue and the event fan-out.
    #[arg(long)]
    redis_url: Option<String>,
    /// Separate `exechub worker` processes to run the steps (0: the server's own).
    #[arg(long, default_value_t = 0)]
    worker_processes: usize,
}

/// Kinds of request and how often each is sent (percent).
const KINDS: [(&str, u32); 6] = [
    ("list", 40),
    ("detail", 15),
    ("create", 20),
    ("appendLog", 13),
    ("progress", 7),
    ("stats", 5),
];
const WRITES: [&str; 3] = ["create", "appendLog", "progress"];

const LIST: &str = "{ executions(first: 20, filter: { status: { in: [QUEUED, RUNNING, COMPLETED] } }) \
    { totalCount nodes { id status progress serviceId createdAt } } }";
const DETAIL: &str = "query($id: ID!) { execution(id: $id) { id status progress \
    steps { id name status } logs(first: 10) { nodes { message } } } }";
const CREATE: &str =
    "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }";
const APPEND: &str =
    "mutation($id: ID!) { appendLog(id: $id, log: { message: \"mix line\" }) { id } }";
const PROGRESS: &str =
    "mutation($id: ID!, $p: Float!) { updateProgress(id: $id, progress: $p) { id } }";
const STATS: &str = "{ executionStats(groupBy: [STATUS]) { total completed } }";

/// Worker processes, killed when the bench ends.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.0 {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }
}

pub async fn run(bench: MixBench) {
    let redis = bench.redis_url.as_deref().unwrap_or_default();
    let mut env = vec![("EXECHUB_REDIS_URL", redis)];
    if bench.worker_processes > 0 {
        env.push(("EXECHUB_NO_WORKERS", "true"));
    }
    env.retain(|(_, value)| !value.is_empty());
    let (server, _) = spawn_server(bench.database_url.as_deref(), &env).await;
    let _workers = Workers(
        (0..bench.worker_processes)
            .map(|_| {
                let mut worker = Command::new(exechub_binary());
                worker
                    .arg("worker")
                    .env("EXECHUB_LOG", "warn")
                    .stdout(Stdio::null());
                worker.env(
                    "EXECHUB_DATABASE_URL",
                    bench.database_url.as_deref().unwrap_or_default(),
                );
                worker.env("EXECHUB_REDIS_URL", redis);
                worker.spawn().expect("spawn exechub worker")
            })
            .collect(),
    );
    let token = token();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(bench.clients)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut targets = Vec::new();
    for n in 0..200 {
        let steps: Vec<Value> = (0..10)
            .map(|i| json!({ "id": format!("s{i}"), "name": format!("Step {i}") }))
            .collect();
        let input = json!({ "orderId": format!("seed-{n}"), "serviceId": "mix", "steps": steps });
        targets.push(create_execution(&client, &server.base, &token, input).await);
    }
    let rss_before = rss_kib(server.child.id());
    let deadline = Instant::now() + Duration::from_secs(bench.seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..bench.clients)
        .map(|_| {
            let (client, base, token, targets) = (
                client.clone(),
                server.base.clone(),
                token.clone(),
                targets.clone(),
            );
            tokio::spawn(async move {
                let mut seen: Vec<(&'static str, Duration, bool)> = Vec::new();
                while Instant::now() < deadline {
                    let (kind, body) = request(&targets);
                    let sent = Instant::now();
                    let answered = client
                        .post(format!("{base}/graphql"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await;
                    let ok = match answered {
                        Ok(response) => {
                            let body: Value = response.json().await.unwrap_or(Value::Null);
                            body.get("data").is_some_and(|d| !d.is_null())
                                && body.get("errors").is_none()
                        }
                        Err(_) => false,
                    };
                    seen.push((kind, sent.elapsed(), ok));
                }
                seen
            })
        })
        .collect();
    let mut seen = Vec::new();
    for client in clients {
        seen.extend(client.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let errors = seen.iter().filter(|(_, _, ok)| !ok).count();
    let backend = match (&bench.database_url, &bench.redis_url) {
        (Some(_), Some(_)) => "Postgres + Redis",
        (Some(_), None) => "Postgres",
        _ => "SQLite",
    };
    println!(
        "mix on {backend}, {} clients, {} worker process(es), {elapsed:.0} s: {:.0} req/s, {errors} errors",
        bench.clients,
        bench.worker_processes,
        seen.len() as f64 / elapsed
    );
    let report = |label: &str, mut latencies: Vec<Duration>| {
        latencies.sort();
        println!(
            "  {label:<10} {:>7} requests  p50 {:>8.1} ms  p99 {:>8.1} ms",
            latencies.len(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3
        );
    };
    report("all", seen.iter().map(|s| s.1).collect());
    report(
        "writes",
        seen.iter()
            .filter(|s| WRITES.contains(&s.0))
            .map(|s| s.1)
            .collect(),
    );
    for (kind, _) in KINDS {
        report(
            kind,
            seen.iter().filter(|s| s.0 == kind).map(|s| s.1).collect(),
        );
    }
    println!(
        "  RSS {:.0} MiB before, {:.0} MiB after",
        rss_before as f64 / 1024.0,
        rss_kib(server.child.id()) as f64 / 1024.0
    );
}

/// A request of a kind drawn by `KINDS`' weights.
fn request(targets: &[String]) -> (&'static str, Value) {
    let mut rng = rand::rng();
    let mut draw = rng.random_range(0..100);
    let kind = KINDS
        .iter()
        .find(|(_, weight)| {
            let this = draw < *weight;
            draw = draw.saturating_sub(*weight);
            this
        })
        .map_or("list", |(kind, _)| kind);
    let id = &targets[rng.random_range(0..targets.len())];
    let body = match kind {
        "list" => json!({ "query": LIST }),
        "detail" => json!({ "query": DETAIL, "variables": { "id": id } }),
        "create" => {
            let steps: Vec<Value> = (0..3)
                .map(|i| json!({ "id": format!("s{i}"), "name": "echo", "handler": { "kind": "echo" }, "input": { "i": i } }))
                .collect();
            let input =
                json!({ "orderId": "mix", "serviceId": "mix", "autoStart": true, "steps": steps });
            json!({ "query": CREATE, "variables": { "input": input } })
        }
        "appendLog" => json!({ "query": APPEND, "variables": { "id": id } }),
        "progress" => {
            json!({ "query": PROGRESS, "variables": { "id": id, "p": rng.random_range(0.0..100.0) } })
        }
        _ => json!({ "query": STATS }),
    };
    (kind, body)
}
