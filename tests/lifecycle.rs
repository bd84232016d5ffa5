//! An execution's whole life through the API: create with steps, start, drive steps,
//! logs, metrics, progress, checkpoints, pause and resume, complete — and read every
//! part back, including the gapless event sequence.

mod support;

use serde_json::{Value, json};
use support::{TestServer, error_code};

const EXECUTION: &str = r#"
query($id: ID!) {
  execution(id: $id) {
    id status progress priority tags customerId
    result { success summary output }
    metrics { startedAt completedAt durationMs tokensUsed cost apiCalls apiCallsByService
              stepsCompleted stepsTotal stepDurations qualityScore retries }
    steps { id status dependsOn output startedAt completedAt durationMs attempt }
    logs(first: 10) { totalCount nodes { level message step } pageInfo { hasNextPage endCursor } }
    checkpoints { step state }
    latestCheckpoint { state }
    events(first: 100) { sequence type status progress actor reason step { id status } }
    metadata { environment version extra startedAt completedAt }
  }
}"#;

async fn whole_lifecycle(server: &TestServer) {
    let id = server
        .create(json!({
            "orderId": "order-1", "serviceId": "summarise", "customerId": "acme",
            "priority": "HIGH", "tags": ["prod", "llm"], "environment": "production",
            "version": "1.2.0", "metadata": { "origin": "test" },
            "steps": [
                { "id": "fetch", "name": "Fetch" },
                { "id": "summarise", "name": "Summarise" },
                { "id": "review", "name": "Review", "dependsOn": [] }
            ]
        }))
        .await;

    let started = server
        .gql(
            "mutation($id: ID!) { startExecution(id: $id) { status metrics { startedAt } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(started["startExecution"]["status"], "RUNNING");
    assert!(started["startExecution"]["metrics"]["startedAt"].is_string());

    // A step whose dependency is not done cannot start.
    let early = server
        .gql_as(
            Some(&server.admin()),
            "mutation($id: ID!) { startStep(executionId: $id, step: { id: \"summarise\" }) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(support::error_code(&early).as_deref(), Some("CONFLICT"));

    let step = server
        .gql(
            "mutation($id: ID!) { startStep(executionId: $id, step: { id: \"fetch\" }) { status attempt } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        step["startStep"],
        json!({ "status": "RUNNING", "attempt": 1 })
    );

    server
        .gql(
            r#"mutation($id: ID!) { completeStep(executionId: $id, stepId: "fetch", output: { pages: 3 },
                 metrics: { tokensUsed: 100, cost: 0.25, apiCalls: 2, apiService: "search" }) { status } }"#,
            json!({ "id": id }),
        )
        .await;
    let logs = server
        .gql(
            r#"mutation($id: ID!) { appendLogs(id: $id, logs: [
                 { message: "fetched", step: "fetch" }, { level: WARN, message: "slow page" }]) { id level } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(logs["appendLogs"].as_array().unwrap().len(), 2);
    server
        .gql(
            r#"mutation($id: ID!) { recordMetrics(id: $id, metrics: { tokensUsed: 50, cost: 0.5,
                 apiCallsByService: { search: 1 }, qualityScore: 0.9 }) { id } }"#,
            json!({ "id": id }),
        )
        .await;

    let paused = server
        .gql(
            r#"mutation($id: ID!) { pauseExecution(id: $id, reason: "lunch") { status latestCheckpoint { state } } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(paused["pauseExecution"]["status"], "PAUSED");
    let state = &paused["pauseExecution"]["latestCheckpoint"]["state"];
    assert_eq!(state["totalSteps"], 3);
    assert_eq!(state["completedSteps"], json!(["fetch"]));
    assert_eq!(state["currentStep"], "summarise");
    assert_eq!(state["results"]["fetch"], json!({ "pages": 3 }));

    server
        .gql(
            "mutation($id: ID!) { resumeExecution(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    server
        .gql(
            r#"mutation($id: ID!) { skipStep(executionId: $id, stepId: "review", reason: "not needed") { status } }"#,
            json!({ "id": id }),
        )
        .await;
    server.start_step(&id, "summarise").await;
    server
        .gql(
            r#"mutation($id: ID!) { completeStep(executionId: $id, stepId: "summarise", output: "done") { status } }"#,
            json!({ "id": id }),
        )
        .await;
    server
        .gql(
            r#"mutation($id: ID!) { createCheckpoint(id: $id, input: { step: "summarise", state: { k: 1 } }) { id } }"#,
            json!({ "id": id }),
        )
        .await;
    let done = server
        .gql(
            r#"mutation($id: ID!) { completeExecution(id: $id, result: { summary: "all good", output: { ok: true } }) { status progress } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        done["completeExecution"],
        json!({ "status": "COMPLETED", "progress": 100.0 })
    );

    let e = server.gql(EXECUTION, json!({ "id": id })).await["execution"].clone();
    assert_eq!(e["priority"], "HIGH");
    assert_eq!(e["tags"], json!(["prod", "llm"]));
    assert_eq!(e["customerId"], "acme");
    assert_eq!(
        e["result"],
        json!({ "success": true, "summary": "all good", "output": { "ok": true } })
    );
    let m = &e["metrics"];
    assert_eq!(m["tokensUsed"], 150);
    assert!((m["cost"].as_f64().unwrap() - 0.75).abs() < 1e-9);
    assert_eq!(m["apiCalls"], 2);
    assert_eq!(m["apiCallsByService"], json!({ "search": 3 }));
    assert_eq!(m["stepsCompleted"], 2);
    assert_eq!(m["stepsTotal"], 3);
    assert_eq!(m["qualityScore"], 0.9);
    assert!(m["stepDurations"]["fetch"].is_number());
    assert!(m["durationMs"].as_i64().unwrap() >= 0);
    assert!(m["completedAt"].is_string());
    let steps: Vec<(&str, &str)> = e["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("fetch", "COMPLETED"),
            ("summarise", "COMPLETED"),
            ("review", "SKIPPED")
        ]
    );
    assert_eq!(e["logs"]["totalCount"], 2);
    assert_eq!(e["logs"]["nodes"][0]["step"], "fetch");
    assert_eq!(e["checkpoints"].as_array().unwrap().len(), 2);
    assert_eq!(e["latestCheckpoint"]["state"], json!({ "k": 1 }));
    assert_eq!(e["metadata"]["environment"], "production");
    assert_eq!(e["metadata"]["extra"], json!({ "origin": "test" }));

    let events = e["events"].as_array().unwrap();
    let sequences: Vec<i64> = events
        .iter()
        .map(|v| v["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sequences,
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "gapless"
    );
    let types: Vec<&str> = events.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "EXECUTION_CREATED",
            "EXECUTION_UPDATED",
            "EXECUTION_STARTED",
            "STEP_STARTED",
            "STEP_COMPLETED",
            "EXECUTION_PROGRESS",
            "LOG_APPENDED",
            "LOG_APPENDED",
            "EXECUTION_UPDATED",
            "CHECKPOINT_CREATED",
            "EXECUTION_PAUSED",
            "EXECUTION_RESUMED",
            "STEP_SKIPPED",
            "EXECUTION_PROGRESS",
            "STEP_STARTED",
            "STEP_COMPLETED",
            "EXECUTION_PROGRESS",
            "CHECKPOINT_CREATED",
            "EXECUTION_COMPLETED",
        ]
    );
    let paused_event = events
        .iter()
        .find(|v| v["type"] == "EXECUTION_PAUSED")
        .unwrap();
    assert_eq!(paused_event["reason"], "lunch");
    assert_eq!(paused_event["status"], "PAUSED");
    assert_eq!(paused_event["actor"], "admin-none");
    let step_event = &events[4];
    assert_eq!(
        step_event["step"],
        json!({ "id": "fetch", "status": "COMPLETED" })
    );

    // Events page with afterSequence.
    let tail = server
        .gql(
            "query($id: ID!) { execution(id: $id) { events(afterSequence: 17, first: 5) { sequence } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        tail["execution"]["events"],
        json!([{ "sequence": 18 }, { "sequence": 19 }])
    );
}

async fn fail_and_retry(server: &TestServer) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true,
                        "steps": [{ "id": "a", "name": "A" }] }))
        .await;
    server.start_step(&id, "a").await;
    let failed = server
        .gql(
            r#"mutation($id: ID!) { failStep(executionId: $id, stepId: "a",
                 error: { code: "API_TIMEOUT", message: "upstream slow", recoverable: true }) { status error { code step recoverable } } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        failed["failStep"],
        json!({ "status": "FAILED", "error": { "code": "API_TIMEOUT", "step": "a", "recoverable": true } })
    );
    // Without a retry policy, a failed step fails the execution for good.
    let failed = server
        .gql(
            r#"query($id: ID!) { execution(id: $id) { status error { code step retryCount } } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        failed["execution"],
        json!({ "status": "FAILED", "error": { "code": "API_TIMEOUT", "step": "a", "retryCount": 0 } })
    );
    let again = server
        .gql_as(
            Some(&server.admin()),
            r#"mutation($id: ID!) { failExecution(id: $id, error: { code: "STEP_FAILED", message: "a failed" }) { status } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        error_code(&again).as_deref(),
        Some("INVALID_TRANSITION"),
        "{again}"
    );
    let retried = server
        .gql(
            "mutation($id: ID!) { retryExecution(id: $id) { status error { code } metrics { retries } steps { status retries } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        retried["retryExecution"],
        json!({ "status": "RUNNING", "error": null, "metrics": { "retries": 1 },
                "steps": [{ "status": "PENDING", "retries": 1 }] })
    );
    let events = server
        .gql(
            "query($id: ID!) { execution(id: $id) { events { type status } } }",
            json!({ "id": id }),
        )
        .await;
    let events = events["execution"]["events"].as_array().unwrap();
    let tail: Vec<Value> = events[events.len() - 4..].to_vec();
    assert_eq!(
        tail,
        vec![
            json!({ "type": "EXECUTION_FAILED", "status": "FAILED" }),
            json!({ "type": "EXECUTION_RETRY", "status": "RETRY" }),
            json!({ "type": "EXECUTION_UPDATED", "status": "STARTING" }),
            json!({ "type": "EXECUTION_STARTED", "status": "RUNNING" }),
        ]
    );
}

async fn steps_discovered_while_running(server: &TestServer) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true }))
        .await;
    let step = server
        .gql(
            r#"mutation($id: ID!) { startStep(executionId: $id, step: { id: "found", name: "Found later", input: { q: 1 } }) { id name index status input } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        step["startStep"],
        json!({ "id": "found", "name": "Found later", "index": 0, "status": "RUNNING", "input": { "q": 1 } })
    );
    let e = server
        .gql(
            "query($id: ID!) { execution(id: $id) { progress metrics { stepsTotal } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        e["execution"],
        json!({ "progress": 0.0, "metrics": { "stepsTotal": 1 } })
    );
}

async fn concurrent_writers_keep_sequences_gapless(server: &TestServer) {
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            server
                .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true }))
                .await,
        );
    }
    // 4 executions × 10 writers, all at once: they share the scheduler's transactions,
    // which apply the writers of one execution one after the other.
    let writes = ids.iter().flat_map(|id| {
        (0..10).map(move |i| {
            server.gql(
                "mutation($id: ID!, $m: String!) { appendLog(id: $id, log: { message: $m }) { id } }",
                json!({ "id": id, "m": format!("line {i}") }),
            )
        })
    });
    futures::future::join_all(writes).await;
    for id in &ids {
        let e = server
            .gql(
                "query($id: ID!) { execution(id: $id) { logs { totalCount } events(first: 500) { sequence } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(e["execution"]["logs"]["totalCount"], 10);
        let sequences: Vec<i64> = e["execution"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["sequence"].as_i64().unwrap())
            .collect();
        assert_eq!(sequences, (1..=13).collect::<Vec<_>>());
        // Writers that shared a transaction still have an audit row each.
        let rows = server.audit_trail(id).await;
        let appended = rows.iter().filter(|(_, action, _)| action == "appendLogs");
        assert_eq!(appended.count(), 10, "{rows:?}");
    }
}

async fn webhooks_are_added_and_removed(server: &TestServer) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s",
            "webhooks": [{ "url": "https://hooks.example.com/a", "events": ["EXECUTION_COMPLETED"], "secret": "s" }] }))
        .await;
    let first = server
        .gql(
            "query($id: ID!) { execution(id: $id) { webhooks { id } } }",
            json!({ "id": id }),
        )
        .await["execution"]["webhooks"][0]["id"]
        .clone();
    let update = "mutation($id: ID!, $input: UpdateExecutionInput!) { updateExecution(id: $id, input: $input) { webhooks { url } } }";
    let data = server
        .gql(update, json!({ "id": id, "input": {
            "removeWebhooks": [first, first],
            "addWebhooks": [{ "url": "https://hooks.example.com/b", "events": ["EXECUTION_FAILED"] }] } }))
        .await;
    assert_eq!(
        data["updateExecution"]["webhooks"],
        json!([{ "url": "https://hooks.example.com/b" }])
    );
}

backend_tests!(
    webhooks_are_added_and_removed,
    whole_lifecycle,
    fail_and_retry,
    steps_discovered_while_running,
    concurrent_writers_keep_sequences_gapless
);
