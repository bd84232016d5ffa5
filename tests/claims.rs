//! Claims of external steps at their edges: a heartbeat keeps the lease the claim
//! asked for, and a claimer finds the one offer it fits behind any number of older
//! offers it does not.

mod support;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use support::TestServer;

const CLAIM: &str = r#"
mutation($input: ClaimStepInput!) {
  claimStep(input: $input) { token leaseExpiresAt step { id } execution { id serviceId } }
}"#;

const HEARTBEAT: &str =
    "mutation($t: ID!, $ms: Int) { heartbeatStep(token: $t, leaseMs: $ms) { leaseExpiresAt } }";

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

async fn heartbeats_keep_the_claims_lease(server: &TestServer) {
    server
        .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true,
            "steps": [{ "id": "a", "name": "A" }] }))
        .await;
    let agent = server.token(exechub::auth::Role::Agent, None);
    let claim = server
        .gql_as(
            Some(&agent),
            CLAIM,
            json!({ "input": { "leaseMs": 60000 } }),
        )
        .await;
    let claim = &claim["data"]["claimStep"];
    let token = claim["token"].as_str().unwrap_or_else(|| panic!("{claim}"));
    let claimed_until = time(&claim["leaseExpiresAt"]);

    let beat = server
        .gql_as(Some(&agent), HEARTBEAT, json!({ "t": token }))
        .await;
    let until = time(&beat["data"]["heartbeatStep"]["leaseExpiresAt"]);
    assert!(
        until >= claimed_until,
        "a heartbeat shortened the lease: {claimed_until} → {until}"
    );
    let left = (until - Utc::now()).num_seconds();
    assert!(
        (55..=60).contains(&left),
        "extended by the claim's 60 s: {left} s left"
    );

    let beat = server
        .gql_as(Some(&agent), HEARTBEAT, json!({ "t": token, "ms": 5000 }))
        .await;
    let left = (time(&beat["data"]["heartbeatStep"]["leaseExpiresAt"]) - Utc::now()).num_seconds();
    assert!(left <= 5, "a heartbeat's own leaseMs wins: {left} s left");
}

async fn a_claimer_finds_what_it_fits_behind_what_it_does_not(server: &TestServer) {
    let gpu = json!({ "type": "AI_AGENT", "capabilities": ["gpu"] });
    for n in 0..30 {
        server
            .create(
                json!({ "orderId": format!("gpu-{n}"), "serviceId": "gpu", "autoStart": true,
                "steps": [{ "id": "a", "name": "A", "assignee": gpu }] }),
            )
            .await;
    }
    let anyone = server
        .create(
            json!({ "orderId": "any", "serviceId": "anyone", "autoStart": true,
            "steps": [{ "id": "a", "name": "A" }] }),
        )
        .await;
    let agent = server.token(exechub::auth::Role::Agent, None);
    let without_capabilities = json!({ "input": { "capabilities": [] } });
    let claim = || server.gql_as(Some(&agent), CLAIM, without_capabilities.clone());
    let first = claim().await;
    let claimed = &first["data"]["claimStep"]["execution"]["id"];
    assert_eq!(claimed, anyone.as_str(), "{first}");
    let none = claim().await;
    assert_eq!(none["data"]["claimStep"], Value::Null, "{none}");
}

backend_tests!(
    heartbeats_keep_the_claims_lease,
    a_claimer_finds_what_it_fits_behind_what_it_does_not
);
