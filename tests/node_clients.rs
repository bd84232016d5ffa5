//! The reference npm `graphql-ws` client, run by Node, against a real server: it sees
//! a scheduled execution's whole event order, gets the server's errors with their
//! codes, and is refused with 4403 for a forged token. (`npm ci` installs it in
//! `tests/fixtures/graphql-ws-client` on first use.)

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use support::TestServer;

/// Starts the client; its JSON lines are returned when it exits.
fn subscribe(
    server: &TestServer,
    token: &str,
    query: &str,
    variables: Value,
    stop_after: &str,
) -> tokio::process::Child {
    tokio::process::Command::new("node")
        .arg(support::node_fixture("graphql-ws-client").join("client.mjs"))
        .arg(format!("{}/graphql", server.base.replacen("http", "ws", 1)))
        .arg(token)
        .arg(query)
        .arg(variables.to_string())
        .arg(stop_after)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node")
}

async fn lines(child: tokio::process::Child) -> Vec<Value> {
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the client to finish")
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_reference_client() {
    let server = TestServer::start(support::Backend::Sqlite).await;
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s",
            "steps": [
                { "id": "a", "name": "A", "handler": { "kind": "echo" } },
                { "id": "b", "name": "B", "dependsOn": ["a"], "handler": { "kind": "echo" } }
            ] }))
        .await;
    let query = "subscription($id: ID!) { executionEvents(executionId: $id, afterSequence: 0) { sequence type } }";
    let client = subscribe(
        &server,
        &server.admin(),
        query,
        json!({ "id": id }),
        "EXECUTION_COMPLETED",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    server
        .gql(
            "mutation($id: ID!) { startExecution(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let got = lines(client).await;
    let events: Vec<(i64, String)> = got
        .iter()
        .filter_map(|line| line.get("next"))
        .map(|p| {
            let e = &p["data"]["executionEvents"];
            (
                e["sequence"].as_i64().unwrap(),
                e["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let stored = server.stored_events(&id).await;
    assert_eq!(events, stored, "{got:?}");
    assert_eq!(events.last().unwrap().1, "EXECUTION_COMPLETED");

    // The execution completed: a new subscription replays its events and completes.
    let got = lines(subscribe(
        &server,
        &server.admin(),
        query,
        json!({ "id": id }),
        "",
    ))
    .await;
    assert_eq!(got.last(), Some(&json!({ "complete": true })), "{got:?}");
    assert_eq!(got.len(), stored.len() + 1, "{got:?}");

    // An unknown execution: the client's error callback gets the code.
    let client = subscribe(&server, &server.admin(), query, json!({ "id": "nope" }), "");
    let got = lines(client).await;
    let error = got.iter().find_map(|l| l.get("error")).expect("an error");
    assert_eq!(error[0]["extensions"]["code"], "NOT_FOUND", "{got:?}");

    // A forged token: the connection is closed with 4403.
    let client = subscribe(&server, "forged", query, json!({ "id": id }), "");
    let got = lines(client).await;
    assert!(got.iter().any(|l| l["closed"] == 4403), "{got:?}");
}

/// Runs `close.mjs`: the strict npm `ws` client sends `messages` and reports how the
/// server closed the socket.
async fn close_seen(server: &TestServer, messages: &[String]) -> Value {
    let child = tokio::process::Command::new("node")
        .arg(support::node_fixture("graphql-ws-client").join("close.mjs"))
        .arg(format!("{}/graphql", server.base.replacen("http", "ws", 1)))
        .args(messages)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    lines(child).await.remove(0)
}

/// A close frame carries at most 123 bytes of reason (RFC 6455): a long reason is
/// cut, so strict clients read the code instead of failing the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_close_reasons_reach_strict_clients() {
    let server = TestServer::start(support::Backend::Sqlite).await;
    let unknown = json!({ "type": "no_such_message_type", "payload": "x".repeat(300) }).to_string();
    let seen = close_seen(&server, &[unknown]).await;
    assert_eq!(seen["closed"], 4400, "{seen}");
    let reason = seen["reason"].as_str().unwrap();
    assert!(
        reason.len() <= 123 && reason.starts_with("Invalid message received"),
        "{seen}"
    );

    // A token signed with another key: refused with a long explanation, seen as 4403
    // by the reference client.
    let other_key = exechub::auth::Keys::load(
        &exechub::config::JwtConfig {
            secret: Some("another-servers-secret-of-at-least-32-bytes".into()),
            ..Default::default()
        },
        &server.data_dir,
    )
    .unwrap();
    let foreign = other_key
        .mint(
            exechub::auth::Role::Admin,
            None,
            "someone".into(),
            Duration::from_secs(60),
        )
        .unwrap();
    let query = "subscription { executionsFeed { id } }";
    let got = lines(subscribe(&server, &foreign, query, json!({}), "")).await;
    assert!(got.iter().any(|l| l["closed"] == 4403), "{got:?}");
}
