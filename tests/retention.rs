//! Log lines older than the retention period are deleted by the periodic job;
//! newer ones, the execution and its events stay.

mod support;

use std::time::{Duration, Instant};

use exechub::config::ServeConfig;
use serde_json::json;
use support::{Backend, Options, TestServer};

async fn old_logs_age_out(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Options {
            serve: ServeConfig {
                bind: "127.0.0.1:0".parse().unwrap(),
                log_retention: Duration::from_secs(3600),
                retention_interval: Duration::from_millis(50),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s" }))
        .await;
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    server
        .gql(
            "mutation($id: ID!, $old: DateTime!) { appendLogs(id: $id, logs: [
               { message: \"old\", timestamp: $old }, { message: \"new\" }]) { id } }",
            json!({ "id": id, "old": two_days_ago }),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let remaining = loop {
        let data = server
            .gql(
                "query($id: ID!) { execution(id: $id) { logs { nodes { message } } events { type } } }",
                json!({ "id": id }),
            )
            .await;
        let messages: Vec<String> = data["execution"]["logs"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect();
        if messages.len() == 1 || Instant::now() > deadline {
            assert_eq!(
                data["execution"]["events"].as_array().unwrap().len(),
                3,
                "events are kept"
            );
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(remaining, ["new"]);
}

#[tokio::test]
async fn old_logs_age_out_on_sqlite() {
    old_logs_age_out(Backend::Sqlite).await;
}

#[tokio::test]
async fn old_logs_age_out_on_postgres() {
    if !support::postgres_configured() {
        eprintln!("EXECHUB_TEST_DATABASE_URL is not set: Postgres run skipped");
        return;
    }
    old_logs_age_out(Backend::Postgres).await;
}
