//! Every operation in `frontend-queries/` runs against a real server with sample
//! variables, in an order that drives executions through their whole lifecycle.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::TestServer;
use support::ws::{TRANSPORT_WS, WsClient};

fn operation(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("frontend-queries");
    let mut text = std::fs::read_to_string(dir.join(format!("{name}.graphql")))
        .unwrap_or_else(|_| panic!("frontend-queries/{name}.graphql"));
    if text.contains("...ExecutionSummary") {
        text.push_str(&std::fs::read_to_string(dir.join("ExecutionFields.graphql")).unwrap());
    }
    text
}

async fn run(
    server: &TestServer,
    used: &mut Vec<&'static str>,
    name: &'static str,
    variables: Value,
) -> Value {
    used.push(name);
    server.gql(&operation(name), variables).await
}

async fn every_operation_runs(server: &TestServer) {
    let mut used = Vec::new();
    run(server, &mut used, "Me", json!({})).await;
    let created = run(server, &mut used, "CreateExecution", json!({ "input": {
        "orderId": "order-1", "serviceId": "translate", "tags": ["demo"],
        "steps": [{ "id": "a", "name": "Fetch" }, { "id": "b", "name": "Translate" }, { "id": "c", "name": "Notify", "dependsOn": [] }],
        "webhooks": [{ "url": "https://hooks.example.com/exechub", "events": ["EXECUTION_COMPLETED"], "secret": "s3cret" }]
    } })).await;
    let id = created["createExecution"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let exec = json!({ "executionId": id });
    let with = |extra: Value| {
        let mut v = exec.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    run(
        server,
        &mut used,
        "UpdateExecution",
        json!({ "id": id, "input": { "priority": "HIGH" } }),
    )
    .await;
    run(server, &mut used, "StartExecution", json!({ "id": id })).await;
    run(
        server,
        &mut used,
        "StartStep",
        with(json!({ "step": { "id": "a" } })),
    )
    .await;
    run(
        server,
        &mut used,
        "CompleteStep",
        with(
            json!({ "stepId": "a", "output": { "text": "hola" }, "metrics": { "tokensUsed": 12 } }),
        ),
    )
    .await;
    run(
        server,
        &mut used,
        "AppendLogs",
        json!({ "id": id, "logs": [{ "message": "fetched", "step": "a" }] }),
    )
    .await;
    run(
        server,
        &mut used,
        "RecordMetrics",
        json!({ "id": id, "metrics": { "cost": 0.01 } }),
    )
    .await;
    run(
        server,
        &mut used,
        "UpdateProgress",
        json!({ "id": id, "progress": 40 }),
    )
    .await;
    run(
        server,
        &mut used,
        "CreateCheckpoint",
        json!({ "id": id, "input": { "state": { "cursor": 1 } } }),
    )
    .await;
    run(
        server,
        &mut used,
        "PauseExecution",
        json!({ "id": id, "reason": "operator break" }),
    )
    .await;
    run(server, &mut used, "ResumeExecution", json!({ "id": id })).await;
    run(
        server,
        &mut used,
        "SkipStep",
        with(json!({ "stepId": "c", "reason": "no one to notify" })),
    )
    .await;
    run(
        server,
        &mut used,
        "StartStep",
        with(json!({ "step": { "id": "b" } })),
    )
    .await;
    // Without a retry policy, the step's failure fails the execution; a retry by hand
    // runs it again, and so after a failure the client reports for the whole.
    run(server, &mut used, "FailStep", with(json!({ "stepId": "b", "error": { "code": "API_TIMEOUT", "message": "slow", "recoverable": true } }))).await;
    let retried = run(server, &mut used, "RetryExecution", json!({ "id": id })).await;
    assert_eq!(retried["retryExecution"]["status"], "RUNNING");
    run(
        server,
        &mut used,
        "FailExecution",
        json!({ "id": id, "error": { "code": "STEP_FAILED", "message": "b failed" } }),
    )
    .await;
    let retried = run(server, &mut used, "RetryExecution", json!({ "id": id })).await;
    assert_eq!(retried["retryExecution"]["status"], "RUNNING");
    let done = run(
        server,
        &mut used,
        "CompleteExecution",
        json!({ "id": id, "result": { "summary": "translated" } }),
    )
    .await;
    assert_eq!(done["completeExecution"]["status"], "COMPLETED");
    let detail = run(server, &mut used, "ExecutionDetail", json!({ "id": id })).await;
    assert_eq!(
        detail["execution"]["webhooks"][0]["events"],
        json!(["EXECUTION_COMPLETED"])
    );
    let list = run(
        server,
        &mut used,
        "ExecutionList",
        json!({ "filter": { "tags": { "hasAny": ["demo"] } }, "first": 10 }),
    )
    .await;
    assert_eq!(list["executions"]["totalCount"], 1);

    let stats = run(
        server,
        &mut used,
        "ExecutionStats",
        json!({ "groupBy": ["SERVICE"], "bucket": "DAY" }),
    )
    .await;
    assert_eq!(stats["executionStats"][0]["completed"], 1);
    let errors = run(
        server,
        &mut used,
        "ErrorDistribution",
        json!({ "limit": 5 }),
    )
    .await;
    assert_eq!(
        errors["errorDistribution"],
        json!([]),
        "the retried execution no longer holds its error"
    );
    let steps = run(
        server,
        &mut used,
        "StepStats",
        json!({ "filter": { "serviceId": { "eq": "translate" } } }),
    )
    .await;
    assert_eq!(steps["stepStats"].as_array().unwrap().len(), 3);

    let other = server
        .create(json!({ "orderId": "o", "serviceId": "s" }))
        .await;
    run(
        server,
        &mut used,
        "CancelExecution",
        json!({ "id": other, "reason": "duplicate order" }),
    )
    .await;

    claim_loop(server, &mut used).await;
    subscriptions(server, &mut used).await;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("frontend-queries");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".graphql")
            && stem != "ExecutionFields"
        {
            assert!(
                used.contains(&stem),
                "frontend-queries/{name} is not exercised by this test"
            );
        }
    }
}

/// An agent's loop over two external steps: claim, heartbeat, complete; claim, fail.
async fn claim_loop(server: &TestServer, used: &mut Vec<&'static str>) {
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "review", "autoStart": true,
            "steps": [
                { "id": "review", "name": "Review", "handler": { "kind": "external" },
                  "assignee": { "type": "HUMAN", "id": "ana" }, "input": { "doc": 7 } },
                { "id": "sign", "name": "Sign", "handler": { "kind": "external" } }
            ]
        }))
        .await;
    let claim =
        json!({ "input": { "assigneeType": "HUMAN", "assigneeId": "ana", "leaseMs": 30000 } });
    let claimed = run(server, used, "ClaimStep", claim.clone()).await;
    assert_eq!(claimed["claimStep"]["step"]["input"], json!({ "doc": 7 }));
    assert_eq!(claimed["claimStep"]["execution"]["id"], id);
    let token = claimed["claimStep"]["token"].clone();
    run(
        server,
        used,
        "HeartbeatStep",
        json!({ "token": token, "progress": 25 }),
    )
    .await;
    let done = run(
        server,
        used,
        "CompleteClaimedStep",
        json!({ "token": token, "output": { "approved": true } }),
    )
    .await;
    assert_eq!(done["completeClaimedStep"]["status"], "COMPLETED");
    let next = run(server, used, "ClaimStep", claim).await;
    assert_eq!(next["claimStep"]["step"]["id"], "sign");
    let failed = run(
        server,
        used,
        "FailClaimedStep",
        json!({ "token": next["claimStep"]["token"], "error": { "code": "REJECTED", "message": "not signed", "recoverable": false } }),
    )
    .await;
    assert_eq!(failed["failClaimedStep"]["status"], "FAILED");
}

/// The subscriptions, over a WebSocket: each gets its first event from a run of a
/// one-step execution.
async fn subscriptions(server: &TestServer, used: &mut Vec<&'static str>) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "live",
            "steps": [{ "id": "a", "name": "A", "handler": { "kind": "echo" } }] }))
        .await;
    let mut client = WsClient::connect(&server.base, TRANSPORT_WS, Some(&server.admin())).await;
    let subscriptions = [
        (
            "ExecutionEvents",
            json!({ "executionId": id, "afterSequence": 0 }),
        ),
        ("ExecutionProgress", json!({ "executionId": id })),
        ("StepEvents", json!({ "executionId": id })),
        (
            "ExecutionsFeed",
            json!({ "filter": { "serviceId": { "eq": "live" } }, "types": ["EXECUTION_COMPLETED"] }),
        ),
    ];
    for (name, variables) in &subscriptions {
        used.push(name);
        client
            .subscribe(name, &operation(name), variables.clone())
            .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    server
        .gql(
            "mutation($id: ID!) { startExecution(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let mut first = std::collections::BTreeMap::new();
    while first.len() < subscriptions.len() {
        let message = client.next_message().await;
        if message["type"] == "complete" {
            continue; // a stream of one execution ends once it completed
        }
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        let name = message["id"].as_str().unwrap().to_owned();
        let event = message["payload"]["data"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone();
        first.entry(name).or_insert(event);
    }
    assert_eq!(first["ExecutionEvents"]["type"], "EXECUTION_CREATED");
    assert_eq!(first["ExecutionProgress"]["type"], "EXECUTION_STARTED");
    assert_eq!(first["StepEvents"]["type"], "STEP_STARTED");
    assert_eq!(first["ExecutionsFeed"]["type"], "EXECUTION_COMPLETED");
}

backend_tests!(every_operation_runs);
