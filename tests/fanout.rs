//! Events across processes, on Postgres and Redis: two `exechub serve` processes and
//! one `exechub worker`. A subscriber on A sees, in order and complete, the events of
//! an execution created on B and run by the worker.

mod support;

use std::time::Duration;

use serde_json::json;
use support::processes::Process;
use support::ws::{TRANSPORT_WS, WsClient, event_of};
use support::{Backend, Options, TestServer, post_gql, postgres_configured};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_processes() {
    if !postgres_configured() || std::env::var("EXECHUB_TEST_REDIS_URL").is_err() {
        eprintln!("EXECHUB_TEST_DATABASE_URL or EXECHUB_TEST_REDIS_URL is not set: skipped");
        return;
    }
    let mut options = Options::default();
    options.serve.no_workers = true;
    let server = TestServer::start_with(Backend::Postgres, options).await;
    let (_a, a) = server.serve_process(&[]).await;
    let (_b, b) = server.serve_process(&[]).await;
    let _worker = Process(server.spawn("worker", &[]));

    let token = server.admin();
    let mut feed = WsClient::connect(&a, TRANSPORT_WS, Some(&token)).await;
    feed.subscribe(
        "feed",
        "subscription { executionsFeed(types: [EXECUTION_COMPLETED]) { executionId type } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let client = reqwest::Client::new();
    let created = post_gql(
        &client,
        &b,
        Some(&token),
        "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }",
        json!({ "input": { "orderId": "o", "serviceId": "s",
            "steps": [
                { "id": "a", "name": "A", "handler": { "kind": "echo" } },
                { "id": "b", "name": "B", "dependsOn": ["a"], "handler": { "kind": "delay", "config": { "ms": 300 } } }
            ] } }),
    )
    .await;
    let id = created["data"]["createExecution"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut events = WsClient::connect(&a, TRANSPORT_WS, Some(&token)).await;
    events
        .subscribe(
            "e",
            "subscription($id: ID!) { executionEvents(executionId: $id, afterSequence: 0) { sequence type } }",
            json!({ "id": id }),
        )
        .await;
    post_gql(
        &client,
        &b,
        Some(&token),
        "mutation($id: ID!) { startExecution(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;

    let mut sequences = Vec::new();
    loop {
        let event = event_of(&events.next_data("e").await, "executionEvents");
        sequences.push(event["sequence"].as_i64().unwrap());
        if event["type"] == "EXECUTION_COMPLETED" {
            break;
        }
    }
    assert_eq!(sequences, (1..=sequences.len() as i64).collect::<Vec<_>>());
    let completed = event_of(&feed.next_data("feed").await, "executionsFeed");
    assert_eq!(completed["executionId"], id.as_str());
    // Events caused by the worker (steps) reached A: more than B's own three
    // (created, started, the first step handed out).
    assert!(sequences.len() > 5, "{sequences:?}");
}

/// A fan-out message in a format this process cannot read (a newer or older
/// process during a rolling upgrade) is not lost: the subscribers read what they
/// missed from the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_message_is_read_from_the_table() {
    let Ok(redis_url) = std::env::var("EXECHUB_TEST_REDIS_URL") else {
        eprintln!("EXECHUB_TEST_REDIS_URL is not set: skipped");
        return;
    };
    let mut options = Options::default();
    options.scheduler.redis_url = Some(redis_url.clone());
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s" }))
        .await;
    let mut events = WsClient::connect(&server.base, TRANSPORT_WS, Some(&server.admin())).await;
    events
        .subscribe(
            "e",
            "subscription($id: ID!) { executionEvents(executionId: $id) { sequence type } }",
            json!({ "id": id }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // An event committed here but announced only in a format nobody here reads.
    let principal = exechub::auth::Principal {
        subject: "other-version".into(),
        role: exechub::auth::Role::Admin,
        tenant: None,
    };
    let line = exechub::domain::inputs::LogInput {
        level: exechub::domain::values::LogLevel::Info,
        message: "written by a process of another version".into(),
        step: None,
        context: None,
        metadata: None,
        timestamp: None,
    };
    server
        .unheard_service()
        .append_logs(&principal, &id, vec![line])
        .await
        .expect("committed");
    let mut redis = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let channel = format!("{}:events", server.scheduler.queue_prefix);
    let _: () = redis::AsyncCommands::publish(
        &mut redis,
        channel,
        "exechub-events/99 another-process\n{\"a\": \"shape this process cannot read\"}",
    )
    .await
    .unwrap();

    let event = event_of(&events.next_data("e").await, "executionEvents");
    assert_eq!(event["type"], "LOG_APPENDED", "{event}");
    assert_eq!(event["sequence"], 2);
}
