//! Reading an execution as the scheduler tests look at it, and waiting for it to
//! reach a state: shared by the suites that run steps.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::TestServer;

pub const EXECUTION: &str = r#"
query($id: ID!) {
  execution(id: $id) {
    id status waitingOn
    result { success summary output }
    error { code message recoverable retryCount }
    metrics { retries retryDurationMs stepsCompleted }
    steps { id status retries output startedAt completedAt waitingOn error { code recoverable } }
    logs(first: 50) { nodes { level message step } }
    events(first: 200) { sequence type status actor step { id status } }
  }
}"#;

pub async fn execution(server: &TestServer, id: &str) -> Value {
    server.gql(EXECUTION, json!({ "id": id })).await["execution"].clone()
}

/// Polls the execution until `done` holds, for at most `limit`.
pub async fn wait_until(
    server: &TestServer,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let current = execution(server, id).await;
        if done(&current) {
            return current;
        }
        assert!(
            start.elapsed() < limit,
            "gave up waiting; execution is now {current:#}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn wait_status(server: &TestServer, id: &str, status: &str) -> Value {
    wait_until(server, id, Duration::from_secs(30), |e| {
        e["status"] == status
    })
    .await
}

pub fn step<'a>(execution: &'a Value, id: &str) -> &'a Value {
    execution["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {execution:#}"))
}

pub fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

pub fn event_types(execution: &Value) -> Vec<String> {
    execution["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}
