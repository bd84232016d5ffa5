//! Crash safety with real processes: an `exechub worker` killed with SIGKILL in the
//! middle of a step, and (on Redis) every queued job wiped with FLUSHALL mid-run. In
//! both cases every execution still completes, and no step completes twice.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::processes::Process;
use support::{Backend, Options, TestServer};

const EXECUTION: &str = r#"
query($id: ID!) {
  execution(id: $id) {
    status
    error { code message }
    steps { id status }
    events(first: 200) { type step { id } }
  }
}"#;

async fn wait_until(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let execution = server.gql(EXECUTION, json!({ "id": id })).await["execution"].clone();
        if done(&execution) {
            return execution;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up: {execution:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many events of `kind` each step has.
fn count_events(execution: &Value, kind: &str, step: &str) -> usize {
    execution["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind && e["step"]["id"] == step)
        .count()
}

async fn worker_killed_mid_step(backend: Backend) {
    let mut options = Options::default();
    options.serve.no_workers = true;
    let server = TestServer::start_with(backend, options).await;
    let mut worker = server.spawn("worker", &[]);
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "crash", "autoStart": true,
            "steps": [
                { "id": "slow", "name": "Slow", "handler": { "kind": "delay", "config": { "ms": 2500 } } },
                { "id": "after", "name": "After", "handler": { "kind": "echo" } }
            ]
        }))
        .await;
    wait_until(&server, &id, |e| e["steps"][0]["status"] == "RUNNING").await;
    worker.kill().expect("SIGKILL the worker");
    worker.wait().unwrap();
    let mut replacement = server.spawn("worker", &[]);
    let done = wait_until(&server, &id, |e| e["status"] == "COMPLETED").await;
    replacement.kill().unwrap();
    replacement.wait().unwrap();
    assert_eq!(
        count_events(&done, "STEP_STARTED", "slow"),
        2,
        "re-ran after the lease expired"
    );
    assert_eq!(
        count_events(&done, "STEP_COMPLETED", "slow"),
        1,
        "completed once"
    );
    assert_eq!(
        count_events(&done, "STEP_COMPLETED", "after"),
        1,
        "completed once"
    );
}

/// FLUSHALL while executions are mid-run: the reconciler re-queues what Redis lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flushall_mid_run() {
    let Ok(redis_url) = std::env::var("EXECHUB_TEST_REDIS_URL") else {
        eprintln!("EXECHUB_TEST_REDIS_URL is not set: skipped");
        return;
    };
    let backend = if support::postgres_configured() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let mut options = Options::default();
    options.scheduler.redis_url = Some(redis_url.clone());
    options.scheduler.concurrency = 4;
    let server = TestServer::start_with(backend, options).await;
    let steps: Vec<Value> = (0..5)
        .map(|i| json!({ "id": format!("s{i}"), "name": "S", "handler": { "kind": "delay", "config": { "ms": 100 } } }))
        .collect();
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(
            server
                .create(json!({ "orderId": "o", "serviceId": "flush", "autoStart": true, "steps": steps }))
                .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = redis::Client::open(redis_url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    // ASYNC: the keys are gone at once, their memory is freed in the background, so
    // the command answers within the client's timeout however much Redis held.
    let _: () = redis::cmd("FLUSHALL")
        .arg("ASYNC")
        .query_async(&mut connection)
        .await
        .unwrap();
    for id in &ids {
        let done = wait_until(&server, id, |e| e["status"] == "COMPLETED").await;
        for i in 0..5 {
            assert_eq!(count_events(&done, "STEP_COMPLETED", &format!("s{i}")), 1);
        }
    }
}

/// A step that kills its worker every time (out of memory, a crash in a handler)
/// does not run forever: each lost lease is a failed attempt ("worker lost"), and
/// once the retries for lost attempts are spent the execution is FAILED.
async fn a_step_that_kills_every_worker_ends_failed(backend: Backend) {
    let mut options = Options::default();
    options.serve.no_workers = true;
    let server = TestServer::start_with(backend, options).await;
    let id = server
        .create(json!({
            "orderId": "o", "serviceId": "crash", "autoStart": true,
            "steps": [{ "id": "fatal", "name": "Fatal", "handler": { "kind": "delay", "config": { "ms": 60000 } } }]
        }))
        .await;
    // Each worker finds the previous one's lease run out, retries the step, and dies
    // running it: three attempts (the first and two retries for lost attempts).
    for attempt in 1..=3 {
        let mut worker = Process(server.spawn("worker", &[]));
        wait_until(&server, &id, |e| {
            e["steps"][0]["status"] == "RUNNING"
                && count_events(e, "STEP_STARTED", "fatal") == attempt
        })
        .await;
        worker.0.kill().expect("SIGKILL the worker");
        worker.0.wait().unwrap();
    }
    let _last = Process(server.spawn("worker", &[]));
    let failed = wait_until(&server, &id, |e| e["status"] == "FAILED").await;
    assert_eq!(
        count_events(&failed, "STEP_STARTED", "fatal"),
        3,
        "{failed:#}"
    );
    assert_eq!(
        count_events(&failed, "STEP_FAILED", "fatal"),
        3,
        "{failed:#}"
    );
    assert_eq!(failed["error"]["code"], "SYSTEM_ERROR");
    assert_eq!(failed["error"]["message"], "worker lost");
}

backend_suites!(
    worker_killed_mid_step,
    a_step_that_kills_every_worker_ends_failed
);
