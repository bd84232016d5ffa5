//! Listing executions: filters (status, service, customer, tags, nesting), ordering,
//! and Relay pagination forward and backward with stable cursors.

mod support;

use serde_json::{Value, json};
use support::{TestServer, list_query};

async fn list(server: &TestServer, variables: Value) -> Value {
    server.gql(&list_query("orderId"), variables).await["executions"].clone()
}

fn order_ids(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["orderId"].as_str().unwrap().to_owned())
        .collect()
}

async fn seed(server: &TestServer) {
    for i in 0..12 {
        let priority = ["LOW", "NORMAL", "HIGH", "URGENT"][i % 4];
        let input = json!({
            "orderId": format!("o{i:02}"),
            "serviceId": if i.is_multiple_of(2) { "even" } else { "odd" },
            "customerId": if i % 3 == 0 { "acme" } else { "globex" },
            "priority": priority,
            "tags": if i % 4 == 0 { json!(["prod", "llm"]) } else { json!(["dev"]) },
            "autoStart": i % 5 == 0,
        });
        server.create(input).await;
    }
}

async fn filters_select_in_sql(server: &TestServer) {
    seed(server).await;
    let count = |filter: Value| async move {
        list(server, json!({ "filter": filter, "first": 500 })).await["totalCount"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count(json!({})).await, 12);
    assert_eq!(count(json!({ "status": { "eq": "RUNNING" } })).await, 3);
    assert_eq!(count(json!({ "status": { "in": ["QUEUED"] } })).await, 9);
    assert_eq!(count(json!({ "serviceId": { "eq": "even" } })).await, 6);
    assert_eq!(count(json!({ "customerId": { "eq": "acme" } })).await, 4);
    assert_eq!(count(json!({ "customerId": { "ne": "acme" } })).await, 8);
    assert_eq!(count(json!({ "priority": { "gte": "HIGH" } })).await, 6);
    assert_eq!(
        count(json!({ "tags": { "hasAll": ["prod", "llm"] } })).await,
        3
    );
    assert_eq!(count(json!({ "tags": { "hasNone": ["prod"] } })).await, 9);
    assert_eq!(
        count(json!({ "orderId": { "in": ["o01", "o02", "zz"] } })).await,
        2
    );
    assert_eq!(
        count(
            json!({ "or": [{ "serviceId": { "eq": "even" } }, { "customerId": { "eq": "acme" } }] })
        )
        .await,
        8
    );
    assert_eq!(
        count(json!({ "not": { "serviceId": { "eq": "even" } } })).await,
        6
    );
    assert_eq!(
        count(
            json!({ "and": [{ "serviceId": { "eq": "even" } }, { "status": { "eq": "RUNNING" } }] })
        )
        .await,
        2
    );
    assert_eq!(count(json!({ "startedAt": { "isNull": false } })).await, 3);
}

async fn pages_walk_forward_and_backward(server: &TestServer) {
    seed(server).await;
    let all = order_ids(
        &list(
            server,
            json!({ "first": 500, "orderBy": [{ "field": "PRIORITY", "direction": "DESC" }] }),
        )
        .await,
    );
    assert_eq!(all.len(), 12);

    // Forward, 5 at a time.
    let mut forward = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = list(server, json!({ "first": 5, "after": after, "orderBy": [{ "field": "PRIORITY", "direction": "DESC" }] })).await;
        forward.extend(order_ids(&page));
        assert_eq!(page["pageInfo"]["hasPreviousPage"], after.is_some());
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(String::from);
    }
    assert_eq!(forward, all);

    // Backward, 5 at a time.
    let mut backward: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = list(server, json!({ "last": 5, "before": before, "orderBy": [{ "field": "PRIORITY", "direction": "DESC" }] })).await;
        let mut ids = order_ids(&page);
        ids.extend(backward);
        backward = ids;
        if page["pageInfo"]["hasPreviousPage"] == false {
            break;
        }
        before = page["pageInfo"]["startCursor"].as_str().map(String::from);
    }
    assert_eq!(backward, all);

    // The default order is newest first.
    let newest = order_ids(&list(server, json!({ "first": 3 })).await);
    assert_eq!(newest, ["o11", "o10", "o09"]);
}

/// A page's executions get their own steps, checkpoints, webhooks, logs and events
/// when these are read for the whole page at once.
async fn lists_load_each_executions_own_parts(server: &TestServer) {
    for i in 0..6usize {
        let steps: Vec<Value> = (0..=i)
            .map(|s| json!({ "id": format!("e{i}s{s}"), "name": format!("step {s} of {i}") }))
            .collect();
        let webhooks = if i.is_multiple_of(2) {
            json!([{ "url": format!("https://example.com/{i}"), "events": ["EXECUTION_COMPLETED"] }])
        } else {
            json!([])
        };
        let id = server
            .create(json!({ "orderId": format!("o{i}"), "serviceId": "parts", "steps": steps, "webhooks": webhooks }))
            .await;
        for n in 0..i {
            let level = if n % 2 == 0 { "INFO" } else { "WARN" };
            server
                .gql(
                    "mutation($id: ID!, $m: String!, $l: LogLevel!) { appendLog(id: $id, log: { message: $m, level: $l }) { id } }",
                    json!({ "id": id, "m": format!("log {n} of {i}"), "l": level }),
                )
                .await;
        }
        for c in 0..i % 3 {
            server
                .gql(
                    "mutation($id: ID!, $n: Int!) { createCheckpoint(id: $id, input: { state: { n: $n } }) { id } }",
                    json!({ "id": id, "n": c }),
                )
                .await;
        }
    }
    let page = server
        .gql(
            "{ executions(first: 50) { nodes { orderId steps { id } checkpoints { state }
                 latestCheckpoint { state } webhooks { url }
                 logs(first: 2) { nodes { message } pageInfo { hasNextPage } totalCount }
                 warnings: logs(level: [WARN]) { nodes { message } }
                 events(afterSequence: 1, first: 3) { sequence } } } }",
            json!({}),
        )
        .await;
    let nodes = page["executions"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6);
    for node in nodes {
        let i: usize = node["orderId"].as_str().unwrap()[1..].parse().unwrap();
        let expected: Vec<String> = (0..=i).map(|s| format!("e{i}s{s}")).collect();
        assert_eq!(each(&node["steps"], "id"), json!(expected), "{node}");
        let checkpoints = each(&node["checkpoints"], "state");
        assert_eq!(checkpoints.as_array().unwrap().len(), i % 3, "{node}");
        let latest = checkpoints.as_array().unwrap().last().cloned();
        assert_eq!(
            node["latestCheckpoint"]["state"],
            latest.unwrap_or(Value::Null),
            "{node}"
        );
        let logs = |numbers: Vec<usize>| {
            json!(
                numbers
                    .iter()
                    .map(|n| format!("log {n} of {i}"))
                    .collect::<Vec<_>>()
            )
        };
        assert_eq!(
            each(&node["logs"]["nodes"], "message"),
            logs((0..i.min(2)).collect()),
            "{node}"
        );
        assert_eq!(node["logs"]["pageInfo"]["hasNextPage"], i > 2, "{node}");
        assert_eq!(node["logs"]["totalCount"], i, "{node}");
        let warnings = logs((0..i).filter(|n| n % 2 == 1).collect());
        assert_eq!(
            each(&node["warnings"]["nodes"], "message"),
            warnings,
            "{node}"
        );
        // Created (1), then a LOG_APPENDED per log and a CHECKPOINT_CREATED per checkpoint.
        let last = (1 + i + i % 3).min(4);
        assert_eq!(
            each(&node["events"], "sequence"),
            json!((2..=last).collect::<Vec<_>>()),
            "{node}"
        );
        let urls = if i.is_multiple_of(2) {
            json!([format!("https://example.com/{i}")])
        } else {
            json!([])
        };
        assert_eq!(each(&node["webhooks"], "url"), urls, "{node}");
    }
}

/// `field` of every element of the JSON array `list`, as a JSON array.
fn each(list: &Value, field: &str) -> Value {
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"));
    items.iter().map(|item| item[field].clone()).collect()
}

backend_tests!(
    filters_select_in_sql,
    pages_walk_forward_and_backward,
    lists_load_each_executions_own_parts
);
