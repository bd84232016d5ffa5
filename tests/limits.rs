//! Bounded cost per request and per connection: complexity that counts database
//! reads and multiplies pages, big filters and counters refused or saturated (never
//! `INTERNAL`, never an overflowed `Int`), no mutation over GET, a WebSocket's and a
//! principal's operations capped, an SSE stream that ends with its token,
//! connections that never finish their request head dropped in time, and requests
//! stopped at `--request-timeout` on every transport.

mod support;

use std::time::{Duration, Instant};

use exechub::auth::Role;
use serde_json::{Value, json};
use support::ws::{TRANSPORT_WS, WsClient};
use support::{Backend, Options, TestServer, error_code};

async fn ask(server: &TestServer, query: &str, variables: Value) -> Value {
    server.gql_as(Some(&server.admin()), query, variables).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complexity_counts_reads_and_multiplies_pages() {
    let server = TestServer::start(Backend::Sqlite).await;
    let aliases: String = (0..100)
        .map(|n| {
            format!("a{n}: executions(first: 0, filter: {{ search: \"x\" }}) {{ totalCount }} ")
        })
        .collect();
    let body = ask(&server, &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("QUERY_TOO_COMPLEX"),
        "{body}"
    );
    let stats: String = (0..100)
        .map(|n| format!("s{n}: executionStats {{ total }} "))
        .collect();
    let body = ask(&server, &format!("{{ {stats} }}"), json!({})).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("QUERY_TOO_COMPLEX"),
        "{body}"
    );
    let nested = "query($n: Int) { executions(first: $n) { nodes { logs(first: 500) { nodes { message } } events(first: 500) { type } } } }";
    let body = ask(&server, nested, json!({ "n": 500 })).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("QUERY_TOO_COMPLEX"),
        "{body}"
    );
    // What a dashboard asks stays well within the default.
    let page = "query($n: Int) { executions(first: $n) { totalCount nodes { id status progress tags steps { id status } logs(first: 5) { nodes { message } } } } }";
    let body = ask(&server, page, json!({ "n": 50 })).await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_filters_and_counters_are_bounded() {
    let server = TestServer::start(Backend::Sqlite).await;
    let list = "query($f: ExecutionFilter) { executions(filter: $f) { totalCount } }";
    let ids: Vec<String> = (0..40_000).map(|n| format!("id{n}")).collect();
    let tags: Vec<String> = (0..5_000).map(|n| format!("t{n}")).collect();
    let branches: Vec<Value> = (0..10_000)
        .map(|n| json!({ "orderId": { "eq": format!("o{n}") } }))
        .collect();
    for filter in [
        json!({ "id": { "in": ids } }),
        json!({ "tags": { "hasAll": tags } }),
        json!({ "or": branches }),
    ] {
        let body = ask(&server, list, json!({ "f": filter })).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
    }

    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s" }))
        .await;
    let record = "mutation($id: ID!, $m: MetricsInput!) { recordMetrics(id: $id, metrics: $m) { metrics { tokensUsed cost } } }";
    let mut last = Value::Null;
    for _ in 0..3 {
        last = ask(
            &server,
            record,
            json!({ "id": id, "m": { "tokensUsed": 2147483647, "cost": 1e12 } }),
        )
        .await;
    }
    assert_eq!(
        last["data"]["recordMetrics"]["metrics"],
        json!({ "tokensUsed": 2147483647, "cost": 3e12 }),
        "{last}"
    );
    let huge = ask(
        &server,
        record,
        json!({ "id": id, "m": { "cost": 1.7e308 } }),
    )
    .await;
    assert_eq!(
        error_code(&huge).as_deref(),
        Some("BAD_USER_INPUT"),
        "{huge}"
    );
    let stats = ask(
        &server,
        "{ executionStats { totalCost totalTokens } }",
        json!({}),
    )
    .await;
    assert_eq!(
        stats["data"]["executionStats"][0],
        json!({ "totalCost": 3e12, "totalTokens": 2147483647 }),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mutation_over_get_on_any_transport() {
    let server = TestServer::start(Backend::Sqlite).await;
    let mutation =
        "mutation { createExecution(input: { orderId: \"o\", serviceId: \"s\" }) { id } }";
    for path in ["/graphql", "/graphql/stream"] {
        let response = server
            .client
            .get(format!("{}{path}", server.base))
            .query(&[("query", mutation), ("token", &server.admin())])
            .bearer_auth(server.admin())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(response.headers()["allow"], "POST");
    }
    assert_eq!(server.count("SELECT COUNT(*) FROM executions").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_and_a_principal_hold_bounded_operations() {
    let mut options = Options::default();
    options.serve.max_operations_per_connection = 3;
    options.serve.max_subscriptions_per_principal = 5;
    options.serve.max_body_bytes = 64 * 1024;
    options.serve.max_websockets = 4;
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    let viewer = server.token(Role::Viewer, None);
    let feed = "subscription { executionsFeed { type } }";
    let mut first = WsClient::connect(&server.base, TRANSPORT_WS, Some(&viewer)).await;
    for n in 0..4 {
        first.subscribe(&n.to_string(), feed, json!({})).await;
    }
    let refused = first.next_message().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "3");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    let mut second = WsClient::connect(&server.base, TRANSPORT_WS, Some(&viewer)).await;
    for n in 0..3 {
        second.subscribe(&n.to_string(), feed, json!({})).await;
    }
    let refused = second.next_message().await;
    assert_eq!(refused["id"], "2", "the principal's sixth: {refused}");
    assert!(
        refused["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("per principal")
    );
    // Another principal is not held back by this one.
    let other = server.token(Role::Viewer, Some("acme"));
    let mut third = WsClient::connect(&server.base, TRANSPORT_WS, Some(&other)).await;
    third.subscribe("a", feed, json!({})).await;
    assert!(third.texts_for(Duration::from_millis(300)).await.is_empty());

    // A message larger than a request body may be closes the socket, before or
    // after connection_init.
    let mut big = WsClient::open(&server.base, TRANSPORT_WS).await;
    // The fourth socket is the last one allowed open.
    let url = format!("{}/graphql", server.base.replacen("http", "ws", 1));
    let fifth = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(fifth.is_err(), "a fifth WebSocket was accepted");
    big.send_text(&"x".repeat(100 * 1024)).await;
    big.ending(Duration::from_secs(5)).await;
}

/// While another process holds SQLite's write lock, a mutation cannot commit: past
/// `--request-timeout` it is stopped and answered `INTERNAL`, however it came (HTTP,
/// a WebSocket, an SSE stream), and a query that needs no write still answers. Once
/// the lock is gone the mutations commit, and their events are published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_request_timeout_is_stopped_on_every_transport() {
    use sea_orm::{ConnectionTrait, Database};
    let mut options = Options::default();
    options.serve.request_timeout = Duration::from_millis(300);
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s" }))
        .await;
    let mut lock = sea_orm::ConnectOptions::new(server.database_url.clone());
    lock.max_connections(1).min_connections(1);
    let holder = Database::connect(lock).await.unwrap();
    holder.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
    let mutation = "mutation($id: ID!) { updateProgress(id: $id, progress: 10) { id } }";
    let request = json!({ "query": mutation, "variables": { "id": id } });

    let over_http = server
        .client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(server.admin())
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(over_http.status(), 503);
    let body: Value = over_http.json().await.unwrap();
    assert_eq!(error_code(&body).as_deref(), Some("INTERNAL"), "{body}");
    assert!(body.to_string().contains("--request-timeout"), "{body}");

    let mut socket = WsClient::connect(&server.base, TRANSPORT_WS, Some(&server.admin())).await;
    socket.subscribe("m", mutation, json!({ "id": id })).await;
    let over_ws = socket.next_message().await;
    assert_eq!(over_ws["type"], "error", "{over_ws}");
    assert_eq!(over_ws["payload"][0]["extensions"]["code"], "INTERNAL");

    let over_sse = server
        .client
        .post(format!("{}/graphql/stream", server.base))
        .bearer_auth(server.admin())
        .json(&request)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        over_sse.contains("INTERNAL") && over_sse.contains("--request-timeout"),
        "{over_sse}"
    );
    let me = ask(&server, "{ me { role } }", json!({})).await;
    assert!(
        me["errors"].is_null() && me["data"]["me"]["role"].is_string(),
        "{me}"
    );

    // The mutations nobody waits for any more commit once the lock is gone, and are
    // published as every change is: a subscriber sees their progress.
    let events = "subscription($id: ID!) { executionEvents(executionId: $id) { type progress } }";
    socket.subscribe("e", events, json!({ "id": id })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    holder.execute_unprepared("ROLLBACK").await.unwrap();
    loop {
        let event = socket.next_data("e").await;
        let event = &event["data"]["executionEvents"];
        if event["type"] == "EXECUTION_PROGRESS" {
            assert_eq!(event["progress"], 10.0, "{event}");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_stream_ends_when_its_token_expires() {
    let server = TestServer::start(Backend::Sqlite).await;
    let token = server
        .keys
        .mint(Role::Viewer, None, "brief".into(), Duration::from_secs(2))
        .unwrap();
    let query = "subscription { executionsFeed { type } }";
    let mut response = server
        .client
        .get(format!("{}/graphql/stream", server.base))
        .query(&[("query", query), ("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let opened = Instant::now();
    let mut text = String::new();
    while !text.contains("event: complete") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk()).await;
        match chunk.expect("the stream to end in time").unwrap() {
            Some(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
            None => break,
        }
    }
    assert!(
        text.contains("UNAUTHENTICATED") && text.contains("expired"),
        "{text}"
    );
    assert!(
        opened.elapsed() < Duration::from_secs(8),
        "{:?}",
        opened.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_their_request_are_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(Backend::Sqlite).await;
    let (_process, base) = server
        .serve_process(&["--header-read-timeout", "1s", "--max-connections", "8"])
        .await;
    let address = base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET /healthz HT").await.unwrap();
        slow.push(stream);
    }
    // Every slot is held; the next client is served once the slow ones are dropped.
    let started = Instant::now();
    let answered = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(answered.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for mut stream in slow {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
        assert!(read.await.is_ok(), "a slow connection was kept open");
    }
}
