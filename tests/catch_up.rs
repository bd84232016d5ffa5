//! Subscribers that fall behind the bus catch up from the events table: those that
//! ask for the same execution from the same sequence at the same time share one
//! read, and a read asked for after it finished sees what was committed since.

mod support;

use exechub::config::StoreConfig;
use exechub::events::catch_up::CatchUps;
use exechub::store::Store;
use serde_json::json;
use support::{Backend, TestServer};

const APPEND: &str = "mutation($id: ID!) { appendLog(id: $id, log: { message: \"m\" }) { id } }";

#[tokio::test]
async fn lagging_subscribers_share_one_read() {
    let server = TestServer::start(Backend::Sqlite).await;
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s" }))
        .await;
    for _ in 0..3 {
        server.gql(APPEND, json!({ "id": id })).await;
    }
    let store = Store::connect(&StoreConfig {
        database_url: Some(server.database_url.clone()),
        data_dir: server.data_dir.clone(),
        db_max_connections: None,
    })
    .await
    .unwrap();
    let stored: Vec<i64> = server
        .stored_events(&id)
        .await
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(stored.len(), 4, "created and three logs");

    let catch_ups = CatchUps::default();
    let reads: Vec<_> = (0..50).map(|_| catch_ups.after(&store, &id, 1)).collect();
    let other = catch_ups.after(&store, &id, 2);
    let results = futures::future::try_join_all(reads).await.unwrap();
    for events in &results {
        assert!(
            std::sync::Arc::ptr_eq(events, &results[0]),
            "one read for all"
        );
    }
    let sequences = |events: &[exechub::domain::records::Event]| -> Vec<i64> {
        events.iter().map(|e| e.sequence).collect()
    };
    assert_eq!(sequences(&results[0]), stored[1..]);
    assert_eq!(sequences(&other.await.unwrap()), stored[2..]);

    // Once the read is done, a new one sees what was committed since.
    server.gql(APPEND, json!({ "id": id })).await;
    let later = catch_ups.after(&store, &id, 1).await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&later, &results[0]));
    assert_eq!(later.len(), results[0].len() + 1);
}
