//! SIGTERM, as every orchestrator sends it, with real `exechub worker` and `exechub
//! serve` processes: a worker lets a step finish within `--shutdown-grace` and exits
//! 0; one that cannot finish is given back at once (a lost attempt) and runs again on
//! another worker long before its lease would have run out; a server closes its
//! WebSockets with 1001, ends its SSE streams and exits 0 at once.

mod support;

use std::time::Duration;

use serde_json::json;
use support::processes::Process;
use support::runs::{execution, step, wait_until};
use support::ws::{Ending, TRANSPORT_WS, WsClient};
use support::{Backend, Options, TestServer};

fn delay(ms: u64) -> serde_json::Value {
    json!({ "orderId": "o", "serviceId": "drain", "autoStart": true,
        "steps": [{ "id": "s", "name": "S", "handler": { "kind": "delay", "config": { "ms": ms } } }] })
}

async fn a_stopping_worker_finishes_or_gives_back_its_steps(backend: Backend) {
    let mut options = Options::default();
    options.serve.no_workers = true;
    let server = TestServer::start_with(backend, options).await;
    let lease = ["--step-lease", "30s"];

    // Within the grace: the step completes, once, before the worker exits.
    let mut worker = Process(server.spawn(
        "worker",
        &[&lease[..], &["--shutdown-grace", "10s"]].concat(),
    ));
    let id = server.create(delay(1500)).await;
    wait_until(&server, &id, Duration::from_secs(15), |e| {
        step(e, "s")["status"] == "RUNNING"
    })
    .await;
    worker.terminate();
    assert!(worker.exit_within(Duration::from_secs(8)).await.success());
    let done = execution(&server, &id).await;
    assert_eq!(
        done["status"], "COMPLETED",
        "finished before exiting: {done:#}"
    );
    let started = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "STEP_STARTED")
        .count();
    assert_eq!(started, 1, "{done:#}");

    // Past the grace: given back at once, and run again elsewhere well before the
    // 30 s lease would have run out.
    let mut worker = Process(server.spawn(
        "worker",
        &[&lease[..], &["--shutdown-grace", "300ms"]].concat(),
    ));
    let id = server.create(delay(3000)).await;
    wait_until(&server, &id, Duration::from_secs(15), |e| {
        step(e, "s")["status"] == "RUNNING"
    })
    .await;
    worker.terminate();
    assert!(worker.exit_within(Duration::from_secs(5)).await.success());
    let given_back = execution(&server, &id).await;
    let lost = given_back["logs"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["level"] == "ERROR" && l["message"] == "SYSTEM_ERROR: worker stopped");
    assert!(lost, "a lost attempt is recorded: {given_back:#}");
    let _replacement = Process(server.spawn("worker", &lease));
    let done = wait_until(&server, &id, Duration::from_secs(20), |e| {
        e["status"] == "COMPLETED"
    })
    .await;
    let count = |kind: &str| {
        let events = done["events"].as_array().unwrap();
        events.iter().filter(|e| e["type"] == kind).count()
    };
    assert_eq!(
        (count("STEP_STARTED"), count("STEP_FAILED")),
        (2, 1),
        "{done:#}"
    );
    // A stop is not the step's failure: no retry of the policy is spent.
    assert_eq!(step(&done, "s")["retries"], 0, "{done:#}");
}

backend_suites!(a_stopping_worker_finishes_or_gives_back_its_steps);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_ends_its_streams_and_exits() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (mut process, base) = server.serve_process(&[]).await;
    let token = server.admin();
    let mut socket = WsClient::connect(&base, TRANSPORT_WS, Some(&token)).await;
    socket
        .subscribe(
            "feed",
            "subscription { executionsFeed { type } }",
            json!({}),
        )
        .await;
    let sse = server
        .client
        .post(format!("{base}/graphql/stream"))
        .header("Accept", "text/event-stream")
        .bearer_auth(&token)
        .json(&json!({ "query": "subscription { executionsFeed { type } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;

    process.terminate();
    match socket.ending(Duration::from_secs(5)).await {
        Ending::Closed(code, _) => assert_eq!(code, 1001),
        Ending::Dropped => panic!("closed without a close frame"),
    }
    let body = tokio::time::timeout(Duration::from_secs(5), sse.text())
        .await
        .expect("the SSE stream ended")
        .unwrap();
    assert!(body.contains("event: complete"), "{body}");
    assert!(process.exit_within(Duration::from_secs(5)).await.success());
}
