//! Subscriptions over real WebSockets (both subprotocols) and Server-Sent Events:
//! the full, gapless event order of a scheduled execution, reconnecting with
//! `afterSequence` while events keep coming, the graphql-ws close codes, and tenant
//! isolation on every subscription.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use exechub::auth::Role;
use serde_json::{Value, json};
use support::ws::{Ending, LEGACY_WS, TRANSPORT_WS, WsClient, event_of};
use support::{Backend, Options, TestServer, error_code};

const EVENTS: &str = "subscription($id: ID!, $after: Int, $types: [EventType!]) {
  executionEvents(executionId: $id, afterSequence: $after, types: $types) {
    executionId sequence type status progress step { id status } log { message }
  }
}";

async fn append_log(server: &TestServer, id: &str, message: &str) {
    server
        .gql(
            "mutation($id: ID!, $m: String!) { appendLog(id: $id, log: { message: $m }) { id } }",
            json!({ "id": id, "m": message }),
        )
        .await;
}

/// A scheduled execution seen from `afterSequence: 0` over each subprotocol: every
/// event from EXECUTION_CREATED to EXECUTION_COMPLETED, in sequence order, exactly
/// as stored.
async fn full_event_order(server: &TestServer) {
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let id = server
            .create(json!({
                "orderId": "o", "serviceId": "s",
                "steps": [
                    { "id": "a", "name": "A", "handler": { "kind": "echo" } },
                    { "id": "b", "name": "B", "dependsOn": ["a"], "handler": { "kind": "delay", "config": { "ms": 100 } } },
                    { "id": "c", "name": "C", "dependsOn": ["b"], "handler": { "kind": "echo" } }
                ]
            }))
            .await;
        let mut client = WsClient::connect(&server.base, protocol, Some(&server.admin())).await;
        client
            .subscribe("1", EVENTS, json!({ "id": id, "after": 0 }))
            .await;
        let created = event_of(&client.next_data("1").await, "executionEvents");
        assert_eq!(created["type"], "EXECUTION_CREATED");
        server
            .gql(
                "mutation($id: ID!) { startExecution(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        let mut seen = vec![(1, "EXECUTION_CREATED".to_owned())];
        loop {
            let event = event_of(&client.next_data("1").await, "executionEvents");
            assert_eq!(event["executionId"], id.as_str());
            let kind = event["type"].as_str().unwrap().to_owned();
            seen.push((event["sequence"].as_i64().unwrap(), kind.clone()));
            if kind == "EXECUTION_COMPLETED" {
                assert_eq!(event["status"], "COMPLETED");
                assert_eq!(event["progress"], 100.0);
                break;
            }
        }
        assert_eq!(seen, server.stored_events(&id).await, "over {protocol}");
        let steps: Vec<_> = seen.iter().filter(|(_, k)| k == "STEP_COMPLETED").collect();
        assert_eq!(steps.len(), 3);
        client.close().await;
    }
}

/// Events keep coming (log lines appended by another task) while a subscriber reads
/// some, drops its connection, and comes back with the last sequence it saw: it sees
/// every event exactly once, in order.
async fn reconnect_after_sequence(server: &TestServer) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s" }))
        .await;
    let total = 60;
    let writer = {
        let base = server.base.clone();
        let token = server.admin();
        let id = id.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0..total {
                let body = json!({
                    "query": "mutation($id: ID!, $m: String!) { appendLog(id: $id, log: { message: $m }) { id } }",
                    "variables": { "id": id, "m": format!("line {n}") }
                });
                let response = client
                    .post(format!("{base}/graphql"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut sequences = Vec::new();
    let mut after = 0;
    let last = 1 + total; // EXECUTION_CREATED, then one LOG_APPENDED per line
    let mut round = 0;
    while after < last {
        let mut client = WsClient::connect(&server.base, TRANSPORT_WS, Some(&server.admin())).await;
        client
            .subscribe("s", EVENTS, json!({ "id": id, "after": after }))
            .await;
        // Read a few, then drop the connection mid-stream (except in the last rounds).
        let mut read = 0;
        while after < last && (round >= 3 || read < 7) {
            let event = event_of(&client.next_data("s").await, "executionEvents");
            after = event["sequence"].as_i64().unwrap();
            sequences.push(after);
            read += 1;
        }
        drop(client);
        round += 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    writer.await.unwrap();
    assert_eq!(sequences, (1..=last).collect::<Vec<_>>());
    assert!(round >= 3, "the subscriber reconnected");
}

/// A subscriber of one execution and of the feed sees only what its tenant may see;
/// another tenant's execution is NOT_FOUND for every per-execution subscription.
async fn tenant_isolation(server: &TestServer) {
    let ours = server
        .create(json!({ "orderId": "o", "serviceId": "s", "customerId": "acme" }))
        .await;
    let theirs = server
        .create(json!({ "orderId": "o", "serviceId": "s", "customerId": "globex" }))
        .await;
    let acme = server.token(Role::Operator, Some("acme"));
    let mut client = WsClient::connect(&server.base, TRANSPORT_WS, Some(&acme)).await;
    for (n, field) in ["executionEvents", "executionProgress", "stepEvents"]
        .iter()
        .enumerate()
    {
        let id = format!("denied-{n}");
        let query =
            format!("subscription($id: ID!) {{ {field}(executionId: $id) {{ sequence }} }}");
        client.subscribe(&id, &query, json!({ "id": theirs })).await;
        let message = client.next_message().await;
        assert_eq!(message["type"], "error", "{message}");
        assert_eq!(message["id"], id.as_str());
        assert_eq!(message["payload"][0]["extensions"]["code"], "NOT_FOUND");
    }
    client
        .subscribe(
            "feed",
            "subscription { executionsFeed(types: [LOG_APPENDED]) { executionId log { message } } }",
            json!({}),
        )
        .await;
    client
        .subscribe("mine", EVENTS, json!({ "id": ours }))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    append_log(server, &theirs, "secret").await;
    append_log(server, &ours, "hello").await;
    let mut got = BTreeSet::new();
    while got.len() < 2 {
        let message = client.next_message().await;
        assert_ne!(
            message["payload"].to_string().find("secret").map(|_| ()),
            Some(()),
            "{message}"
        );
        let field = if message["id"] == "feed" {
            "executionsFeed"
        } else {
            "executionEvents"
        };
        let event = event_of(&message["payload"], field);
        assert_eq!(event["executionId"], ours.as_str(), "{message}");
        got.insert(message["id"].as_str().unwrap().to_owned());
    }
    // Without a token, subscriptions are refused as queries are.
    let mut anonymous = WsClient::connect(&server.base, TRANSPORT_WS, None).await;
    anonymous
        .subscribe("x", EVENTS, json!({ "id": ours }))
        .await;
    let message = anonymous.next_message().await;
    assert_eq!(message["type"], "error");
    assert_eq!(
        message["payload"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}

/// The feed with a filter: only events of matching executions, only wanted types,
/// each execution's in order.
async fn feed_filter(server: &TestServer) {
    let mut client = WsClient::connect(&server.base, TRANSPORT_WS, Some(&server.admin())).await;
    client
        .subscribe(
            "feed",
            r#"subscription { executionsFeed(filter: { serviceId: { eq: "wanted" } }, types: [LOG_APPENDED, EXECUTION_STARTED]) { executionId sequence type } }"#,
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let wanted = server
        .create(json!({ "orderId": "o", "serviceId": "wanted" }))
        .await;
    let other = server
        .create(json!({ "orderId": "o", "serviceId": "other" }))
        .await;
    for n in 0..3 {
        append_log(server, &other, &format!("other {n}")).await;
        append_log(server, &wanted, &format!("wanted {n}")).await;
    }
    server
        .gql(
            "mutation($id: ID!) { startExecution(id: $id) { id } }",
            json!({ "id": wanted }),
        )
        .await;
    let mut kinds = Vec::new();
    for _ in 0..4 {
        let event = event_of(&client.next_data("feed").await, "executionsFeed");
        assert_eq!(event["executionId"], wanted.as_str());
        kinds.push((
            event["sequence"].as_i64().unwrap(),
            event["type"].as_str().unwrap().to_owned(),
        ));
    }
    let types: Vec<&str> = kinds.iter().map(|(_, kind)| kind.as_str()).collect();
    assert_eq!(
        types,
        [
            "LOG_APPENDED",
            "LOG_APPENDED",
            "LOG_APPENDED",
            "EXECUTION_STARTED"
        ]
    );
    assert_eq!(
        kinds[..3].iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert!(kinds[3].0 > 4);
    let nothing = client.texts_for(Duration::from_millis(300)).await;
    assert!(nothing.iter().all(|m| m["type"] == "ping"), "{nothing:?}");
}

/// `executionProgress` and `stepEvents` carry only their kinds of events.
async fn progress_and_step_streams(server: &TestServer) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s",
            "steps": [{ "id": "a", "name": "A", "handler": { "kind": "echo" } }] }))
        .await;
    let mut client = WsClient::connect(&server.base, TRANSPORT_WS, Some(&server.admin())).await;
    client
        .subscribe(
            "p",
            "subscription($id: ID!) { executionProgress(executionId: $id) { type progress } }",
            json!({ "id": id }),
        )
        .await;
    client
        .subscribe(
            "s",
            "subscription($id: ID!) { stepEvents(executionId: $id) { type step { id } } }",
            json!({ "id": id }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    append_log(server, &id, "not progress").await;
    server
        .gql(
            "mutation($id: ID!) { startExecution(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    // Both streams end (`complete`) once the execution has completed.
    let (mut progress, mut steps, mut completed) = (Vec::new(), Vec::new(), Vec::new());
    while completed.len() < 2 {
        let message = client.next_message().await;
        let payload = &message["payload"];
        let id = message["id"].as_str().unwrap().to_owned();
        match (message["type"].as_str().unwrap(), id.as_str()) {
            ("complete", _) => completed.push(id),
            (_, "p") => progress.push(
                event_of(payload, "executionProgress")["type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            _ => steps.push(
                event_of(payload, "stepEvents")["type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
        }
    }
    assert_eq!(
        progress.last().map(String::as_str),
        Some("EXECUTION_COMPLETED")
    );
    assert_eq!(
        progress.first().map(String::as_str),
        Some("EXECUTION_STARTED")
    );
    assert!(
        progress.iter().all(|k| k.starts_with("EXECUTION_")),
        "{progress:?}"
    );
    assert_eq!(steps, ["STEP_STARTED", "STEP_COMPLETED"]);
}

/// The same subscription over Server-Sent Events, with the token in the query string
/// and in the header; a bad token gets UNAUTHENTICATED in the stream.
async fn sse_stream(server: &TestServer) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s",
            "steps": [{ "id": "a", "name": "A", "handler": { "kind": "echo" } }] }))
        .await;
    let body = json!({ "query": EVENTS, "variables": { "id": id, "after": 0 } });
    let response = server
        .client
        .post(format!(
            "{}/graphql/stream?token={}",
            server.base,
            server.admin()
        ))
        .header("Accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    server
        .gql(
            "mutation($id: ID!) { startExecution(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let mut response = response;
    let mut buffer = String::new();
    let mut kinds = Vec::new();
    while kinds.last().is_none_or(|k| k != "EXECUTION_COMPLETED") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), response.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("stream open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.starts_with(':') {
                continue; // keep-alive comment
            }
            assert!(block.starts_with("event: next\n"), "{block}");
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            let payload: Value = serde_json::from_str(data).unwrap();
            kinds.push(
                event_of(&payload, "executionEvents")["type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert_eq!(kinds.first().map(String::as_str), Some("EXECUTION_CREATED"));
    assert_eq!(kinds.len(), server.stored_events(&id).await.len());
    // The execution settled: the stream says `complete` and ends.
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        let mut rest = buffer.clone();
        while let Some(chunk) = response.chunk().await.unwrap() {
            rest.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        rest
    })
    .await
    .expect("the stream ended once the execution completed");
    assert!(rest.contains("event: complete"), "{rest}");
    // Asked for from now on, a settled execution's stream has nothing to wait for.
    let live = json!({ "query": "subscription($id: ID!) { executionEvents(executionId: $id) { type } }", "variables": { "id": id } });
    let request = server
        .client
        .post(format!("{}/graphql/stream", server.base))
        .header("Accept", "text/event-stream")
        .bearer_auth(server.admin())
        .json(&live);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        request.send().await.unwrap().text().await.unwrap()
    })
    .await
    .expect("the stream of a settled execution ends at once");
    assert!(
        ended.contains("event: complete") && !ended.contains("event: next"),
        "{ended}"
    );

    let refused = server
        .client
        .post(format!("{}/graphql/stream", server.base))
        .header("Accept", "text/event-stream")
        .bearer_auth("not-a-token")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = refused
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    assert_eq!(
        error_code(&serde_json::from_str(data).unwrap()).as_deref(),
        Some("UNAUTHENTICATED")
    );
    assert!(refused.contains("event: complete"), "{refused}");
}

backend_tests!(
    full_event_order,
    reconnect_after_sequence,
    tenant_isolation,
    feed_filter,
    progress_and_step_streams,
    sse_stream,
);

/// Each close code of the graphql-ws spec, and the token's expiry ending the
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_codes() {
    let mut options = Options::default();
    options.serve.ws_init_timeout = Duration::from_millis(300);
    options.serve.ws_ping_interval = Duration::from_millis(200);
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    let token = server.admin();
    let closed =
        |code: u16| move |ending: Ending| matches!(ending, Ending::Closed(c, _) if c == code);

    let mut client = WsClient::open(&server.base, TRANSPORT_WS).await;
    client.send_text("{not json").await;
    assert!(closed(4400)(client.ending(Duration::from_secs(5)).await));

    let mut client = WsClient::open(&server.base, TRANSPORT_WS).await;
    client
        .send(json!({ "type": "start", "id": "1", "payload": { "query": "{ me { subject } }" } }))
        .await;
    assert!(
        closed(4400)(client.ending(Duration::from_secs(5)).await),
        "legacy message on the new protocol"
    );

    let mut client = WsClient::open(&server.base, TRANSPORT_WS).await;
    client.subscribe("1", EVENTS, json!({ "id": "x" })).await;
    assert!(closed(4401)(client.ending(Duration::from_secs(5)).await));

    let mut client = WsClient::open(&server.base, TRANSPORT_WS).await;
    client
        .send(json!({ "type": "connection_init", "payload": { "token": "forged" } }))
        .await;
    assert!(closed(4403)(client.ending(Duration::from_secs(5)).await));

    let mut client = WsClient::open(&server.base, LEGACY_WS).await;
    client
        .send(json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged" } }))
        .await;
    assert!(closed(4403)(client.ending(Duration::from_secs(5)).await));

    let mut client = WsClient::open(&server.base, TRANSPORT_WS).await;
    assert!(closed(4408)(client.ending(Duration::from_secs(5)).await));

    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s" }))
        .await;
    let mut client = WsClient::connect(&server.base, TRANSPORT_WS, Some(&token)).await;
    client.subscribe("1", EVENTS, json!({ "id": id })).await;
    client.subscribe("1", EVENTS, json!({ "id": id })).await;
    assert!(closed(4409)(client.ending(Duration::from_secs(5)).await));

    let mut client = WsClient::connect(&server.base, TRANSPORT_WS, Some(&token)).await;
    client.send(json!({ "type": "connection_init" })).await;
    assert!(closed(4429)(client.ending(Duration::from_secs(5)).await));

    // A token that expires in a second ends its connection when it does.
    let short = server
        .keys
        .mint(Role::Admin, None, "short".into(), Duration::from_secs(1))
        .unwrap();
    let mut client = WsClient::connect(&server.base, TRANSPORT_WS, Some(&short)).await;
    let started = std::time::Instant::now();
    assert!(closed(4403)(client.ending(Duration::from_secs(5)).await));
    assert!(started.elapsed() < Duration::from_secs(3));

    // Keep-alives: pings on the new protocol, `ka` on the legacy one; a ping is
    // answered with a pong; an operation completes and its id is free again.
    let mut client = WsClient::connect(&server.base, TRANSPORT_WS, Some(&token)).await;
    client.send(json!({ "type": "ping" })).await;
    client.subscribe("q", "{ me { subject } }", json!({})).await;
    let texts = client.texts_for(Duration::from_millis(500)).await;
    let kinds: Vec<&str> = texts.iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"pong") && kinds.contains(&"ping"),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"next") && kinds.contains(&"complete"),
        "{kinds:?}"
    );
    client.subscribe("q", "{ me { subject } }", json!({})).await;
    assert_eq!(
        client.next_data("q").await["data"]["me"]["subject"],
        "admin-none"
    );

    client
        .subscribe("bad", EVENTS, json!({ "id": id, "after": -1 }))
        .await;
    let mut refused = client.next_message().await;
    while refused["id"] != "bad" {
        refused = client.next_message().await;
    }
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert_eq!(
        refused["payload"][0]["extensions"]["field"],
        "afterSequence"
    );

    let mut legacy = WsClient::connect(&server.base, LEGACY_WS, Some(&token)).await;
    let texts = legacy.texts_for(Duration::from_millis(500)).await;
    assert!(texts.iter().any(|t| t["type"] == "ka"), "{texts:?}");
    legacy.send(json!({ "type": "connection_terminate" })).await;
    assert_eq!(legacy.ending(Duration::from_secs(5)).await, Ending::Dropped);
}
