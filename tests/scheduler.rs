//! The scheduler end to end: executions whose steps have handlers run by themselves
//! (DAG order, real parallelism, priority, retries with backoff, timeouts, pause,
//! resume, cancel, `http` steps against a real local server) and external steps are
//! pulled with `claimStep` under a lease. SQLite runs with the embedded queue;
//! Postgres with Redis when `EXECHUB_TEST_REDIS_URL` is set.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::runs::{event_types, execution, step, time, wait_status, wait_until};
use support::{Backend, Options, TestServer, error_code};

async fn dag_runs_in_order_and_in_parallel(server: &TestServer) {
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "dag", "autoStart": true,
            "steps": [
                { "id": "a", "name": "A", "handler": { "kind": "echo" }, "input": { "x": 1 } },
                { "id": "b", "name": "B", "dependsOn": ["a"], "handler": { "kind": "delay", "config": { "ms": 400 } } },
                { "id": "c", "name": "C", "dependsOn": ["a"], "handler": { "kind": "delay", "config": { "ms": 400 } } },
                { "id": "d", "name": "D", "dependsOn": ["b", "c"], "handler": { "kind": "echo" }, "input": "done" }
            ]
        }))
        .await;
    let done = wait_status(server, &id, "COMPLETED").await;
    assert_eq!(done["result"]["success"], true);
    assert_eq!(done["result"]["output"]["a"], json!({ "x": 1 }));
    assert_eq!(done["result"]["output"]["d"], "done");
    assert_eq!(done["metrics"]["stepsCompleted"], 4);
    let (a, b, c, d) = (
        step(&done, "a"),
        step(&done, "b"),
        step(&done, "c"),
        step(&done, "d"),
    );
    assert!(time(&b["startedAt"]) >= time(&a["completedAt"]));
    assert!(time(&c["startedAt"]) >= time(&a["completedAt"]));
    assert!(time(&d["startedAt"]) >= time(&b["completedAt"]).max(time(&c["completedAt"])));
    // b and c overlap: they ran at the same time, not one after the other.
    assert!(time(&b["startedAt"]) < time(&c["completedAt"]));
    assert!(time(&c["startedAt"]) < time(&b["completedAt"]));
    let types = event_types(&done);
    assert_eq!(types.first().map(String::as_str), Some("EXECUTION_CREATED"));
    assert_eq!(
        types.last().map(String::as_str),
        Some("EXECUTION_COMPLETED")
    );
    assert_eq!(types.iter().filter(|t| *t == "STEP_COMPLETED").count(), 4);
    assert_eq!(
        types.iter().filter(|t| *t == "EXECUTION_STARTED").count(),
        1
    );
    let sequences: Vec<i64> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sequences,
        (1..=sequences.len() as i64).collect::<Vec<_>>(),
        "gapless"
    );
}

/// The audit trail accounts for every event exactly once, also when a shared
/// transaction folds several scheduler commands of one execution into one row: the
/// rows' sequence ranges follow each other without gap or overlap, a folded row
/// counts its commands, and its progress is one EXECUTION_PROGRESS event.
async fn audit_rows_cover_every_event_once(server: &TestServer) {
    let steps: Vec<Value> = (0..12)
        .map(|i| json!({ "id": format!("s{i}"), "name": "S", "dependsOn": [], "handler": { "kind": "echo" } }))
        .collect();
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "audit", "autoStart": true, "steps": steps }))
        .await;
    wait_status(server, &id, "COMPLETED").await;
    let events = server.stored_events(&id).await;
    let last = events.last().unwrap().0;
    let mut ranges = Vec::new();
    let mut commands = 0;
    for (subject, action, detail) in server.audit_trail(&id).await {
        if let Some(range) = detail["sequences"].as_array() {
            ranges.push((range[0].as_i64().unwrap(), range[1].as_i64().unwrap()));
        }
        if subject == "scheduler" {
            let distinct = action.split(',').count() as u64;
            let count = detail["commands"].as_u64().unwrap_or(1);
            assert!(count >= distinct, "{action}: {detail}");
            assert!(count > 1 || distinct == 1, "{action}: {detail}");
            commands += count;
        }
    }
    ranges.sort();
    let mut next = 1;
    for (first, last) in &ranges {
        assert_eq!(*first, next, "ranges {ranges:?}");
        next = last + 1;
    }
    assert_eq!(next, last + 1, "ranges {ranges:?}");
    assert!(commands >= 12, "a completion per step at least: {commands}");
    for (first, last) in ranges {
        let progress = (events.iter()).filter(|(sequence, kind)| {
            (first..=last).contains(sequence) && kind == "EXECUTION_PROGRESS"
        });
        assert!(progress.count() <= 1, "{first}..={last}: {events:?}");
    }
}

/// A local HTTP endpoint that answers with `statuses` in turn (then 200), recording
/// when each call came.
async fn flaky_endpoint(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorded = calls.clone();
    let app = axum::Router::new().route(
        "/work",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let calls = recorded.clone();
            let statuses = statuses.clone();
            async move {
                let n = {
                    let mut calls = calls.lock().unwrap();
                    calls.push(Instant::now());
                    calls.len() - 1
                };
                let status = statuses.get(n).copied().unwrap_or(200);
                (
                    StatusCode::from_u16(status).unwrap(),
                    axum::Json(json!({ "echo": body, "call": n + 1 })),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/work"), calls)
}

async fn http_step_retries_with_linear_backoff(server: &TestServer) {
    let (url, calls) = flaky_endpoint(vec![500, 503]).await;
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "http", "autoStart": true,
            "retryPolicy": { "maxRetries": 3, "backoff": "LINEAR", "initialDelayMs": 300, "jitter": false },
            "steps": [{ "id": "call", "name": "Call", "handler": { "kind": "http", "config": { "url": url } }, "input": { "q": 7 } }]
        }))
        .await;
    let done = wait_status(server, &id, "COMPLETED").await;
    assert_eq!(
        done["result"]["output"]["call"],
        json!({ "echo": { "q": 7 }, "call": 3 })
    );
    assert_eq!(done["metrics"]["retries"], 2);
    assert!(
        done["metrics"]["retryDurationMs"].as_i64().unwrap() >= 900,
        "{done:#}"
    );
    assert_eq!(step(&done, "call")["retries"], 2);
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    let first_wait = calls[1] - calls[0];
    let second_wait = calls[2] - calls[1];
    assert!(
        first_wait >= Duration::from_millis(300) && first_wait < Duration::from_millis(2_000),
        "{first_wait:?}"
    );
    assert!(
        second_wait >= Duration::from_millis(600) && second_wait < Duration::from_millis(2_300),
        "{second_wait:?}"
    );
    let warnings: Vec<&str> = done["logs"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["level"] == "WARN")
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        [
            "Retrying after 300ms (attempt 1/3)",
            "Retrying after 600ms (attempt 2/3)"
        ]
    );
    let types = event_types(&done);
    let walk: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| matches!(*t, "EXECUTION_FAILED" | "EXECUTION_RETRY"))
        .collect();
    assert_eq!(
        walk,
        [
            "EXECUTION_FAILED",
            "EXECUTION_RETRY",
            "EXECUTION_FAILED",
            "EXECUTION_RETRY"
        ]
    );
}

async fn client_errors_are_not_retried(server: &TestServer) {
    let (url, calls) = flaky_endpoint(vec![404]).await;
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "http", "autoStart": true,
            "retryPolicy": { "maxRetries": 3, "initialDelayMs": 50 },
            "steps": [
                { "id": "call", "name": "Call", "handler": { "kind": "http", "config": { "url": url } } },
                { "id": "after", "name": "After", "handler": { "kind": "echo" } }
            ]
        }))
        .await;
    let failed = wait_status(server, &id, "FAILED").await;
    assert_eq!(failed["error"]["code"], "API_ERROR");
    assert_eq!(failed["error"]["recoverable"], false);
    assert_eq!(step(&failed, "call")["status"], "FAILED");
    assert_eq!(step(&failed, "after")["status"], "PENDING");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(calls.lock().unwrap().len(), 1);
    assert_eq!(execution(server, &id).await["status"], "FAILED");
}

async fn refused_connections_and_timeouts_are_recoverable(server: &TestServer) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "http", "autoStart": true,
            "steps": [{ "id": "call", "name": "Call", "handler": { "kind": "http", "config": { "url": format!("http://{closed}/") } } }]
        }))
        .await;
    let failed = wait_status(server, &id, "FAILED").await;
    assert_eq!(failed["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(failed["error"]["recoverable"], true);

    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "slow", "autoStart": true,
            "steps": [{ "id": "wait", "name": "Wait", "timeoutMs": 1000, "handler": { "kind": "delay", "config": { "ms": 5000 } } }]
        }))
        .await;
    let started = Instant::now();
    let failed = wait_status(server, &id, "FAILED").await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the step was cut at its timeout"
    );
    assert_eq!(failed["error"]["code"], "TIMEOUT");
    assert_eq!(step(&failed, "wait")["error"]["code"], "TIMEOUT");
    assert_eq!(step(&failed, "wait")["error"]["recoverable"], true);
}

async fn executions_time_out(server: &TestServer) {
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "slow", "autoStart": true, "timeoutMs": 1000,
            "steps": [{ "id": "wait", "name": "Wait", "handler": { "kind": "delay", "config": { "ms": 10000 } } }]
        }))
        .await;
    let started = Instant::now();
    let failed = wait_status(server, &id, "FAILED").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(failed["error"]["code"], "TIMEOUT");
    assert_eq!(
        step(&failed, "wait")["status"],
        "PENDING",
        "the running step was interrupted"
    );
}

async fn pause_stops_dispatch_and_resume_continues(server: &TestServer) {
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "pausable", "autoStart": true,
            "steps": [
                { "id": "long", "name": "Long", "handler": { "kind": "delay", "config": { "ms": 1500 } } },
                { "id": "next", "name": "Next", "handler": { "kind": "echo" } }
            ]
        }))
        .await;
    wait_until(server, &id, Duration::from_secs(10), |e| {
        step(e, "long")["status"] == "RUNNING"
    })
    .await;
    let paused = server
        .gql(
            "mutation($id: ID!) { pauseExecution(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(paused["pauseExecution"]["status"], "PAUSED", "{paused}");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let still = execution(server, &id).await;
    assert_eq!(still["status"], "PAUSED");
    assert_eq!(
        step(&still, "long")["status"],
        "PENDING",
        "interrupted and back to PENDING"
    );
    assert_eq!(
        step(&still, "next")["status"],
        "PENDING",
        "nothing dispatched while paused"
    );
    let resumed = server
        .gql(
            "mutation($id: ID!) { resumeExecution(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(resumed["resumeExecution"]["status"], "RUNNING", "{resumed}");
    let done = wait_status(server, &id, "COMPLETED").await;
    assert_eq!(step(&done, "long")["status"], "COMPLETED");
    assert_eq!(step(&done, "next")["status"], "COMPLETED");
}

async fn cancel_interrupts_and_nothing_runs_after(server: &TestServer) {
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "cancellable", "autoStart": true,
            "steps": [
                { "id": "long", "name": "Long", "handler": { "kind": "delay", "config": { "ms": 1500 } } },
                { "id": "next", "name": "Next", "handler": { "kind": "echo" } }
            ]
        }))
        .await;
    wait_until(server, &id, Duration::from_secs(10), |e| {
        step(e, "long")["status"] == "RUNNING"
    })
    .await;
    let cancelled = server
        .gql(
            "mutation($id: ID!) { cancelExecution(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        cancelled["cancelExecution"]["status"], "CANCELLED",
        "{cancelled}"
    );
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let after = execution(server, &id).await;
    assert_eq!(after["status"], "CANCELLED");
    assert_eq!(step(&after, "long")["status"], "PENDING");
    assert_eq!(step(&after, "next")["status"], "PENDING");
    assert!(
        !event_types(&after).iter().any(|t| t == "STEP_COMPLETED"),
        "{after:#}"
    );
}

const CLAIM: &str = r#"
mutation($input: ClaimStepInput!) {
  claimStep(input: $input) { token attempt leaseExpiresAt step { id status } execution { id status } }
}"#;

async fn external_steps_are_claimed_under_a_lease(server: &TestServer) {
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "review", "autoStart": true,
            "steps": [
                { "id": "write", "name": "Write", "assignee": { "type": "AI_AGENT", "capabilities": ["writing"] } },
                { "id": "review", "name": "Review", "assignee": { "type": "HUMAN" } }
            ]
        }))
        .await;
    let agent = server.token(exechub::auth::Role::Agent, None);
    let claim = |input: Value| {
        let agent = agent.clone();
        async move {
            server
                .gql_as(Some(&agent), CLAIM, json!({ "input": input }))
                .await
        }
    };
    // The step needs a capability this claimer lacks, and a human is not an agent.
    let none = claim(json!({ "assigneeType": "AI_AGENT" })).await;
    assert_eq!(none["data"]["claimStep"], Value::Null, "{none}");
    let none = claim(json!({ "assigneeType": "HUMAN", "capabilities": ["writing"] })).await;
    assert_eq!(none["data"]["claimStep"], Value::Null, "{none}");

    let first =
        claim(json!({ "assigneeType": "AI_AGENT", "capabilities": ["writing"], "leaseMs": 1000 }))
            .await;
    let first = &first["data"]["claimStep"];
    assert_eq!(first["step"]["id"], "write", "{first}");
    assert_eq!(first["step"]["status"], "RUNNING");
    assert_eq!(first["attempt"], 1);
    let stale_token = first["token"].as_str().unwrap().to_owned();

    // The lease runs out: the step is offered again, and the old token is refused.
    wait_until(server, &id, Duration::from_secs(10), |e| {
        step(e, "write")["status"] == "PENDING"
    })
    .await;
    let second = claim(json!({ "assigneeType": "AI_AGENT", "capabilities": ["writing"] })).await;
    let second = &second["data"]["claimStep"];
    assert_eq!(second["step"]["id"], "write", "{second}");
    assert_eq!(second["attempt"], 2);
    let token = second["token"].as_str().unwrap().to_owned();
    let late = server
        .gql_as(
            Some(&agent),
            "mutation($t: ID!) { completeClaimedStep(token: $t) { id } }",
            json!({ "t": stale_token }),
        )
        .await;
    assert_eq!(error_code(&late).as_deref(), Some("CONFLICT"), "{late}");

    let beat = server
        .gql_as(Some(&agent), "mutation($t: ID!) { heartbeatStep(token: $t, progress: 25, leaseMs: 60000) { leaseExpiresAt } }", json!({ "t": token }))
        .await;
    assert!(
        beat["data"]["heartbeatStep"]["leaseExpiresAt"].is_string(),
        "{beat}"
    );
    let done = server
        .gql_as(Some(&agent), "mutation($t: ID!) { completeClaimedStep(token: $t, output: {text: \"hi\"}) { id status output } }", json!({ "t": token }))
        .await;
    assert_eq!(
        done["data"]["completeClaimedStep"]["status"], "COMPLETED",
        "{done}"
    );
    let again = server
        .gql_as(
            Some(&agent),
            "mutation($t: ID!) { completeClaimedStep(token: $t) { id } }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(
        error_code(&again).as_deref(),
        Some("CONFLICT"),
        "a claim reports once: {again}"
    );
    let garbage = server
        .gql_as(
            Some(&agent),
            "mutation { heartbeatStep(token: \"nope\") { attempt } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&garbage).as_deref(),
        Some("BAD_USER_INPUT"),
        "{garbage}"
    );

    // The human step is next; a person claims it and reports it failed for good.
    let human = claim(json!({ "assigneeType": "HUMAN" })).await;
    let human_token = human["data"]["claimStep"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = server
        .gql_as(
            Some(&agent),
            "mutation($t: ID!) { failClaimedStep(token: $t, error: {code: \"VALIDATION_ERROR\", message: \"rejected\"}) { status } }",
            json!({ "t": human_token }),
        )
        .await;
    assert_eq!(
        failed["data"]["failClaimedStep"]["status"], "FAILED",
        "{failed}"
    );
    let after = execution(server, &id).await;
    assert_eq!(after["status"], "FAILED");
    assert_eq!(after["error"]["code"], "VALIDATION_ERROR");
}

backend_tests!(
    dag_runs_in_order_and_in_parallel,
    audit_rows_cover_every_event_once,
    http_step_retries_with_linear_backoff,
    client_errors_are_not_retried,
    refused_connections_and_timeouts_are_recoverable,
    executions_time_out,
    pause_stops_dispatch_and_resume_continues,
    cancel_interrupts_and_nothing_runs_after,
    external_steps_are_claimed_under_a_lease,
);

/// A RUNNING execution records a checkpoint every checkpoint interval, saying where
/// it stands and what its finished steps returned; none once it has ended.
async fn periodic_checkpoints(backend: Backend) {
    let mut options = Options::default();
    options.scheduler.checkpoint_interval = Duration::from_secs(1);
    let server = TestServer::start_with(backend, options).await;
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "checkpointed", "autoStart": true,
            "steps": [
                { "id": "first", "name": "First", "handler": { "kind": "echo" }, "input": { "n": 1 } },
                { "id": "long", "name": "Long", "handler": { "kind": "delay", "config": { "ms": 3500 } } }
            ]
        }))
        .await;
    wait_status(&server, &id, "COMPLETED").await;
    let query = "query($id: ID!) { execution(id: $id) { checkpoints { step state metadata } } }";
    let checkpoints = |execution: &Value| -> Vec<Value> {
        execution["execution"]["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["metadata"]["reason"] == "interval")
            .cloned()
            .collect()
    };
    let recorded = checkpoints(&server.gql(query, json!({ "id": id })).await);
    assert!(
        (2..=4).contains(&recorded.len()),
        "one checkpoint a second during a 3.5 s step: {recorded:#?}"
    );
    for checkpoint in &recorded {
        assert_eq!(checkpoint["step"], "long");
        assert_eq!(checkpoint["state"]["currentStep"], "long");
        assert_eq!(checkpoint["state"]["results"]["first"], json!({ "n": 1 }));
        assert_eq!(checkpoint["state"]["pendingSteps"], json!(["long"]));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = checkpoints(&server.gql(query, json!({ "id": id })).await);
    assert_eq!(
        later.len(),
        recorded.len(),
        "no checkpoints after completion"
    );
}

backend_suites!(periodic_checkpoints);
