//! Executions created to start later (`createExecution(input: {startAt})`), through
//! the API with the scheduler running: QUEUED until then and started once, by the
//! scheduler; cancelled or started sooner by a client; found by `scheduledAt`; and
//! started when the process that created one died before its start job was queued.

mod support;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use serde_json::{Value, json};
use support::runs::{execution, wait_status};
use support::{TestServer, error_code};

const SCHEDULED: &str = r#"
query($id: ID!) {
  execution(id: $id) {
    status scheduledAt
    metrics { startedAt }
    events(first: 50) { type status actor }
  }
}"#;

async fn scheduled(server: &TestServer, id: &str) -> Value {
    server.gql(SCHEDULED, json!({ "id": id })).await["execution"].clone()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().expect("a time").parse().expect("RFC 3339")
}

fn echo_in(start_at: DateTime<Utc>) -> Value {
    json!({ "orderId": "o", "serviceId": "later", "startAt": start_at.to_rfc3339(),
            "steps": [{ "id": "a", "name": "A", "handler": { "kind": "echo" } }] })
}

/// How many times the execution moved to STARTING, and by whom.
fn starts(execution: &Value) -> Vec<String> {
    let events = execution["events"].as_array().unwrap();
    let starting = events.iter().filter(|e| e["status"] == "STARTING");
    starting
        .map(|e| e["actor"].as_str().unwrap().to_owned())
        .collect()
}

async fn starts_itself_when_due_and_once(server: &TestServer) {
    let start_at = (Utc::now() + TimeDelta::milliseconds(1500)).trunc_subsecs(3);
    let id = server.create(echo_in(start_at)).await;
    let queued = scheduled(server, &id).await;
    assert_eq!(queued["status"], "QUEUED", "{queued:#}");
    assert_eq!(time(&queued["scheduledAt"]), start_at);
    let found = server
        .gql(
            "query($after: DateTime!) { executions(filter: { scheduledAt: { gte: $after } }) { totalCount } }",
            json!({ "after": (start_at - TimeDelta::seconds(1)).to_rfc3339() }),
        )
        .await;
    assert_eq!(found["executions"]["totalCount"], 1, "{found}");

    wait_status(server, &id, "COMPLETED").await;
    let done = scheduled(server, &id).await;
    assert!(time(&done["metrics"]["startedAt"]) >= start_at, "{done:#}");
    assert_eq!(starts(&done), ["scheduler"], "{done:#}");
}

async fn cancelled_or_started_sooner_by_a_client(server: &TestServer) {
    let start_at = Utc::now() + TimeDelta::milliseconds(1200);
    let cancelled = server.create(echo_in(start_at)).await;
    let sooner = server.create(echo_in(start_at)).await;
    let cancel = "mutation($id: ID!) { cancelExecution(id: $id) { status } }";
    let data = server.gql(cancel, json!({ "id": cancelled })).await;
    assert_eq!(data["cancelExecution"]["status"], "CANCELLED");
    let start = "mutation($id: ID!) { startExecution(id: $id) { status } }";
    let data = server.gql(start, json!({ "id": sooner })).await;
    assert_ne!(data["startExecution"]["status"], "QUEUED");
    wait_status(server, &sooner, "COMPLETED").await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let cancelled = scheduled(server, &cancelled).await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled:#}");
    assert!(cancelled["metrics"]["startedAt"].is_null(), "{cancelled:#}");
    let sooner = scheduled(server, &sooner).await;
    assert_eq!(sooner["status"], "COMPLETED", "{sooner:#}");
    assert_eq!(starts(&sooner).len(), 1, "started once: {sooner:#}");
}

async fn a_lost_start_job_is_started_by_the_reconciler(server: &TestServer) {
    let start_at = Utc::now() + TimeDelta::milliseconds(500);
    let input = async_graphql::Value::from_json(echo_in(start_at)).unwrap();
    let input = <exechub::domain::inputs::CreateExecutionInput as async_graphql::InputType>::parse(
        Some(input),
    )
    .unwrap();
    // Created by a process that died right after its commit: no start job anywhere.
    let admin = exechub::auth::Principal::scheduler();
    let created = (server.unheard_service())
        .create_execution(&admin, input)
        .await
        .expect("created");
    let done = wait_status(server, &created.id, "COMPLETED").await;
    assert_eq!(done["steps"][0]["status"], "COMPLETED", "{done:#}");
}

async fn a_start_too_far_ahead_is_refused(server: &TestServer) {
    let far = Utc::now() + TimeDelta::days(400);
    let create =
        "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }";
    let admin = server.admin();
    let refused = (server.gql_as(Some(&admin), create, json!({ "input": echo_in(far) }))).await;
    assert_eq!(
        error_code(&refused).as_deref(),
        Some("BAD_USER_INPUT"),
        "{refused}"
    );
    assert_eq!(refused["errors"][0]["extensions"]["field"], "input.startAt");
    assert_eq!(server.count("SELECT COUNT(*) FROM executions").await, 0);
    let past = server
        .create(echo_in(Utc::now() - TimeDelta::seconds(5)))
        .await;
    assert_ne!(execution(server, &past).await["status"], "QUEUED");
}

backend_tests!(
    starts_itself_when_due_and_once,
    cancelled_or_started_sooner_by_a_client,
    a_lost_start_job_is_started_by_the_reconciler,
    a_start_too_far_ahead_is_refused
);
