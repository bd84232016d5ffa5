//! Flow control with the real scheduler: concurrency limits per key checked from the
//! stored start and end times of many executions over many keys, a rate checked
//! from the start times of steps two `exechub worker` processes shared, what a
//! waiting step says it waits on, limits changed while steps wait, slots of a worker
//! killed with SIGKILL given back when its leases run out, a service's 429 with
//! `Retry-After` pausing its key, executions waiting for their customer's slots,
//! fair share under another customer's backlog, and bad limits refused with nothing
//! written.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};

use chrono::{DateTime, TimeDelta, Utc};
use exechub::auth::Role;
use serde_json::{Value, json};
use support::processes::Process;
use support::runs::{self, time};
use support::{Backend, Options, TestServer, error_code};

const SET_LIMIT: &str = "mutation($input: LimitInput!) { setLimit(input: $input) { key concurrency rate burst updatedBy } }";
const REMOVE_LIMIT: &str = "mutation($key: String!) { removeLimit(key: $key) }";
const LIMITS: &str = "{ limits { key concurrency rate keys { key running waiting tokensLeft oldestWaitingSince } } }";
const LIMITS_OF_EXECUTIONS: &str =
    "{ limits { key executions keys { key runningExecutions waitingExecutions } } }";
const STEPS: &str = r#"
query($first: Int) {
  executions(first: $first) {
    nodes { id status customerId createdAt waitingOn steps { id status startedAt completedAt waitingOn } }
  }
}"#;

async fn completed(server: &TestServer, id: &str) -> Value {
    runs::wait_until(server, id, Duration::from_secs(40), |e| {
        e["status"] == "COMPLETED"
    })
    .await
}

async fn set_limit(server: &TestServer, input: Value) {
    server.gql(SET_LIMIT, json!({ "input": input })).await;
}

/// Every execution, once all `count` are COMPLETED (within `limit`).
async fn all_completed(server: &TestServer, count: usize, limit: Duration) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let data = server.gql(STEPS, json!({ "first": count })).await;
        let nodes = data["executions"]["nodes"].as_array().unwrap().clone();
        let done = nodes.iter().filter(|e| e["status"] == "COMPLETED").count();
        if done == count {
            return nodes;
        }
        assert!(
            start.elapsed() < limit,
            "{done} of {count} completed after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The most intervals (start, end) that overlap at any instant.
fn most_at_once(mut intervals: Vec<(DateTime<Utc>, DateTime<Utc>)>) -> usize {
    let mut edges: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for (start, end) in intervals.drain(..) {
        edges.push((start, 1));
        edges.push((end, -1));
    }
    // An end and a start at the same millisecond do not overlap.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        most = most.max(now);
    }
    most as usize
}

async fn concurrency_per_customer_holds_at_every_instant(server: &TestServer) {
    set_limit(
        server,
        json!({ "key": "customer:{customerId}", "concurrency": 2 }),
    )
    .await;
    set_limit(server, json!({ "key": "customer:big", "concurrency": 4 })).await;
    let customers = ["a", "b", "c", "d", "e", "big"];
    let executions = 90;
    for index in 0..executions {
        let customer = customers[index % customers.len()];
        let steps: Vec<Value> = (0..3)
            .map(|s| json!({ "id": format!("s{s}"), "name": "work", "handler": { "kind": "delay", "config": { "ms": 30 } } }))
            .collect();
        server
            .create(json!({ "orderId": format!("o{index}"), "serviceId": "flow", "customerId": customer, "autoStart": true, "steps": steps }))
            .await;
    }
    let nodes = all_completed(server, executions, Duration::from_secs(120)).await;
    let mut by_customer: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for execution in &nodes {
        let customer = execution["customerId"].as_str().unwrap().to_owned();
        for step in execution["steps"].as_array().unwrap() {
            let interval = (time(&step["startedAt"]), time(&step["completedAt"]));
            by_customer
                .entry(customer.clone())
                .or_default()
                .push(interval);
        }
    }
    for (customer, intervals) in by_customer {
        let limit = if customer == "big" { 4 } else { 2 };
        let most = most_at_once(intervals);
        assert!(
            most <= limit,
            "{most} steps of {customer} ran at once (limit {limit})"
        );
        if limit == 2 {
            assert_eq!(most, limit, "{customer}'s backlog used every slot");
        }
    }
    assert_eq!(
        server
            .count("SELECT COUNT(*) FROM limit_usage WHERE running <> 0")
            .await,
        0,
        "every slot was given back"
    );
}

async fn a_waiting_step_says_what_it_waits_on(server: &TestServer) {
    set_limit(server, json!({ "key": "gpu", "concurrency": 1 })).await;
    let step = |ms: u64| json!([{ "id": "s", "name": "render", "concurrencyKey": "gpu", "handler": { "kind": "delay", "config": { "ms": ms } } }]);
    let first = server
        .create(json!({ "orderId": "first", "serviceId": "flow", "autoStart": true, "steps": step(3000) }))
        .await;
    runs::wait_until(server, &first, Duration::from_secs(10), |e| {
        e["steps"][0]["status"] == "RUNNING"
    })
    .await;
    let second = server
        .create(json!({ "orderId": "second", "serviceId": "flow", "autoStart": true, "steps": step(10) }))
        .await;
    let waiting = runs::wait_until(server, &second, Duration::from_secs(5), |e| {
        !e["waitingOn"].is_null()
    })
    .await;
    assert_eq!(waiting["waitingOn"], "concurrency gpu");
    assert_eq!(waiting["steps"][0]["waitingOn"], "concurrency gpu");
    assert_eq!(waiting["steps"][0]["status"], "PENDING");
    let limits = server.gql(LIMITS, json!({})).await;
    let gpu = &limits["limits"][0];
    assert_eq!(gpu["key"], "gpu");
    assert_eq!(gpu["keys"][0]["key"], "gpu");
    assert_eq!(gpu["keys"][0]["running"], 1);
    assert_eq!(gpu["keys"][0]["waiting"], 1);
    assert!(gpu["keys"][0]["oldestWaitingSince"].is_string());
    // The autoscaling signal shows the wait too (the gauges are set every tick).
    let start = Instant::now();
    loop {
        let metrics = reqwest::get(format!("{}/metrics", server.base))
            .await
            .unwrap();
        let metrics = metrics.text().await.unwrap();
        let waits = metrics
            .lines()
            .any(|l| l == r#"exechub_limit_waiting{key="gpu"} 1"#);
        if waits && metrics.contains(r#"exechub_queue_depth{priority="NORMAL"}"#) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The slot frees when the first step ends, and the waiting one starts then.
    let done = completed(server, &second).await;
    let first = completed(server, &first).await;
    let first_end = time(&first["steps"][0]["completedAt"]);
    let second_start = time(&done["steps"][0]["startedAt"]);
    assert!(
        second_start >= first_end,
        "{second_start} before {first_end}"
    );
    assert!(done["steps"][0]["waitingOn"].is_null());
}

async fn a_limit_changed_while_steps_wait_lets_them_go(server: &TestServer) {
    // Concurrency 0: nothing of the key starts.
    set_limit(server, json!({ "key": "paused-vendor", "concurrency": 0 })).await;
    let mut ids = Vec::new();
    for index in 0..3 {
        let steps = json!([{ "id": "s", "name": "call", "concurrencyKey": "paused-vendor", "handler": { "kind": "echo" } }]);
        ids.push(
            server
                .create(json!({ "orderId": format!("o{index}"), "serviceId": "flow", "autoStart": true, "steps": steps }))
                .await,
        );
    }
    for id in &ids {
        runs::wait_until(server, id, Duration::from_secs(5), |e| {
            e["steps"][0]["waitingOn"] == "concurrency paused-vendor"
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in &ids {
        let execution = runs::execution(server, id).await;
        assert_eq!(execution["steps"][0]["status"], "PENDING", "still waiting");
    }
    let removed = server
        .gql(REMOVE_LIMIT, json!({ "key": "paused-vendor" }))
        .await;
    assert_eq!(removed["removeLimit"], true);
    for id in &ids {
        completed(server, id).await;
    }
    let again = server
        .gql(REMOVE_LIMIT, json!({ "key": "paused-vendor" }))
        .await;
    assert_eq!(again["removeLimit"], false);
    let audited = server
        .count("SELECT COUNT(*) FROM audit_log WHERE action IN ('setLimit', 'removeLimit') AND CAST(detail AS TEXT) LIKE '%paused-vendor%'")
        .await;
    assert_eq!(audited, 2, "the set and the removal are audited");
}

async fn executions_over_their_customers_limit_wait_queued(server: &TestServer) {
    set_limit(
        server,
        json!({ "key": "customer:{customerId}", "executions": 2 }),
    )
    .await;
    let steps = json!([{ "id": "s", "name": "work", "handler": { "kind": "delay", "config": { "ms": 1500 } } }]);
    let mut ids = Vec::new();
    for index in 0..6 {
        let input = json!({ "orderId": format!("o{index}"), "serviceId": "flow", "customerId": "acme", "autoStart": true, "steps": steps });
        ids.push(server.create(input).await);
    }
    // One started by hand, and one of another customer, which has slots of its own.
    let by_hand =
        json!({ "orderId": "by-hand", "serviceId": "flow", "customerId": "acme", "steps": steps });
    let by_hand = server.create(by_hand).await;
    let start = "mutation($id: ID!) { startExecution(id: $id) { status waitingOn } }";
    let started = server.gql(start, json!({ "id": by_hand })).await;
    assert_eq!(started["startExecution"]["status"], "QUEUED");
    assert_eq!(
        started["startExecution"]["waitingOn"],
        "executions customer:acme"
    );
    ids.push(by_hand);
    let other = json!({ "orderId": "other", "serviceId": "flow", "customerId": "zeta", "autoStart": true, "steps": steps });
    let other = server.create(other).await;
    let other = runs::wait_until(server, &other, Duration::from_secs(2), |e| {
        e["status"] != "QUEUED"
    })
    .await;
    assert!(other["waitingOn"].is_null(), "{other}");
    let limits = server.gql(LIMITS_OF_EXECUTIONS, json!({})).await;
    let acme = &limits["limits"][0]["keys"][0];
    assert_eq!(acme["key"], "customer:acme", "{limits}");
    assert_eq!(acme["runningExecutions"], 2, "{limits}");
    assert_eq!(acme["waitingExecutions"], 5, "{limits}");
    let mut intervals = Vec::new();
    for id in &ids {
        completed(server, id).await;
        let query = "query($id: ID!) { execution(id: $id) { metadata { startedAt completedAt } } }";
        let done = server.gql(query, json!({ "id": id })).await;
        let times = &done["execution"]["metadata"];
        intervals.push((time(&times["startedAt"]), time(&times["completedAt"])));
    }
    assert_eq!(
        most_at_once(intervals),
        2,
        "two of acme's executions at a time"
    );
    assert_eq!(
        server
            .count("SELECT COUNT(*) FROM limit_usage WHERE executions <> 0 OR running <> 0")
            .await,
        0,
        "every slot was given back"
    );
}

async fn a_step_a_client_starts_counts_against_its_key(server: &TestServer) {
    set_limit(server, json!({ "key": "desk", "concurrency": 1 })).await;
    let steps = json!([{ "id": "a", "name": "a", "concurrencyKey": "desk" }, { "id": "b", "name": "b", "concurrencyKey": "desk" }]);
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "flow", "autoStart": true, "steps": steps }))
        .await;
    server.start_step(&id, "a").await;
    let start = "mutation($id: ID!) { startStep(executionId: $id, step: { id: \"b\" }) { id } }";
    let body = server
        .gql_as(Some(&server.admin()), start, json!({ "id": id }))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    let complete =
        "mutation($id: ID!) { completeStep(executionId: $id, stepId: \"a\") { status } }";
    server.gql(complete, json!({ "id": id })).await;
    server.start_step(&id, "b").await;
}

async fn bad_limits_are_refused_naming_the_field(server: &TestServer) {
    let cases = [
        (json!({ "key": "openai", "concurrency": -1 }), "concurrency"),
        (json!({ "key": "openai", "executions": -2 }), "executions"),
        (json!({ "key": "openai", "rate": "sixty a minute" }), "rate"),
        (json!({ "key": "openai", "rate": "0/min" }), "rate"),
        (
            json!({ "key": "openai", "rate": "60/min", "burst": 0 }),
            "burst",
        ),
        (
            json!({ "key": "customer:{tenant}", "concurrency": 1 }),
            "key",
        ),
        (json!({ "key": "share x", "concurrency": 1 }), "key"),
        (json!({ "key": "openai" }), "concurrency"),
    ];
    for (input, field) in cases {
        let body = server
            .gql_as(Some(&server.admin()), SET_LIMIT, json!({ "input": input }))
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{input}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{input}");
    }
    let operator = server.token(Role::Operator, None);
    let input = json!({ "input": { "key": "openai", "concurrency": 1 } });
    let body = server.gql_as(Some(&operator), SET_LIMIT, input).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let tenant = server.token(Role::Operator, Some("acme"));
    let body = server.gql_as(Some(&tenant), LIMITS, json!({})).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let limits = server.gql_as(Some(&operator), LIMITS, json!({})).await;
    assert_eq!(limits["data"]["limits"], json!([]), "nothing was written");
    assert_eq!(server.count("SELECT COUNT(*) FROM limits").await, 0);
}

/// How many of A's steps started after B's execution was created and before B's
/// step started, with A's 1,000 steps (150 ms each, over 64 worker slots: a backlog
/// of over two seconds) started just before B was created.
async fn a_steps_ahead_of_b(server: &TestServer) -> usize {
    let steps: Vec<Value> = (0..100)
        .map(|s| json!({ "id": format!("s{s}"), "name": "work", "dependsOn": [], "handler": { "kind": "delay", "config": { "ms": 150 } } }))
        .collect();
    let mut backlog = Vec::new();
    for index in 0..10 {
        let input = json!({ "orderId": format!("a{index}"), "serviceId": "flow", "customerId": "a", "steps": steps });
        backlog.push(server.create(input).await);
    }
    let start = "mutation($id: ID!) { startExecution(id: $id) { id } }";
    for id in &backlog {
        server.gql(start, json!({ "id": id })).await;
    }
    let single = json!([{ "id": "only", "name": "only", "handler": { "kind": "echo" } }]);
    let input = json!({ "orderId": "b", "serviceId": "flow", "customerId": "b", "autoStart": true, "steps": single });
    let b = server.create(input).await;
    let b = completed(server, &b).await;
    let b_started = time(&b["steps"][0]["startedAt"]);
    let nodes = all_completed(server, 11, Duration::from_secs(120)).await;
    let b_created = nodes
        .iter()
        .find(|e| e["customerId"] == "b")
        .map(|e| time(&e["createdAt"]))
        .unwrap();
    nodes
        .iter()
        .filter(|e| e["customerId"] == "a")
        .flat_map(|e| e["steps"].as_array().unwrap().clone())
        .filter(|s| {
            let started = time(&s["startedAt"]);
            started > b_created && started < b_started
        })
        .count()
}

async fn a_single_step_of_one_customer_is_not_held_back_by_anothers_backlog(server: &TestServer) {
    // As many as the worker slots: A alone still fills them all, and B's step waits
    // for at most about one turn of them.
    set_limit(
        server,
        json!({ "key": "customer:{customerId}", "share": 64 }),
    )
    .await;
    let ahead = a_steps_ahead_of_b(server).await;
    assert!(
        ahead <= 2 * 64,
        "{ahead} of A's steps started while B's waited"
    );
}

/// The same without a share: what the share is for (and what shows the check above
/// can fail).
async fn without_a_share_another_customers_backlog_goes_first(server: &TestServer) {
    let ahead = a_steps_ahead_of_b(server).await;
    assert!(
        ahead > 2 * 64,
        "only {ahead} of A's steps started while B's waited"
    );
}

/// A local endpoint that answers its first call 429 with `Retry-After: 2` and the
/// others 200, recording when each call came.
async fn rate_limited_endpoint() -> (String, Arc<Mutex<Vec<Instant>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorded = calls.clone();
    let answer = move || {
        let calls = recorded.clone();
        async move {
            let first = {
                let mut calls = calls.lock().unwrap();
                calls.push(Instant::now());
                calls.len() == 1
            };
            let status = if first {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::OK
            };
            (
                status,
                [(header::RETRY_AFTER, "2")],
                axum::Json(json!({ "ok": !first })),
            )
        }
    };
    let app = axum::Router::new().route("/call", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/call"), calls)
}

async fn a_429_with_retry_after_pauses_the_key(server: &TestServer) {
    set_limit(server, json!({ "key": "vendor", "rate": "100/s" })).await;
    let (url, calls) = rate_limited_endpoint().await;
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "flow", "autoStart": true,
            "retryPolicy": { "maxRetries": 2, "backoff": "LINEAR", "initialDelayMs": 10, "jitter": false },
            "steps": [{ "id": "call", "name": "Call", "concurrencyKey": "vendor", "handler": { "kind": "http", "config": { "url": url } } }]
        }))
        .await;
    runs::wait_until(server, &id, Duration::from_secs(5), |e| {
        e["steps"][0]["waitingOn"] == "rate vendor"
    })
    .await;
    completed(server, &id).await;
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let waited = calls[1] - calls[0];
    assert!(
        waited >= Duration::from_millis(1900),
        "called again after {waited:?}"
    );
}

backend_tests!(
    a_429_with_retry_after_pauses_the_key,
    concurrency_per_customer_holds_at_every_instant,
    a_waiting_step_says_what_it_waits_on,
    a_limit_changed_while_steps_wait_lets_them_go,
    executions_over_their_customers_limit_wait_queued,
    a_step_a_client_starts_counts_against_its_key,
    a_single_step_of_one_customer_is_not_held_back_by_anothers_backlog,
    without_a_share_another_customers_backlog_goes_first,
    bad_limits_are_refused_naming_the_field,
);

/// A server that runs no steps itself, with `limit` set, and `count` worker
/// processes beside it (a process reads limits set elsewhere within a second: these
/// are set before the workers start).
async fn limited_with_workers(
    backend: Backend,
    limit: Value,
    count: usize,
) -> (TestServer, Vec<Process>) {
    let mut options = Options::default();
    options.serve.no_workers = true;
    let server = TestServer::start_with(backend, options).await;
    set_limit(&server, limit).await;
    let workers = (0..count)
        .map(|_| Process(server.spawn("worker", &[])))
        .collect();
    (server, workers)
}

async fn two_workers_share_a_rate(backend: Backend) {
    let limit = json!({ "key": "openai", "rate": "20/s", "burst": 3 });
    let (server, _workers) = limited_with_workers(backend, limit, 2).await;
    let executions = 60;
    for index in 0..executions {
        let steps = json!([{ "id": "s", "name": "call", "concurrencyKey": "openai", "handler": { "kind": "echo" } }]);
        server
            .create(json!({ "orderId": format!("o{index}"), "serviceId": "flow", "autoStart": true, "steps": steps }))
            .await;
    }
    let limits = server.gql(LIMITS, json!({})).await;
    assert_eq!(limits["limits"][0]["rate"], "20/1s");
    let nodes = all_completed(&server, executions, Duration::from_secs(60)).await;
    let mut starts: Vec<DateTime<Utc>> = nodes
        .iter()
        .map(|e| time(&e["steps"][0]["startedAt"]))
        .collect();
    starts.sort();
    for (index, first) in starts.iter().enumerate() {
        let within = starts[index..]
            .iter()
            .take_while(|t| **t - *first < TimeDelta::seconds(1))
            .count();
        let offsets: Vec<i64> = starts
            .iter()
            .map(|t| (*t - starts[0]).num_milliseconds())
            .collect();
        assert!(
            within <= 20 + 3,
            "{within} starts within a second of {first}: {offsets:?}"
        );
    }
    let span = *starts.last().unwrap() - starts[0];
    assert!(
        span >= TimeDelta::milliseconds(2700),
        "60 starts at 20/s took only {span}"
    );
}

async fn slots_of_a_killed_worker_free_when_its_leases_run_out(backend: Backend) {
    let limit = json!({ "key": "gpu", "concurrency": 1 });
    let (server, mut workers) = limited_with_workers(backend, limit, 1).await;
    let step = |ms: u64| json!([{ "id": "s", "name": "render", "concurrencyKey": "gpu", "handler": { "kind": "delay", "config": { "ms": ms } } }]);
    let first = server
        .create(json!({ "orderId": "first", "serviceId": "flow", "autoStart": true, "steps": step(4000) }))
        .await;
    runs::wait_until(&server, &first, Duration::from_secs(15), |e| {
        e["steps"][0]["status"] == "RUNNING"
    })
    .await;
    let second = server
        .create(json!({ "orderId": "second", "serviceId": "flow", "autoStart": true, "steps": step(10) }))
        .await;
    runs::wait_until(&server, &second, Duration::from_secs(10), |e| {
        e["steps"][0]["waitingOn"] == "concurrency gpu"
    })
    .await;
    let mut killed = workers.pop().unwrap();
    killed.0.kill().expect("SIGKILL the worker");
    killed.0.wait().unwrap();
    let _replacement = Process(server.spawn("worker", &[]));
    for id in [&second, &first] {
        completed(&server, id).await;
    }
    assert_eq!(
        server
            .count("SELECT COUNT(*) FROM limit_usage WHERE running <> 0")
            .await,
        0,
        "no slot leaked"
    );
}

/// The limits file: set at start with `setLimit`'s field names, or, when one of its
/// limits is bad or a key is named twice, the start stops and nothing is written.
async fn the_limits_file_is_set_at_start_all_or_none(backend: Backend) {
    let server = TestServer::start(backend).await;
    std::fs::create_dir_all(&server.data_dir).unwrap();
    let good = "[[limit]]\nkey = \"customer:{customerId}\"\nconcurrency = 5\nshare = 64\nmaxCost = 50.0\nbudgetPeriod = \"MONTH\"\n";
    let bad_rate = format!("{good}\n[[limit]]\nkey = \"openai\"\nrate = \"sixty\"\n");
    let twice = format!("{good}\n{good}");
    for (name, text) in [("bad-rate.toml", bad_rate), ("twice.toml", twice)] {
        let path = server.data_dir.join(name);
        std::fs::write(&path, text).unwrap();
        let mut refused = Process(server.spawn(
            "serve",
            &[
                "--no-workers",
                "--bind",
                "127.0.0.1:0",
                "--limits",
                path.to_str().unwrap(),
            ],
        ));
        let status = refused.exit_within(Duration::from_secs(30)).await;
        assert!(!status.success(), "{name}: the start went on");
        assert_eq!(
            server.count("SELECT COUNT(*) FROM limits").await,
            0,
            "{name}: nothing written"
        );
    }
    let path = server.data_dir.join("limits.toml");
    std::fs::write(&path, good).unwrap();
    let (_serving, base) = server
        .serve_process(&["--limits", path.to_str().unwrap()])
        .await;
    let query = "{ limits { key concurrency share maxCost budgetPeriod updatedBy } }";
    let limits = support::post_gql(
        &server.client,
        &base,
        Some(&server.admin()),
        query,
        json!({}),
    )
    .await;
    let expected = json!([{ "key": "customer:{customerId}", "concurrency": 5, "share": 64, "maxCost": 50.0, "budgetPeriod": "MONTH", "updatedBy": "config" }]);
    assert_eq!(limits["data"]["limits"], expected, "{limits}");
}

backend_suites!(
    the_limits_file_is_set_at_start_all_or_none,
    two_workers_share_a_rate,
    slots_of_a_killed_worker_free_when_its_leases_run_out,
);
