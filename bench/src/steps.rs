//! The scheduler under load, end to end through the API: `echo` steps persisted with
//! their events. Throughput: executions of parallel steps (or chains, `--chained`)
//! created up front, all started at once, timed until every one is COMPLETED. Dispatch
//! latency: chains of steps started at a steady offered rate, read from the server's
//! `exechub_step_dispatch_seconds` summary (ready → handler start). The reference is
//! BullMQ on the same Redis (`bench/peers/bullmq`), run in the same sitting.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::{Deployment, Server, create_execution, gql, node_peer};

#[derive(clap::Args)]
pub struct StepsBench {
    #[command(flatten)]
    deployment: Deployment,
    /// Executions in the throughput run.
    #[arg(long, default_value_t = 200)]
    executions: usize,
    /// Parallel `echo` steps per execution in the throughput run.
    #[arg(long, default_value_t = 25)]
    steps: usize,
    /// The throughput run's steps run one after the other (a chain per execution)
    /// instead of in parallel.
    #[arg(long)]
    chained: bool,
    /// Steps per second offered in the latency run.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Length of the latency run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Also run the BullMQ reference (Node.js; Redis from --redis-url or local).
    #[arg(long)]
    bullmq: bool,
    /// Spreads the executions over this many customers (`customer-0` …), for
    /// limits per customer; 0 gives them none.
    #[arg(long, default_value_t = 0)]
    customers: usize,
}

const START: &str = "mutation($id: ID!) { startExecution(id: $id) { id } }";
const COUNT: &str = "query($service: ID!, $statuses: [ExecutionStatus!]) { executions(first: 1, \
    filter: { serviceId: { eq: $service }, status: { in: $statuses } }) { totalCount } }";

/// Steps in a chain per execution in the latency run.
const CHAIN: usize = 10;
/// Clients creating and starting executions.
const CLIENTS: usize = 16;

pub async fn run(bench: StepsBench) {
    let backend = bench.deployment.name();
    let total = bench.executions * bench.steps;
    let (server, token) = bench.deployment.launch().await;
    let steps = echo_steps(bench.steps, !bench.chained);
    let took = throughput(&server, &token, bench.executions, bench.customers, steps).await;
    let commits = commit_report(&server_metrics(&server).await);
    drop(server);
    println!(
        "exechub {backend}: {total} echo steps ({} executions × {} {} steps) in {:.2} s: {:.0} steps/s ({commits})",
        bench.executions,
        bench.steps,
        if bench.chained { "chained" } else { "parallel" },
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    if bench.bullmq {
        let redis = bench
            .deployment
            .redis_url
            .as_deref()
            .unwrap_or("redis://127.0.0.1:6379");
        let report = bullmq(redis, total, bench.rate, bench.seconds);
        println!(
            "BullMQ (concurrency 50, same Redis): {total} no-op jobs in {:.2} s: {:.0} jobs/s; \
             latency at {} jobs/s: p50 {:.2} ms, p99 {:.2} ms",
            report["seconds"].as_f64().unwrap_or_default(),
            report["jobsPerSecond"].as_f64().unwrap_or_default(),
            bench.rate,
            report["latencyP50Ms"].as_f64().unwrap_or_default(),
            report["latencyP99Ms"].as_f64().unwrap_or_default(),
        );
    }
    let (server, token) = bench.deployment.launch().await;
    let (p50, p99, count) = latency(&server, &token, bench.rate, bench.seconds).await;
    println!(
        "exechub {backend}: dispatch latency at {} steps/s offered ({count} steps): p50 {:.2} ms, p99 {:.2} ms",
        bench.rate,
        p50 * 1e3,
        p99 * 1e3
    );
}

/// Creates `count` not-yet-started executions of `service`, spread over
/// `customers` customers (none when 0); returns their ids.
pub(crate) async fn create(
    server: &Server,
    token: &str,
    service: &str,
    (count, customers): (usize, usize),
    steps: Vec<Value>,
) -> Vec<String> {
    let client = reqwest::Client::new();
    let input = json!({ "orderId": "bench", "serviceId": service, "steps": steps });
    let variables = json!({ "input": input });
    let per_client = count.div_ceil(CLIENTS);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (client, base, token, variables) = (
                client.clone(),
                server.base.clone(),
                token.to_owned(),
                variables.clone(),
            );
            let mine = per_client.min(count.saturating_sub(i * per_client));
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..mine {
                    let mut variables = variables.clone();
                    if customers > 0 {
                        let customer = format!("customer-{}", (i * per_client + n) % customers);
                        variables["input"]["customerId"] = json!(customer);
                    }
                    ids.push(
                        create_execution(&client, &base, &token, variables["input"].take()).await,
                    );
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    ids
}

pub(crate) fn echo_steps(count: usize, parallel: bool) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let mut step = json!({
                "id": format!("s{i}"),
                "name": format!("Step {i}"),
                "handler": { "kind": "echo" },
                "input": { "n": i },
            });
            if parallel {
                step["dependsOn"] = json!([]);
            }
            step
        })
        .collect()
}

async fn count(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
    service: &str,
    statuses: &[&str],
) -> usize {
    let found = gql(
        client,
        &server.base,
        token,
        COUNT,
        json!({ "service": service, "statuses": statuses }),
    )
    .await;
    found["data"]["executions"]["totalCount"]
        .as_u64()
        .unwrap_or_default() as usize
}

/// Waits until every execution of `service` is COMPLETED; panics on a failure.
pub(crate) async fn until_completed(server: &Server, token: &str, service: &str, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let client = reqwest::Client::new();
    loop {
        if count(&client, server, token, service, &["COMPLETED"]).await == expected {
            return;
        }
        let failed = count(&client, server, token, service, &["FAILED", "CANCELLED"]).await;
        assert_eq!(failed, 0, "executions failed during the bench");
        assert!(Instant::now() < deadline, "the bench never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts every execution from `CLIENTS` clients at once and times until all are done.
async fn throughput(
    server: &Server,
    token: &str,
    executions: usize,
    customers: usize,
    steps: Vec<Value>,
) -> Duration {
    let service = format!("bench-throughput-{}", uuid::Uuid::now_v7().simple());
    let ids = create(server, token, &service, (executions, customers), steps).await;
    let started = Instant::now();
    start_all(server, token, &ids).await;
    until_completed(server, token, &service, executions).await;
    started.elapsed()
}

/// Starts every execution of `ids`, from `CLIENTS` clients at once.
pub(crate) async fn start_all(server: &Server, token: &str, ids: &[String]) {
    let client = reqwest::Client::new();
    let starters: Vec<_> = ids
        .chunks(ids.len().div_ceil(CLIENTS).max(1))
        .map(|chunk| {
            let (client, base, token, chunk) = (
                client.clone(),
                server.base.clone(),
                token.to_owned(),
                chunk.to_vec(),
            );
            tokio::spawn(async move {
                for id in chunk {
                    gql(&client, &base, &token, START, json!({ "id": id })).await;
                }
            })
        })
        .collect();
    for starter in starters {
        starter.await.unwrap();
    }
}

/// Starts chains of `CHAIN` steps so that `rate` steps per second are offered for
/// `seconds`; returns the server's dispatch latency p50 and p99 (seconds) and the
/// number of steps it measured.
async fn latency(server: &Server, token: &str, rate: u64, seconds: u64) -> (f64, f64, u64) {
    let service = format!("bench-latency-{}", uuid::Uuid::now_v7().simple());
    let executions = (rate * seconds) as usize / CHAIN;
    let ids = create(
        server,
        token,
        &service,
        (executions, 0),
        echo_steps(CHAIN, false),
    )
    .await;
    let client = reqwest::Client::new();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(CHAIN as f64 / rate as f64));
    let mut starts = Vec::new();
    for id in ids {
        ticks.tick().await;
        let (client, base, token) = (client.clone(), server.base.clone(), token.to_owned());
        starts.push(tokio::spawn(async move {
            gql(&client, &base, &token, START, json!({ "id": id })).await;
        }));
    }
    for start in starts {
        start.await.unwrap();
    }
    until_completed(server, token, &service, executions).await;
    let metrics = server_metrics(server).await;
    (
        sample(&metrics, "exechub_step_dispatch_seconds{quantile=\"0.5\"}"),
        sample(&metrics, "exechub_step_dispatch_seconds{quantile=\"0.99\"}"),
        sample(&metrics, "exechub_step_dispatch_seconds_count") as u64,
    )
}

/// The server's Prometheus text.
async fn server_metrics(server: &Server) -> String {
    reqwest::get(format!("{}/metrics", server.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

/// One sample of `metrics` by its full name with labels; NaN when absent.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// How the server's group commit went: transactions, changes per transaction, and
/// the time a transaction took (median, p99).
fn commit_report(metrics: &str) -> String {
    let commits = sample(metrics, "exechub_commit_seconds_count");
    format!(
        "{commits:.0} commits, {:.1} changes per commit, commit p50 {:.1} ms, p99 {:.1} ms",
        sample(metrics, "exechub_commit_batch_size_sum") / commits,
        sample(metrics, "exechub_commit_seconds{quantile=\"0.5\"}") * 1e3,
        sample(metrics, "exechub_commit_seconds{quantile=\"0.99\"}") * 1e3,
    )
}

/// Runs the BullMQ peer (installing its packages on first use); returns its report.
fn bullmq(redis_url: &str, jobs: usize, rate: u64, seconds: u64) -> Value {
    let peer = node_peer("bullmq");
    let output = Command::new("node")
        .arg("bench.mjs")
        .args(["--redis", redis_url])
        .args(["--jobs", &jobs.to_string()])
        .args(["--rate", &rate.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .current_dir(&peer)
        .output()
        .expect("node bench.mjs");
    assert!(
        output.status.success(),
        "BullMQ peer: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("BullMQ peer's JSON report")
}
