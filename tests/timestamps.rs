//! Timestamps as a client uses them: every time the API returns is the stored one
//! (to the millisecond, whether it comes from a mutation's answer or a later read),
//! so a returned value used as a filter bound or sort key gives exact answers; and
//! with one worker slot, consecutive steps' recorded spans do not overlap (a step's
//! `startedAt` / `completedAt` say when its work began and ended).

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use support::runs::{step, time, wait_status};
use support::{Backend, Options, TestServer};

const STARTED: &str =
    "mutation($id: ID!) { startExecution(id: $id) { id createdAt metrics { startedAt } } }";

const BETWEEN: &str = r#"
query($after: DateTime!, $from: DateTime!) {
  after: executions(filter: { startedAt: { gt: $after } }, orderBy: [{ field: STARTED_AT, direction: ASC }]) {
    nodes { id metrics { startedAt } }
  }
  from: executions(filter: { startedAt: { gte: $from } }, orderBy: [{ field: STARTED_AT, direction: ASC }]) {
    nodes { id }
  }
}"#;

fn millisecond_precision(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    let parsed: DateTime<Utc> = text.parse().unwrap();
    assert_eq!(parsed.timestamp_subsec_nanos() % 1_000_000, 0, "{text}");
}

async fn returned_times_are_the_stored_ones(server: &TestServer) {
    let mut started = Vec::new();
    for n in 0..4 {
        let id = server
            .create(json!({ "orderId": format!("o{n}"), "serviceId": "times" }))
            .await;
        let answer = server.gql(STARTED, json!({ "id": id })).await["startExecution"].clone();
        millisecond_precision(&answer["createdAt"]);
        millisecond_precision(&answer["metrics"]["startedAt"]);
        started.push((id, answer["metrics"]["startedAt"].clone()));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let (second_id, second_at) = &started[1];
    let body = server
        .gql(BETWEEN, json!({ "after": second_at, "from": second_at }))
        .await;
    let ids = |list: &str| -> Vec<String> {
        body[list]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let later: Vec<String> = started[2..].iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        ids("after"),
        later,
        "gt the value read excludes it: {body:#}"
    );
    let mut from = vec![second_id.clone()];
    from.extend(later);
    assert_eq!(
        ids("from"),
        from,
        "gte the value read includes it: {body:#}"
    );
    // The sort key agrees with the values returned.
    let read: Vec<DateTime<Utc>> = body["after"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| time(&n["metrics"]["startedAt"]))
        .collect();
    assert!(read.windows(2).all(|w| w[0] <= w[1]), "{read:?}");
    // What the mutation answered is what a later read returns.
    let again = server
        .gql(
            "query($id: ID!) { execution(id: $id) { metrics { startedAt } } }",
            json!({ "id": second_id }),
        )
        .await;
    assert_eq!(&again["execution"]["metrics"]["startedAt"], second_at);
}

backend_tests!(returned_times_are_the_stored_ones);

/// With one slot, a step's recorded span ends before the next one's begins.
async fn one_slot_spans_do_not_overlap(backend: Backend) {
    let mut options = Options::default();
    options.scheduler.concurrency = 1;
    let server = TestServer::start_with(backend, options).await;
    let delay = |id: &str| json!({ "id": id, "name": id, "handler": { "kind": "delay", "config": { "ms": 30 } } });
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(
            server
                .create(
                    json!({ "orderId": format!("o{n}"), "serviceId": "spans", "autoStart": true,
                    "steps": [delay("a"), delay("b"), delay("c")] }),
                )
                .await,
        );
    }
    let mut spans = Vec::new();
    for id in &ids {
        let done = wait_status(&server, id, "COMPLETED").await;
        for name in ["a", "b", "c"] {
            let step = step(&done, name);
            spans.push((time(&step["startedAt"]), time(&step["completedAt"])));
        }
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "overlapping spans with one slot: {pair:?}"
        );
    }
}

backend_suites!(one_slot_spans_do_not_overlap);
