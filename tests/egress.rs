//! What executions may reach and what they show: an `http` step, like a webhook,
//! never reaches a loopback or private address (in any spelling, or through a name
//! that resolves to one) unless `--allow-private-destinations`; webhook headers,
//! which carry credentials, are readable by admins only, and a header that would
//! split the request is refused when the webhook is made.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use exechub::auth::Role;
use serde_json::json;
use support::runs::{step, wait_status};
use support::{Backend, Options, TestServer, error_code};

/// A receiver on loopback that counts its calls.
async fn receiver() -> (u16, Arc<Mutex<usize>>) {
    let calls: Arc<Mutex<usize>> = Arc::default();
    let counted = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            *counted.lock().unwrap() += 1;
            "{}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_steps_never_reach_private_addresses() {
    let mut options = Options::default();
    options.scheduler.allow_private_destinations = false;
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    let (port, calls) = receiver().await;
    let hosts = [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "2130706433",
        "0x7f000001",
        "127.1",
        "[::ffff:127.0.0.1]",
    ];
    for host in hosts {
        let url = format!("http://{host}:{port}/internal");
        let id = server
            .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true,
                "steps": [{ "id": "call", "name": "Call", "handler": { "kind": "http", "config": { "url": url } } }] }))
            .await;
        let failed = wait_status(&server, &id, "FAILED").await;
        assert_eq!(
            failed["error"]["code"], "DESTINATION_REFUSED",
            "{host}: {failed:#}"
        );
        assert_eq!(failed["error"]["recoverable"], false);
        assert!(
            failed["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--allow-private-destinations")
        );
        assert_eq!(step(&failed, "call")["output"], serde_json::Value::Null);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*calls.lock().unwrap(), 0, "an internal address was called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_headers_are_for_admins_and_well_formed() {
    let server = TestServer::start(Backend::Sqlite).await;
    let headers = json!({ "Authorization": "Bearer DEST-SECRET", "X-Team": "blue" });
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s", "webhooks": [
            { "url": "https://example.com/hook", "events": ["EXECUTION_COMPLETED"], "headers": headers }
        ] }))
        .await;
    let read = "query($id: ID!) { execution(id: $id) { webhooks { headers } } }";
    let as_admin = server
        .gql_as(Some(&server.admin()), read, json!({ "id": id }))
        .await;
    assert_eq!(
        as_admin["data"]["execution"]["webhooks"][0]["headers"],
        headers
    );
    for role in [Role::Viewer, Role::Operator, Role::Agent] {
        let token = server.token(role, None);
        let body = server.gql_as(Some(&token), read, json!({ "id": id })).await;
        assert_eq!(
            body["data"]["execution"]["webhooks"][0]["headers"],
            json!({ "Authorization": "[redacted]", "X-Team": "[redacted]" }),
            "{role:?}: {body}"
        );
    }
    for bad in [
        json!({ "X-Split": "a\r\nInjected: yes" }),
        json!({ "Bad Name": "v" }),
        json!({ "X-Number": 7 }),
    ] {
        let body = server
            .gql_as(
                Some(&server.admin()),
                "mutation($h: JSON) { createExecution(input: { orderId: \"o\", serviceId: \"s\", webhooks: [{ url: \"https://example.com/h\", events: [EXECUTION_COMPLETED], headers: $h }] }) { id } }",
                json!({ "h": bad }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{bad}: {body}"
        );
    }
}
