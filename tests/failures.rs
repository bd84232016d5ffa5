//! One failure semantics, whoever reports it: a client's `failExecution` and
//! `failStep` are retried under the execution's retry policy as a worker's failure
//! is (FAILED `willRetry` → RETRY → STARTING → RUNNING, with the ERROR and WARN log
//! lines); a claim whose agent goes silent is a failed attempt ("worker lost",
//! counted) and the execution ends FAILED once the policy is spent; and the events a
//! claim causes name the claimer.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::TestServer;
use support::runs::{execution, step, wait_until};

const POLICY: &str =
    r#"{ "maxRetries": 3, "backoff": "EXPONENTIAL", "initialDelayMs": 200, "jitter": false }"#;

fn policy() -> Value {
    serde_json::from_str(POLICY).unwrap()
}

fn log_lines(execution: &Value) -> Vec<(String, String)> {
    execution["logs"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let level = l["level"].as_str().unwrap().to_owned();
            (level, l["message"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn a_clients_recoverable_failure_is_retried(server: &TestServer) {
    let id = server
        .create(
            json!({ "orderId": "o", "serviceId": "s", "autoStart": true, "retryPolicy": policy(),
            "steps": [{ "id": "a", "name": "A" }] }),
        )
        .await;
    let failed = server
        .gql(
            r#"mutation($id: ID!) { failExecution(id: $id, error: { code: "API_TIMEOUT", message: "upstream slow", recoverable: true }) { status } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(failed["failExecution"]["status"], "FAILED");
    let running = wait_until(server, &id, Duration::from_secs(10), |e| {
        e["status"] == "RUNNING" && e["metrics"]["retries"] == 1
    })
    .await;
    let lines = log_lines(&running);
    assert!(
        lines.contains(&("ERROR".into(), "API_TIMEOUT: upstream slow".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("WARN".into(), "Retrying after 200ms (attempt 1/3)".into())),
        "{lines:?}"
    );
    let walk: Vec<&str> = running["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .filter(|t| {
            matches!(
                *t,
                "EXECUTION_FAILED" | "EXECUTION_RETRY" | "EXECUTION_STARTED"
            )
        })
        .collect();
    assert_eq!(
        walk,
        [
            "EXECUTION_STARTED",
            "EXECUTION_FAILED",
            "EXECUTION_RETRY",
            "EXECUTION_STARTED"
        ]
    );

    // A step a client drives fails recoverably: the step runs again.
    server.start_step(&id, "a").await;
    server
        .gql(
            r#"mutation($id: ID!) { failStep(executionId: $id, stepId: "a", error: { code: "API_TIMEOUT", message: "again", recoverable: true }) { status } }"#,
            json!({ "id": id }),
        )
        .await;
    let again = wait_until(server, &id, Duration::from_secs(10), |e| {
        e["status"] == "RUNNING"
            && step(e, "a")["status"] == "PENDING"
            && step(e, "a")["retries"] == 1
    })
    .await;
    assert_eq!(again["metrics"]["retries"], 2, "{again:#}");

    // A code the policy does not accept fails it for good.
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true,
            "retryPolicy": { "maxRetries": 3, "retryableErrors": ["API_TIMEOUT"] } }))
        .await;
    let failed = server
        .gql(
            r#"mutation($id: ID!) { failExecution(id: $id, error: { code: "BAD_INPUT", message: "no", recoverable: true }) { status } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(failed["failExecution"]["status"], "FAILED");
    assert_eq!(will_retry(server, &id).await, [false], "failed for good");
}

/// `willRetry` of each EXECUTION_FAILED event: whether a retry was scheduled.
async fn will_retry(server: &TestServer, id: &str) -> Vec<bool> {
    let query = "query($id: ID!) { execution(id: $id) { events(first: 200) { type willRetry } } }";
    let body = server.gql(query, json!({ "id": id })).await;
    body["execution"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "EXECUTION_FAILED")
        .map(|e| e["willRetry"].as_bool().unwrap())
        .collect()
}

const CLAIM: &str = r#"
mutation($input: ClaimStepInput!) { claimStep(input: $input) { token attempt } }"#;

async fn a_silent_claimer_loses_attempts_until_the_policy_is_spent(server: &TestServer) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true,
            "retryPolicy": { "maxRetries": 1, "initialDelayMs": 100, "jitter": false },
            "steps": [{ "id": "a", "name": "A" }] }))
        .await;
    let agent = server.token(exechub::auth::Role::Agent, None);
    for attempt in 1..=2 {
        wait_until(server, &id, Duration::from_secs(15), |e| {
            e["status"] == "RUNNING" && step(e, "a")["status"] == "PENDING"
        })
        .await;
        let claim = server
            .gql_as(Some(&agent), CLAIM, json!({ "input": { "leaseMs": 1000 } }))
            .await;
        assert_eq!(claim["data"]["claimStep"]["attempt"], attempt, "{claim}");
    }
    wait_until(server, &id, Duration::from_secs(15), |e| {
        e["status"] == "FAILED"
            && e["metrics"]["retries"] == 1
            && step(e, "a")["status"] == "FAILED"
    })
    .await;
    assert_eq!(
        will_retry(server, &id).await,
        [true, false],
        "no retry is left"
    );
    let failed = execution(server, &id).await;
    assert_eq!(failed["error"]["code"], "SYSTEM_ERROR");
    assert_eq!(failed["error"]["message"], "worker lost");
    let events = failed["events"].as_array().unwrap();
    let step_failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "STEP_FAILED")
        .collect();
    assert_eq!(
        step_failed.len(),
        2,
        "each lost attempt is a STEP_FAILED: {failed:#}"
    );
    let started: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "STEP_STARTED")
        .collect();
    assert_eq!(started.len(), 2);
    for event in started {
        assert_eq!(
            event["actor"], "agent-none",
            "the claimer started it: {event}"
        );
    }
}

backend_tests!(
    a_clients_recoverable_failure_is_retried,
    a_silent_claimer_loses_attempts_until_the_policy_is_spent
);
