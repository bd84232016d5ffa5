//! Budgets through the API: the cost an execution's steps record crosses its
//! `maxCost`, so the next step is not started and the execution is PAUSED with a
//! BUDGET_EXCEEDED event and a WARN log line; raising the budget and resuming
//! goes on. With `onExceed: FAIL` it fails with `BUDGET_EXCEEDED` instead.
//! A customer's budget over all its executions stops them alike. A bad budget is
//! refused naming its field.

mod support;

use serde_json::{Value, json};
use support::{TestServer, error_code};

const EXECUTION: &str = r#"
query($id: ID!) {
  execution(id: $id) {
    status
    budget { maxCost onExceed }
    error { code message }
    steps { id status }
    logs(first: 50) { edges { node { level message } } }
    events(first: 50) { type reason }
  }
}"#;

const COMPLETE: &str = "mutation($id: ID!, $step: ID!, $cost: Float) { completeStep(executionId: $id, stepId: $step, metrics: { cost: $cost }) { status } }";

/// Three external steps one after the other, with `budget`, started.
async fn three_steps(server: &TestServer, budget: Value) -> String {
    let steps: Vec<Value> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let depends: Vec<&str> = if i == 0 {
                vec![]
            } else {
                vec![["a", "b"][i - 1]]
            };
            json!({ "id": id, "name": id, "dependsOn": depends })
        })
        .collect();
    let input = json!({ "orderId": "o", "serviceId": "budgets", "autoStart": true, "budget": budget, "steps": steps });
    server.create(input).await
}

async fn spend(server: &TestServer, id: &str, step: &str, cost: f64) {
    server.start_step(id, step).await;
    let variables = json!({ "id": id, "step": step, "cost": cost });
    server.gql(COMPLETE, variables).await;
}

async fn execution(server: &TestServer, id: &str) -> Value {
    server.gql(EXECUTION, json!({ "id": id })).await["execution"].clone()
}

/// The reason of the execution's BUDGET_EXCEEDED event.
fn budget_exceeded_reason(execution: &Value) -> Value {
    let events = execution["events"].as_array().unwrap();
    let exceeded = events.iter().find(|e| e["type"] == "BUDGET_EXCEEDED");
    exceeded.expect("a BUDGET_EXCEEDED event")["reason"].clone()
}

fn event_types(execution: &Value) -> Vec<&str> {
    let events = execution["events"].as_array().unwrap();
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn crossing_the_cost_pauses_and_a_raise_resumes(server: &TestServer) {
    let id = three_steps(server, json!({ "maxCost": 1.0 })).await;
    spend(server, &id, "a", 0.6).await;
    assert_eq!(execution(server, &id).await["status"], "RUNNING");
    spend(server, &id, "b", 0.6).await;
    let paused = execution(server, &id).await;
    assert_eq!(paused["status"], "PAUSED", "{paused:#}");
    let types = event_types(&paused);
    let tail = ["BUDGET_EXCEEDED", "LOG_APPENDED", "EXECUTION_PAUSED"];
    assert!(types.ends_with(&tail), "{types:?}");
    assert_eq!(
        paused["steps"][2]["status"], "PENDING",
        "c was not handed out"
    );
    let reason = budget_exceeded_reason(&paused);
    assert_eq!(reason, "Budget exceeded: cost 1.2 is over maxCost 1");
    let warned = paused["logs"]["edges"].as_array().unwrap().iter().any(|e| {
        e["node"]["level"] == "WARN"
            && e["node"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Budget exceeded")
    });
    assert!(warned, "{paused:#}");
    // Resuming without more budget pauses again at once.
    let resume = "mutation($id: ID!) { resumeExecution(id: $id) { status } }";
    let again = server.gql(resume, json!({ "id": id })).await;
    assert_eq!(again["resumeExecution"]["status"], "PAUSED");
    let raise = "mutation($id: ID!) { updateExecution(id: $id, input: { budget: { maxCost: 5.0 } }) { budget { maxCost } } }";
    let raised = server.gql(raise, json!({ "id": id })).await;
    assert_eq!(raised["updateExecution"]["budget"]["maxCost"], 5.0);
    let resumed = server.gql(resume, json!({ "id": id })).await;
    assert_eq!(resumed["resumeExecution"]["status"], "RUNNING");
    spend(server, &id, "c", 0.1).await;
    let done = execution(server, &id).await;
    assert_eq!(done["status"], "RUNNING", "within the raised budget");
    assert_eq!(done["steps"][2]["status"], "COMPLETED");
}

async fn fail_on_exceed_fails_with_the_code(server: &TestServer) {
    let id = three_steps(server, json!({ "maxCost": 1.0, "onExceed": "FAIL" })).await;
    spend(server, &id, "a", 2.0).await;
    let failed = execution(server, &id).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    assert_eq!(failed["error"]["code"], "BUDGET_EXCEEDED");
    assert_eq!(failed["steps"][1]["status"], "PENDING", "b never started");
    assert!(event_types(&failed).contains(&"BUDGET_EXCEEDED"));
}

async fn a_customers_budget_stops_all_its_executions(server: &TestServer) {
    let set =
        "mutation($input: LimitInput!) { setLimit(input: $input) { key maxCost budgetPeriod } }";
    let limit = json!({ "key": "customer:{customerId}", "maxCost": 1.0 });
    let set_limit = server.gql(set, json!({ "input": limit })).await;
    assert_eq!(set_limit["setLimit"]["budgetPeriod"], "DAY");
    let of_acme = |order: &str| {
        let steps =
            json!([{ "id": "a", "name": "a" }, { "id": "b", "name": "b", "dependsOn": ["a"] }]);
        json!({ "orderId": order, "serviceId": "budgets", "customerId": "acme", "autoStart": true, "steps": steps })
    };
    let first = server.create(of_acme("first")).await;
    let second = server.create(of_acme("second")).await;
    let other = json!({ "orderId": "other", "serviceId": "budgets", "customerId": "zeta", "autoStart": true, "steps": [{ "id": "a", "name": "a" }] });
    let other = server.create(other).await;
    spend(server, &first, "a", 0.6).await;
    assert_eq!(execution(server, &first).await["status"], "RUNNING");
    spend(server, &second, "a", 0.6).await;
    let paused = execution(server, &second).await;
    assert_eq!(paused["status"], "PAUSED", "{paused:#}");
    let reason = budget_exceeded_reason(&paused);
    assert_eq!(
        reason,
        "Budget exceeded: customer:acme spent 1.2 this day, over maxCost 1"
    );
    // The customer's other execution stops at its next change; another customer's goes on.
    server.start_step(&first, "b").await;
    assert_eq!(execution(server, &first).await["status"], "PAUSED");
    spend(server, &other, "a", 0.5).await;
    assert_eq!(execution(server, &other).await["status"], "RUNNING");
    let limits = "{ limits { keys { key spentCost } } }";
    let keys = server.gql(limits, json!({})).await["limits"][0]["keys"].clone();
    let acme = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "customer:acme")
        .unwrap()
        .clone();
    assert_eq!(acme["spentCost"], 1.2, "{keys}");
    let raised = json!({ "key": "customer:{customerId}", "maxCost": 10.0 });
    server.gql(set, json!({ "input": raised })).await;
    let resume = "mutation($id: ID!) { resumeExecution(id: $id) { status } }";
    let resumed = server.gql(resume, json!({ "id": second })).await;
    assert_eq!(
        resumed["resumeExecution"]["status"],
        "RUNNING",
        "{:#}",
        execution(server, &second).await
    );
    spend(server, &second, "b", 0.1).await;
    assert_eq!(
        execution(server, &second).await["steps"][1]["status"],
        "COMPLETED"
    );
}

async fn a_bad_budget_is_refused(server: &TestServer) {
    let create =
        "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }";
    for (budget, field) in [
        (json!({ "maxCost": -1.0 }), "input.budget.maxCost"),
        (json!({ "maxTokens": 0 }), "input.budget.maxTokens"),
    ] {
        let input = json!({ "orderId": "o", "serviceId": "budgets", "budget": budget });
        let body = server
            .gql_as(Some(&server.admin()), create, json!({ "input": input }))
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    assert_eq!(server.count("SELECT COUNT(*) FROM executions").await, 0);
}

backend_tests!(
    crossing_the_cost_pauses_and_a_raise_resumes,
    fail_on_exceed_fails_with_the_code,
    a_customers_budget_stops_all_its_executions,
    a_bad_budget_is_refused,
);
