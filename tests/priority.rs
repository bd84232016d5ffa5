//! Priority with one worker slot: levels are served in order (URGENT, HIGH, NORMAL,
//! LOW) across everything queued, first come first served within a level; a job
//! that has waited long enough counts a level higher; a chain's next step yields its
//! slot to a job that waits. SQLite runs with the embedded queue; Postgres with Redis
//! when `EXECHUB_TEST_REDIS_URL` is set.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::runs::{execution, step, time, wait_status, wait_until};
use support::{Backend, Options, TestServer};
use tokio::sync::Notify;

/// An execution of `priority` with one `delay` step of `ms`, started at once.
async fn one_delay(server: &TestServer, priority: &str, ms: u64) -> String {
    server
        .create(json!({
            "orderId": "o", "serviceId": priority, "priority": priority, "autoStart": true,
            "steps": [{ "id": "s", "name": "S", "handler": { "kind": "delay", "config": { "ms": ms } } }]
        }))
        .await
}

/// With one slot busy, two jobs of each level submitted LOW, NORMAL, HIGH, URGENT,
/// LOW, NORMAL, HIGH, URGENT run URGENT, URGENT, HIGH, HIGH, NORMAL, NORMAL, LOW,
/// LOW: a level's second job, still in its queue when the first one got the slot,
/// goes before a lower level's job that was already waiting at the gate.
async fn levels_are_served_in_order(backend: Backend) {
    let mut options = Options::default();
    options.scheduler.concurrency = 1;
    let server = TestServer::start_with(backend, options).await;
    let create = |priority: &'static str, ms: u64| one_delay(&server, priority, ms);
    let busy = create("LOW", 2000).await;
    wait_until(&server, &busy, Duration::from_secs(10), |e| {
        step(e, "s")["status"] == "RUNNING"
    })
    .await;
    let mut submitted = Vec::new();
    for _ in 0..2 {
        for priority in ["LOW", "NORMAL", "HIGH", "URGENT"] {
            submitted.push((priority, create(priority, 200).await));
        }
    }
    let mut finished = Vec::new();
    for (priority, id) in &submitted {
        let done = wait_status(&server, id, "COMPLETED").await;
        finished.push((time(&step(&done, "s")["completedAt"]), *priority));
    }
    finished.sort();
    let order: Vec<&str> = finished.iter().map(|(_, priority)| *priority).collect();
    assert_eq!(
        order,
        [
            "URGENT", "URGENT", "HIGH", "HIGH", "NORMAL", "NORMAL", "LOW", "LOW"
        ],
        "{finished:?}"
    );
}

/// With one slot, an URGENT execution submitted last runs before the LOW ones
/// queued ahead of it; and a LOW one still runs under a constant URGENT load once
/// it has aged.
async fn priority_and_aging(backend: Backend) {
    let mut options = Options::default();
    options.scheduler.concurrency = 1;
    options.scheduler.priority_aging = Duration::from_millis(1200);
    let server = TestServer::start_with(backend, options).await;
    let create = |priority: &'static str, ms: u64| one_delay(&server, priority, ms);
    // Long enough for the jobs created next to reach the gate on a loaded machine
    // (an idle Redis queue worker may take up to its 2 s heartbeat to fetch a job),
    // short enough that the LOW ones do not age to URGENT meanwhile (2.5 levels).
    let first = create("LOW", 3000).await;
    wait_until(&server, &first, Duration::from_secs(10), |e| {
        step(e, "s")["status"] == "RUNNING"
    })
    .await;
    let low = [create("LOW", 200).await, create("LOW", 200).await];
    let urgent = create("URGENT", 200).await;
    // With one slot, the job that finished first started first.
    let done = wait_status(&server, &urgent, "COMPLETED").await;
    let urgent_end = time(&step(&done, "s")["completedAt"]);
    for id in &low {
        let done = wait_status(&server, id, "COMPLETED").await;
        assert!(
            time(&step(&done, "s")["completedAt"]) > urgent_end,
            "URGENT went first: {done:#}"
        );
    }

    // Aging: keep URGENT work queued for 5 s; a LOW job still gets through (it
    // counts as URGENT after 3.6 s, and then as the older job).
    let aged = create("LOW", 10).await;
    let until = Instant::now() + Duration::from_secs(5);
    let mut urgent_ids = Vec::new();
    while Instant::now() < until {
        urgent_ids.push(create("URGENT", 150).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let aged_done = execution(&server, &aged).await;
    assert_eq!(
        aged_done["status"], "COMPLETED",
        "LOW starved under URGENT load"
    );
    let still_queued = {
        let mut count = 0;
        for id in &urgent_ids {
            if execution(&server, id).await["status"] != "COMPLETED" {
                count += 1;
            }
        }
        count
    };
    assert!(
        still_queued > 0,
        "the URGENT load was constant: some were still waiting"
    );
}

/// An endpoint that answers only once released: an `http` step that runs as long as
/// the test wants.
async fn held_endpoint() -> (String, Arc<Notify>) {
    let release = Arc::new(Notify::new());
    let held = release.clone();
    let app = axum::Router::new().route(
        "/hold",
        axum::routing::post(move || {
            let held = held.clone();
            async move {
                held.notified().await;
                axum::Json(json!({ "released": true }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hold"), release)
}

/// A worker that finishes a step goes on with the next step of its chain only while
/// no other job waits for its slot: with one slot, an URGENT execution created while
/// a LOW chain runs starts before the chain's next step. The chain's first step runs
/// until the URGENT job waits at the gate, however long its queue takes to deliver it.
async fn chains_yield_to_waiting_jobs(backend: Backend) {
    let mut options = Options::default();
    options.scheduler.concurrency = 1;
    let server = TestServer::start_with(backend, options).await;
    let (url, release) = held_endpoint().await;
    let delay = |id: &str| json!({ "id": id, "name": id, "handler": { "kind": "delay", "config": { "ms": 10 } } });
    let held =
        json!({ "id": "a", "name": "a", "handler": { "kind": "http", "config": { "url": url } } });
    let chain = server
        .create(json!({
            "orderId": "o", "serviceId": "chain", "priority": "LOW", "autoStart": true,
            "steps": [held, delay("b"), delay("c")]
        }))
        .await;
    wait_until(&server, &chain, Duration::from_secs(10), |e| {
        step(e, "a")["status"] == "RUNNING"
    })
    .await;
    let urgent = server
        .create(json!({
            "orderId": "o", "serviceId": "urgent", "priority": "URGENT", "autoStart": true,
            "steps": [delay("s")]
        }))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.running.jobs_waiting_for_a_slot() == 0 {
        assert!(
            Instant::now() < deadline,
            "the URGENT job was not delivered to the worker in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    release.notify_one();
    let chain = wait_status(&server, &chain, "COMPLETED").await;
    let urgent = wait_status(&server, &urgent, "COMPLETED").await;
    assert!(
        time(&step(&urgent, "s")["startedAt"]) < time(&step(&chain, "b")["startedAt"]),
        "the chain went on while URGENT waited for its slot: {chain:#} {urgent:#}"
    );
}

/// Each commit is followed up once: its events reach the bus once, and the steps it
/// hands out start once. A second follow-up of a create would start its step again
/// and, finding the first start's change behind it, interrupt the attempt running
/// in the one slot: the slot went to the next job while the step stayed RUNNING
/// with no worker until its lease ran out.
async fn each_commit_is_followed_up_once(backend: Backend) {
    let mut options = Options::default();
    options.scheduler.concurrency = 1;
    let server = TestServer::start_with(backend, options).await;
    let mut bus = server.service.events().subscribe_feed();
    let ids = [
        one_delay(&server, "NORMAL", 300).await,
        one_delay(&server, "NORMAL", 300).await,
    ];
    let mut published: Vec<(String, i64)> = Vec::new();
    for id in &ids {
        let done = wait_status(&server, id, "COMPLETED").await;
        assert_eq!(step(&done, "s")["retries"], 0, "one attempt: {done:#}");
    }
    while let Ok(message) = bus.try_recv() {
        published.push((message.event.execution_id.clone(), message.event.sequence));
    }
    let mut once = published.clone();
    once.sort();
    once.dedup();
    assert_eq!(
        published.len(),
        once.len(),
        "published twice: {published:?}"
    );
    assert!(published.len() >= 2 * 5, "{published:?}");
}

backend_suites!(
    levels_are_served_in_order,
    priority_and_aging,
    chains_yield_to_waiting_jobs,
    each_commit_is_followed_up_once
);
