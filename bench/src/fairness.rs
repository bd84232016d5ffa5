//! Fair share under a backlog: customer A queues a backlog of parallel `echo`
//! steps and starts it, then `probes` other customers each queue one step, one every
//! `every` ms while the backlog drains. Each probe's wait (its execution created →
//! its step started, both as the server recorded them) is what one customer's
//! backlog costs another; run it with a share per customer (`--limits`) and without.

use std::time::Duration;

use serde_json::json;

use crate::server::{Deployment, create_execution, gql};
use crate::steps::{create, echo_steps, start_all, until_completed};

#[derive(clap::Args)]
pub struct FairnessBench {
    #[command(flatten)]
    deployment: Deployment,
    /// A's executions in the backlog.
    #[arg(long, default_value_t = 20)]
    executions: usize,
    /// Parallel `echo` steps per execution of A's.
    #[arg(long, default_value_t = 500)]
    steps: usize,
    /// Other customers' single steps queued while A's backlog drains.
    #[arg(long, default_value_t = 40)]
    probes: usize,
    /// Milliseconds between two probes.
    #[arg(long, default_value_t = 25)]
    every: u64,
}

const TIMES: &str = "query($id: ID!) { execution(id: $id) { createdAt steps { startedAt } } }";

pub async fn run(bench: FairnessBench) {
    let (server, token) = bench.deployment.launch().await;
    let service = format!("bench-fairness-{}", uuid::Uuid::now_v7().simple());
    let steps = echo_steps(bench.steps, true);
    // One customer (`customer-0`) for the whole backlog.
    let backlog = create(&server, &token, &service, (bench.executions, 1), steps).await;
    start_all(&server, &token, &backlog).await;
    let client = reqwest::Client::new();
    let mut probes = Vec::new();
    for index in 0..bench.probes {
        let input = json!({
            "orderId": "probe", "serviceId": service, "customerId": format!("b-{index}"),
            "autoStart": true, "steps": echo_steps(1, true),
        });
        probes.push(create_execution(&client, &server.base, &token, input).await);
        tokio::time::sleep(Duration::from_millis(bench.every)).await;
    }
    until_completed(&server, &token, &service, bench.executions + bench.probes).await;
    let mut waits = Vec::new();
    for id in &probes {
        let times = gql(&client, &server.base, &token, TIMES, json!({ "id": id })).await;
        let execution = &times["data"]["execution"];
        let parse = |value: &serde_json::Value| {
            chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap()
        };
        let wait = parse(&execution["steps"][0]["startedAt"]) - parse(&execution["createdAt"]);
        waits.push(wait.num_milliseconds());
    }
    waits.sort_unstable();
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    println!(
        "exechub {}{}: {} probes under A's backlog of {} steps: wait p50 {} ms, p99 {} ms, max {} ms",
        bench.deployment.name(),
        if bench.deployment.limits.is_some() {
            " with limits"
        } else {
            ""
        },
        waits.len(),
        bench.executions * bench.steps,
        at(0.5),
        at(0.99),
        waits.last().copied().unwrap_or_default(),
    );
}
