//! Webhooks end to end against a real receiver: the signed payload and headers, a
//! receiver that answers 500 twice gets the event on the third attempt, every attempt
//! is readable through `Webhook.deliveries`, the secret never is, and private
//! destinations are refused unless allowed.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::{Backend, Options, TestServer};

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver that answers 500 to its first `failures` requests, then 200.
async fn receiver(failures: usize) -> (String, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                log.push((headers, body));
                if log.len() <= failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook"), received)
}

const DELIVERIES: &str = "query($id: ID!) { execution(id: $id) { webhooks {
  id url events headers retries timeoutMs
  deliveries { event sequence attempt statusCode ok error durationMs }
} } }";

async fn deliveries(server: &TestServer, id: &str, count: usize) -> Value {
    let started = Instant::now();
    loop {
        let data = server.gql(DELIVERIES, json!({ "id": id })).await;
        let webhook = data["execution"]["webhooks"][0].clone();
        if webhook["deliveries"].as_array().unwrap().len() >= count {
            return webhook;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{webhook:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn signed_and_retried(backend: Backend) {
    let mut options = Options::default();
    options.scheduler.allow_private_destinations = true;
    let server = TestServer::start_with(backend, options).await;
    let (url, received) = receiver(2).await;
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true,
            "steps": [{ "id": "a", "name": "A", "handler": { "kind": "echo" }, "input": { "x": 1 } }],
            "webhooks": [{ "url": url, "events": ["EXECUTION_COMPLETED"], "secret": "s3cret",
                "retries": 3, "timeoutMs": 2000, "headers": { "X-Custom": "yes" } }] }))
        .await;
    let webhook = deliveries(&server, &id, 3).await;
    assert!(
        !webhook.to_string().contains("s3cret"),
        "the secret is never readable"
    );
    let attempts: Vec<(i64, bool, i64)> = webhook["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["attempt"].as_i64().unwrap(),
                d["ok"].as_bool().unwrap(),
                d["statusCode"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = attempts.clone();
    sorted.sort();
    assert_eq!(sorted, [(1, false, 500), (2, false, 500), (3, true, 200)]);
    assert!(
        webhook["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["event"] == "EXECUTION_COMPLETED")
    );

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 3, "nothing after the successful attempt");
    let delivery_ids: Vec<&str> = received
        .iter()
        .map(|(h, _)| h["x-exechub-delivery"].to_str().unwrap())
        .collect();
    assert!(
        delivery_ids.iter().all(|d| *d == delivery_ids[0]),
        "one delivery id across attempts"
    );
    let (headers, body) = &received[2];
    assert_eq!(headers["x-exechub-event"], "execution.completed");
    assert_eq!(headers["x-custom"], "yes");
    assert_eq!(headers["content-type"], "application/json");
    let timestamp = headers["x-exechub-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        headers["x-exechub-signature"].to_str().unwrap(),
        format!("sha256={expected}")
    );
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["event"], "execution.completed");
    assert_eq!(payload["execution"]["id"], id.as_str());
    assert_eq!(payload["execution"]["status"], "COMPLETED");
    assert_eq!(payload["execution"]["progress"], 100.0);
    assert!(payload["sequence"].as_i64().unwrap() > 1);
    assert!(payload["timestamp"].is_string());
}

/// Without `--allow-private-destinations`, a loopback receiver is never called; the refused
/// attempt is recorded with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_destinations_refused() {
    let mut options = Options::default();
    options.scheduler.allow_private_destinations = false;
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    let (url, received) = receiver(0).await;
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s",
            "webhooks": [{ "url": url, "events": ["LOG_APPENDED"], "retries": 0 }] }))
        .await;
    server
        .gql(
            "mutation($id: ID!) { appendLog(id: $id, log: { message: \"hi\" }) { id } }",
            json!({ "id": id }),
        )
        .await;
    let webhook = deliveries(&server, &id, 1).await;
    let delivery = &webhook["deliveries"][0];
    assert_eq!(delivery["ok"], false);
    assert!(
        delivery["error"].as_str().unwrap().contains("private"),
        "{delivery}"
    );
    assert!(delivery["statusCode"].is_null());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(received.lock().unwrap().is_empty());
    assert_eq!(
        deliveries(&server, &id, 1).await["deliveries"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "retries: 0"
    );
}

backend_suites!(
    signed_and_retried,
    the_outbox_delivers_what_was_never_queued
);

/// An event committed whose delivery was never queued (its process died between the
/// commit and the queue) is delivered all the same: it waits in the outbox, written
/// with the event, until the reconciler queues it; once delivered it leaves.
async fn the_outbox_delivers_what_was_never_queued(backend: Backend) {
    let mut options = Options::default();
    options.scheduler.allow_private_destinations = true;
    options.scheduler.reconcile_interval = Duration::from_secs(1);
    let server = TestServer::start_with(backend, options).await;
    let (url, received) = receiver(0).await;
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s",
            "webhooks": [{ "url": url, "events": ["EXECUTION_CANCELLED"] }] }))
        .await;
    // Committed as a rule the scheduler never hears of: no job is queued.
    let scheduler = exechub::auth::Principal::scheduler();
    (server.unheard_service())
        .cancel_execution(&scheduler, &id, None)
        .await
        .expect("cancelled");
    let webhook = deliveries(&server, &id, 1).await;
    assert_eq!(
        webhook["deliveries"][0]["event"], "EXECUTION_CANCELLED",
        "{webhook:#}"
    );
    assert_eq!(webhook["deliveries"][0]["ok"], true);
    let started = Instant::now();
    while server.count("SELECT COUNT(*) FROM webhook_outbox").await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the outbox row stayed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(received.lock().unwrap().len(), 1, "delivered once");
}
