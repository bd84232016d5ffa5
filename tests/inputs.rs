//! Bad input gets a BAD_USER_INPUT naming the field and writes nothing; idempotency
//! keys create an execution once per tenant, even under concurrent requests.

mod support;

use exechub::auth::Role;
use serde_json::{Value, json};
use support::{TestServer, error_code};

const CREATE: &str =
    "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }";

fn steps(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({ "id": format!("s{i}"), "name": "step" }))
            .collect(),
    )
}

async fn written(server: &TestServer) -> (i64, i64, i64) {
    (
        server.count("SELECT COUNT(*) FROM executions").await,
        server.count("SELECT COUNT(*) FROM execution_events").await,
        server.count("SELECT COUNT(*) FROM execution_logs").await,
    )
}

async fn bad_input_names_the_field_and_writes_nothing(server: &TestServer) {
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s", "autoStart": true, "steps": [{ "id": "a", "name": "A" }] }))
        .await;
    let long = "x".repeat(300);
    let base = json!({ "orderId": "o", "serviceId": "s" });
    let with = |extra: Value| {
        let mut input = base.clone();
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "input": input })
    };
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "input.timeoutMs",
            CREATE,
            with(json!({ "timeoutMs": 86_400_001 })),
        ),
        ("input.timeoutMs", CREATE, with(json!({ "timeoutMs": 0 }))),
        (
            "input.steps[1].id",
            CREATE,
            with(json!({ "steps": [{ "id": "a", "name": "A" }, { "id": "a", "name": "B" }] })),
        ),
        (
            "input.steps[0].dependsOn",
            CREATE,
            with(json!({ "steps": [{ "id": "a", "name": "A", "dependsOn": ["zz"] }] })),
        ),
        (
            "input.steps[0].handler.kind",
            CREATE,
            with(json!({ "steps": [{ "id": "a", "name": "A", "handler": { "kind": "nosuch" } }] })),
        ),
        (
            "input.steps",
            CREATE,
            with(
                json!({ "steps": [{ "id": "a", "name": "A", "dependsOn": ["b"] }, { "id": "b", "name": "B" }] }),
            ),
        ),
        ("input.steps", CREATE, with(json!({ "steps": steps(1001) }))),
        ("input.orderId", CREATE, with(json!({ "orderId": long }))),
        ("input.orderId", CREATE, with(json!({ "orderId": "" }))),
        (
            "input.metadata",
            CREATE,
            with(json!({ "metadata": { "blob": "y".repeat(300 * 1024) } })),
        ),
        (
            "input.webhooks[0].url",
            CREATE,
            with(json!({ "webhooks": [{ "url": "ftp://x", "events": ["EXECUTION_COMPLETED"] }] })),
        ),
        (
            "input.retryPolicy.maxRetries",
            CREATE,
            with(json!({ "retryPolicy": { "maxRetries": -1 } })),
        ),
        (
            "input.retryPolicy.retryableErrors",
            CREATE,
            with(json!({ "retryPolicy": { "maxRetries": 1, "retryableErrors": ["bad code"] } })),
        ),
        (
            "input.tags",
            CREATE,
            with(json!({ "tags": [long.clone()] })),
        ),
        (
            "progress",
            "mutation($id: ID!) { updateProgress(id: $id, progress: 100.5) { id } }",
            json!({ "id": id }),
        ),
        (
            "progress",
            "mutation($id: ID!) { updateProgress(id: $id, progress: -1) { id } }",
            json!({ "id": id }),
        ),
        (
            "error.code",
            "mutation($id: ID!) { failExecution(id: $id, error: { code: \"not-snake\", message: \"m\" }) { id } }",
            json!({ "id": id }),
        ),
        (
            "logs[0].message",
            "mutation($id: ID!, $m: String!) { appendLog(id: $id, log: { message: $m }) { id } }",
            json!({ "id": id, "m": "z".repeat(65 * 1024) }),
        ),
        (
            "logs",
            "mutation($id: ID!) { appendLogs(id: $id, logs: []) { id } }",
            json!({ "id": id }),
        ),
        (
            "metrics.cost",
            "mutation($id: ID!) { recordMetrics(id: $id, metrics: { cost: -1 }) { id } }",
            json!({ "id": id }),
        ),
        (
            "metrics.tokensUsed",
            "mutation($id: ID!) { recordMetrics(id: $id, metrics: { tokensUsed: -5 }) { id } }",
            json!({ "id": id }),
        ),
        (
            "input.removeWebhooks",
            "mutation($id: ID!) { updateExecution(id: $id, input: { removeWebhooks: [\"nope\"] }) { id } }",
            json!({ "id": id }),
        ),
        (
            "metrics.costBreakdown",
            "mutation($id: ID!) { recordMetrics(id: $id, metrics: { costBreakdown: { gpu: 1 } }) { id } }",
            json!({ "id": id }),
        ),
        (
            "first",
            "{ executions(first: 501) { totalCount } }",
            json!({}),
        ),
        (
            "first",
            "query($id: ID!) { execution(id: $id) { logs(first: 1000) { totalCount } } }",
            json!({ "id": id }),
        ),
        (
            "after",
            "{ executions(after: \"garbage\") { totalCount } }",
            json!({}),
        ),
    ];
    let before = written(server).await;
    for (field, query, variables) in cases {
        let body = server.gql_as(Some(&server.admin()), query, variables).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{field}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        assert_eq!(
            written(server).await,
            before,
            "{field}: nothing may be written"
        );
    }
}

async fn idempotency_key_creates_once_per_tenant(server: &TestServer) {
    let input = json!({ "input": { "orderId": "o", "serviceId": "s", "customerId": "acme", "idempotencyKey": "order-7" } });
    let operator = server.token(Role::Operator, Some("acme"));
    let requests = (0..8).map(|_| server.gql_as(Some(&operator), CREATE, input.clone()));
    let bodies = futures::future::join_all(requests).await;
    let ids: Vec<&str> = bodies
        .iter()
        .map(|b| {
            b["data"]["createExecution"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{b}"))
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(server.count("SELECT COUNT(*) FROM executions").await, 1);
    assert_eq!(
        server.count("SELECT COUNT(*) FROM execution_events").await,
        1
    );

    let other = server.token(Role::Operator, Some("globex"));
    let body = server
        .gql_as(
            Some(&other),
            CREATE,
            json!({ "input": { "orderId": "o", "serviceId": "s", "idempotencyKey": "order-7" } }),
        )
        .await;
    let other_id = body["data"]["createExecution"]["id"].as_str().unwrap();
    assert_ne!(other_id, ids[0], "keys are per tenant");
    assert_eq!(server.count("SELECT COUNT(*) FROM executions").await, 2);
}

backend_tests!(
    bad_input_names_the_field_and_writes_nothing,
    idempotency_key_creates_once_per_tenant
);
