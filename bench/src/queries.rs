//! The analyst's queries over a seeded history (`exechub seed`): the filtered list of
//! the query issue, `executionStats` by service per day over 30 days, and
//! `errorDistribution`, one request at a time (latency percentiles); with `--peer`,
//! the same filtered list through PostGraphile with the connection-filter plugin on
//! the same Postgres database.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use exechub::domain::sample::SERVICES;

use crate::server::{free_port, gql, node_peer, percentile, spawn_server, token};

#[derive(clap::Args)]
pub struct QueriesBench {
    /// The seeded database (SQLite or Postgres URL).
    #[arg(long)]
    database_url: String,
    /// Measured requests per query (after 10 warm-up requests).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Also run the filtered list through PostGraphile (Postgres only).
    #[arg(long)]
    peer: bool,
}

/// "Failed or cancelled URGENT executions of service X tagged production, created
/// last week, that cost more than $0.10, newest first, 50 at a time."
const LIST: &str = "query($service: ID!, $from: DateTime!, $to: DateTime!) {
  executions(first: 50, orderBy: [{ field: CREATED_AT, direction: DESC }], filter: {
    status: { in: [FAILED, CANCELLED] }, priority: { eq: URGENT }, serviceId: { eq: $service },
    tags: { hasAll: [\"production\"] }, createdAt: { gte: $from, lt: $to }, cost: { gt: 0.10 } }) {
    edges { cursor node { id status metrics { cost } createdAt } }
    pageInfo { hasNextPage endCursor } } }";

const PEER_LIST: &str = "query($service: String!, $from: BigInt!, $to: BigInt!) {
  allExecutions(first: 50, orderBy: [CREATED_AT_DESC, ID_DESC], filter: {
    status: { in: [\"FAILED\", \"CANCELLED\"] }, priority: { equalTo: 3 }, serviceId: { equalTo: $service },
    tags: { contains: [\"production\"] }, createdAt: { greaterThanOrEqualTo: $from, lessThan: $to },
    cost: { greaterThan: 0.10 } }) {
    edges { cursor node { id status cost createdAt } }
    pageInfo { hasNextPage endCursor } } }";

/// The analyst's chart (what the dashboard asks for), and then every field: the SQL
/// computes only the selected aggregates.
const STATS: [(&str, &str); 2] = [
    (
        "executionStats(groupBy: [SERVICE], bucket: DAY), 30 days",
        "keys { value } bucketStart total successRate totalCost duration { p50Ms p95Ms }",
    ),
    (
        "the same, every field",
        "keys { dimension value } bucketStart total completed failed cancelled active
         successRate byStatus { status count } totalCost avgCost totalTokens totalApiCalls
         totalRetries duration { avgMs p50Ms p90Ms p95Ms p99Ms minMs maxMs }",
    ),
];

/// A page of executions with what hangs off each: read by the DataLoaders.
const PAGE_WITH_PARTS: &str = "{ executions(first: 50) { nodes { id steps { id status durationMs }
    latestCheckpoint { id } webhooks { id } } } }";

const ERRORS: &str = "{ errorDistribution { code count recoverable sampleMessage lastSeenAt } }";

/// Sends `requests` bodies (after 10 warm-up ones) one at a time; prints percentiles.
async fn measure(
    label: &str,
    url: &str,
    token: Option<&str>,
    requests: usize,
    body: impl Fn(usize) -> Value,
) {
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    let mut rows = 0;
    for i in 0..requests + 10 {
        let started = Instant::now();
        let mut request = client.post(url).json(&body(i));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response: Value = request
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON");
        let took = started.elapsed();
        assert!(response.get("errors").is_none(), "{label}: {response}");
        if i >= 10 {
            latencies.push(took);
            rows += count_rows(&response["data"]);
        }
    }
    latencies.sort();
    println!(
        "{label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({requests} requests, {:.1} rows each)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies[latencies.len() - 1]),
        rows as f64 / requests as f64,
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Edges or nodes of a connection, or the length of a list: what an answer carried.
fn count_rows(data: &Value) -> usize {
    let (_, answer) = data.as_object().unwrap().iter().next().unwrap();
    answer["edges"]
        .as_array()
        .or(answer["nodes"].as_array())
        .or(answer.as_array())
        .map_or(0, Vec::len)
}

/// The analyst's week: a week ending a week ago.
fn last_week() -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
    let now = Utc::now();
    (
        now - chrono::Duration::days(14),
        now - chrono::Duration::days(7),
    )
}

fn spawn_postgraphile(database_url: &str) -> (Child, String) {
    let peer = node_peer("postgraphile");
    let port = free_port();
    let child = Command::new("node")
        .arg(peer.join("server.mjs"))
        .args([database_url, &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("node");
    (child, format!("http://127.0.0.1:{port}/graphql"))
}

/// The page with parts under each DataLoader delay, one server each, side by side.
async fn loader_delays(bench: &QueriesBench) {
    for delay in ["0ms", "1ms", "5ms"] {
        let env = [
            ("EXECHUB_NO_WORKERS", "true"),
            ("EXECHUB_DATALOADER_DELAY", delay),
        ];
        let (server, _) = spawn_server(Some(&bench.database_url), &env).await;
        let url = format!("{}/graphql", server.base);
        let page = |_| json!({ "query": PAGE_WITH_PARTS });
        let label = format!("page of 50 with steps, checkpoint, webhooks (loader delay {delay})");
        measure(&label, &url, Some(&token()), bench.requests / 2, page).await;
    }
}

pub async fn run(bench: QueriesBench) {
    loader_delays(&bench).await;
    let (server, _) =
        spawn_server(Some(&bench.database_url), &[("EXECHUB_NO_WORKERS", "true")]).await;
    let token = token();
    let url = format!("{}/graphql", server.base);
    let total = gql(
        &reqwest::Client::new(),
        &server.base,
        &token,
        "{ executions(first: 0) { totalCount } }",
        json!({}),
    )
    .await;
    println!(
        "{} executions in {}",
        total["data"]["executions"]["totalCount"],
        bench
            .database_url
            .split('@')
            .next_back()
            .unwrap_or_default()
    );
    let (from, to) = last_week();
    let list = |i: usize| json!({ "query": LIST, "variables": { "service": SERVICES[i % SERVICES.len()], "from": from, "to": to } });
    measure(
        "filtered list (exechub)",
        &url,
        Some(&token),
        bench.requests,
        list,
    )
    .await;
    if bench.peer {
        let (mut peer, peer_url) = spawn_postgraphile(&bench.database_url);
        wait_for(&peer_url).await;
        let peer_list = |i: usize| {
            json!({ "query": PEER_LIST, "variables": {
            "service": SERVICES[i % SERVICES.len()],
            "from": from.timestamp_millis().to_string(), "to": to.timestamp_millis().to_string() } })
        };
        measure(
            "filtered list (PostGraphile + connection-filter)",
            &peer_url,
            None,
            bench.requests,
            peer_list,
        )
        .await;
        let _ = peer.kill();
        let _ = peer.wait();
    }
    let month_ago = Utc::now() - chrono::Duration::days(30);
    for (label, fields) in STATS {
        let query = format!(
            "query($from: DateTime!) {{ executionStats(groupBy: [SERVICE], bucket: DAY, \
               filter: {{ createdAt: {{ gte: $from }} }}, limit: 1000) {{ {fields} }} }}"
        );
        let stats = |_| json!({ "query": query, "variables": { "from": month_ago } });
        measure(label, &url, Some(&token), bench.requests / 10, stats).await;
    }
    let errors = |_| json!({ "query": ERRORS });
    measure(
        "errorDistribution",
        &url,
        Some(&token),
        bench.requests / 10,
        errors,
    )
    .await;
}

/// Waits until a GraphQL server at `url` answers.
async fn wait_for(url: &str) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .post(url)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{url} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
