//! The transition table through the API: every lifecycle mutation from every status
//! an execution can rest in. Allowed hops succeed; the rest give INVALID_TRANSITION
//! with `from` and `to`, and write nothing.

mod support;

use serde_json::json;
use support::{TestServer, error_code};

/// Statuses an execution rests in without a scheduler, and how to get there.
const RESTING: [(&str, &[&str]); 6] = [
    ("QUEUED", &[]),
    ("RUNNING", &["start"]),
    ("PAUSED", &["start", "pause"]),
    ("COMPLETED", &["start", "complete"]),
    ("FAILED", &["start", "fail"]),
    ("CANCELLED", &["cancel"]),
];

/// Each mutation and the first hop it asks for.
const MUTATIONS: [(&str, &str); 7] = [
    ("start", "STARTING"),
    ("pause", "PAUSED"),
    ("resume", "RUNNING"),
    ("complete", "COMPLETED"),
    ("fail", "FAILED"),
    ("retry", "RETRY"),
    ("cancel", "CANCELLED"),
];

fn document(mutation: &str) -> &'static str {
    match mutation {
        "start" => "mutation($id: ID!) { r: startExecution(id: $id) { status } }",
        "pause" => "mutation($id: ID!) { r: pauseExecution(id: $id) { status } }",
        "resume" => "mutation($id: ID!) { r: resumeExecution(id: $id) { status } }",
        "complete" => {
            "mutation($id: ID!) { r: completeExecution(id: $id, result: { summary: \"ok\" }) { status } }"
        }
        "fail" => {
            "mutation($id: ID!) { r: failExecution(id: $id, error: { code: \"BOOM\", message: \"x\" }) { status } }"
        }
        "retry" => "mutation($id: ID!) { r: retryExecution(id: $id) { status } }",
        "cancel" => "mutation($id: ID!) { r: cancelExecution(id: $id) { status } }",
        other => panic!("unknown mutation {other}"),
    }
}

/// The architecture's table, for the hops these mutations ask for.
fn allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("QUEUED", "STARTING" | "CANCELLED")
            | ("RUNNING", "PAUSED" | "COMPLETED" | "FAILED" | "CANCELLED")
            | ("PAUSED", "RUNNING" | "CANCELLED")
            | ("FAILED", "RETRY" | "CANCELLED")
    )
}

async fn last_sequence(server: &TestServer, id: &str) -> i64 {
    let data = server
        .gql(
            "query($id: ID!) { execution(id: $id) { events(first: 500) { sequence } } }",
            json!({ "id": id }),
        )
        .await;
    data["execution"]["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["sequence"]
        .as_i64()
        .unwrap()
}

async fn every_mutation_from_every_resting_status(server: &TestServer) {
    let mut checked = 0;
    for (from, path) in RESTING {
        for (mutation, hop) in MUTATIONS {
            let id = server
                .create(json!({ "orderId": "o", "serviceId": "s" }))
                .await;
            for step in path {
                server.gql(document(step), json!({ "id": id })).await;
            }
            let before = last_sequence(server, &id).await;
            let body = server
                .gql_as(
                    Some(&server.admin()),
                    document(mutation),
                    json!({ "id": id }),
                )
                .await;
            if allowed(from, hop) {
                assert!(
                    body.get("errors").is_none(),
                    "{from} --{mutation}--> {body}"
                );
                assert!(last_sequence(server, &id).await > before);
            } else {
                assert_eq!(
                    error_code(&body).as_deref(),
                    Some("INVALID_TRANSITION"),
                    "{from} --{mutation}--> {body}"
                );
                let extensions = &body["errors"][0]["extensions"];
                assert_eq!(extensions["from"], from, "{body}");
                assert_eq!(extensions["to"], hop, "{body}");
                assert_eq!(last_sequence(server, &id).await, before, "nothing written");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 42);
}

async fn step_transitions_are_enforced(server: &TestServer) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true,
                        "steps": [{ "id": "a", "name": "A" }] }))
        .await;
    server.start_step(&id, "a").await;
    server
        .gql(
            r#"mutation($id: ID!) { completeStep(executionId: $id, stepId: "a") { id } }"#,
            json!({ "id": id }),
        )
        .await;
    let again = server
        .gql_as(
            Some(&server.admin()),
            r#"mutation($id: ID!) { skipStep(executionId: $id, stepId: "a") { id } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&again).as_deref(), Some("INVALID_TRANSITION"));
    assert_eq!(again["errors"][0]["extensions"]["from"], "COMPLETED");
    assert_eq!(again["errors"][0]["extensions"]["to"], "SKIPPED");
    let missing = server
        .gql_as(
            Some(&server.admin()),
            r#"mutation($id: ID!) { completeStep(executionId: $id, stepId: "nope") { id } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&missing).as_deref(), Some("NOT_FOUND"));
}

backend_tests!(
    every_mutation_from_every_resting_status,
    step_transitions_are_enforced
);
