//! Faults of the environment and of one client's input, isolated: a full disk
//! loses no write that was confirmed, `/readyz` says so while it lasts, and the
//! server heals by itself once there is room; a write the database refuses fails
//! only the rules that made it, not the others of its shared transaction; an `http`
//! step whose answer cannot be stored fails once instead of running forever; and
//! processes started together on a fresh Postgres database migrate it once.

mod support;

use std::time::{Duration, Instant};

use exechub::auth::{Permission, Principal, Role};
use exechub::clock;
use exechub::domain::inputs::LogInput;
use exechub::domain::lifecycle;
use exechub::domain::snapshot::Snapshot;
use exechub::domain::values::LogLevel;
use serde_json::{Value, json};
use support::processes::{Process, free_address, wait_until_serving};
use support::runs::{step, wait_status};
use support::{Backend, TestServer, error_code, postgres_skipped};

const CREATE: &str =
    "mutation($n: ID!) { createExecution(input: { orderId: $n, serviceId: \"s\" }) { id } }";

/// `exechub serve --insecure-no-auth` on `dir`, ignoring SIGXFSZ (as a server on a
/// full disk gets errors from its writes, not a signal), and its base URL.
async fn serve_on(dir: &std::path::Path) -> (Process, String) {
    let bind = free_address();
    let child = std::process::Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; exec \"$@\"",
            "sh",
            env!("CARGO_BIN_EXE_exechub"),
        ])
        .args(["serve", "--insecure-no-auth", "--bind", &bind, "--data-dir"])
        .arg(dir)
        .env_remove("EXECHUB_DATABASE_URL")
        .env_remove("EXECHUB_REDIS_URL")
        .env("EXECHUB_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{bind}");
    wait_until_serving(&base).await;
    (Process(child), base)
}

/// Sets the largest file the process may write (`unlimited` for no limit).
fn limit_file_size(process: &Process, limit: &str) {
    let pid = process.0.id().to_string();
    let set = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--fsize={limit}:unlimited")])
        .status()
        .unwrap();
    assert!(set.success());
}

async fn post(base: &str, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables });
    let response = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&body)
        .send();
    response.await.unwrap().json().await.unwrap()
}

/// The id of the execution created, or `None` when the create failed.
async fn create(base: &str, n: usize) -> Option<String> {
    let body = post(base, CREATE, json!({ "n": format!("o{n}") })).await;
    match body["data"]["createExecution"]["id"].as_str() {
        Some(id) => Some(id.to_owned()),
        None => {
            assert_eq!(error_code(&body).as_deref(), Some("INTERNAL"), "{body}");
            None
        }
    }
}

async fn ready(base: &str) -> bool {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .status()
        == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_confirmed_write_and_heals() {
    let dir = std::env::temp_dir().join(format!("exechub-full-{}", uuid::Uuid::now_v7()));
    let (server, base) = serve_on(&dir).await;
    let mut confirmed = Vec::new();
    for n in 0..5 {
        confirmed.push(create(&base, n).await.expect("room on the disk"));
    }
    // No file may grow past a little more than it is now: the disk is full.
    let largest = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();
    limit_file_size(&server, &(largest + 64 * 1024).to_string());
    let mut failures = 0;
    for n in 5..2_000 {
        match create(&base, n).await {
            Some(id) => confirmed.push(id),
            None => failures += 1,
        }
        if failures == 20 {
            break;
        }
    }
    assert_eq!(failures, 20, "the disk never filled");
    assert!(!ready(&base).await, "/readyz answered 200 on a full disk");

    limit_file_size(&server, "unlimited");
    let freed = Instant::now();
    while !ready(&base).await {
        assert!(
            freed.elapsed() < Duration::from_secs(15),
            "never ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 2_000..2_020 {
        confirmed.push(create(&base, n).await.expect("room again"));
    }

    // What was confirmed is there, before and after a restart.
    let mut server = server;
    server.terminate();
    server.exit_within(Duration::from_secs(20)).await;
    let (_server, base) = serve_on(&dir).await;
    for id in &confirmed {
        let read = post(
            &base,
            "query($id: ID!) { execution(id: $id) { id } }",
            json!({ "id": id }),
        );
        assert_eq!(
            read.await["data"]["execution"]["id"],
            id.as_str(),
            "{id} was lost"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rules on many executions share transactions; two of them make a write Postgres
/// refuses (text holding NUL, which no client input can carry). Only those two fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_fails_only_its_own_rules() {
    if postgres_skipped() {
        return;
    }
    let server = TestServer::start(Backend::Postgres).await;
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(
            server
                .create(json!({ "orderId": format!("o{n}"), "serviceId": "s" }))
                .await,
        );
    }
    let principal = Principal {
        subject: "t".into(),
        role: Role::Admin,
        tenant: None,
    };
    let bad = |n: usize| n == 17 || n == 33;
    let applied = ids.iter().enumerate().map(|(n, id)| {
        let rule = move |snapshot: &Snapshot, _: &str, _| {
            let line = LogInput {
                level: LogLevel::Info,
                message: format!("line {n}"),
                step: None,
                context: None,
                metadata: None,
                timestamp: None,
            };
            let mut change =
                lifecycle::append_logs(&snapshot.execution, vec![line], "t", clock::now())?;
            if bad(n) {
                change.logs[0].message = "held \0 NUL".into();
            }
            Ok(change)
        };
        let by = principal.clone();
        (server.service).submit(by, Permission::Report, "appendLogs", id, rule)
    });
    let results = futures::future::join_all(applied.collect::<Vec<_>>()).await;
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), bad(n), "rule {n}: {result:?}");
    }
    let stored = server
        .count("SELECT COUNT(*) FROM execution_logs WHERE message LIKE 'line %'")
        .await;
    assert_eq!(stored, 38);
}

/// 57 clients log at once, three of them text holding NUL: those three are told
/// `BAD_USER_INPUT` up front, and every other line is stored.
async fn text_holding_nul_is_refused_up_front(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = server
        .create(json!({ "orderId": "o", "serviceId": "s" }))
        .await;
    let calls = (0..57).map(|n| {
        let message = if n % 19 == 5 {
            format!("bad \u{0} {n}")
        } else {
            format!("good {n}")
        };
        let query =
            "mutation($id: ID!, $m: String!) { appendLog(id: $id, log: { message: $m }) { id } }";
        let server = &server;
        let id = id.clone();
        async move {
            (
                n,
                server
                    .gql_as(
                        Some(&server.admin()),
                        query,
                        json!({ "id": id, "m": message }),
                    )
                    .await,
            )
        }
    });
    for (n, body) in futures::future::join_all(calls).await {
        if n % 19 == 5 {
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{body}"
            );
        } else {
            assert!(body["data"]["appendLog"]["id"].is_string(), "{n}: {body}");
        }
    }
    let literal = server
        .gql_as(
            Some(&server.admin()),
            "mutation($id: ID!) { appendLog(id: $id, log: { message: \"in \\u0000 line\" }) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        error_code(&literal).as_deref(),
        Some("BAD_USER_INPUT"),
        "{literal}"
    );
    assert_eq!(
        server
            .count("SELECT COUNT(*) FROM execution_logs WHERE message LIKE 'good %'")
            .await,
        54
    );
}

/// An endpoint answering `/big` with 2 MB of JSON, `/large` with 400 KB (read, but
/// more than a result may hold), `/nul` with text holding NUL, and `/flaky` with
/// 503 then 200. Every call's path and `Idempotency-Key` is recorded.
async fn answers() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    use axum::http::{HeaderMap, StatusCode, Uri};
    let calls: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let log = calls.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let log = log.clone();
        async move {
            let key = headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_owned());
            let mut log = log.lock().unwrap();
            log.push((uri.path().to_owned(), key.unwrap_or_default()));
            let flaky_calls = log.iter().filter(|(path, _)| path == "/flaky").count();
            match uri.path() {
                "/big" => (
                    StatusCode::OK,
                    json!({ "text": "x".repeat(2_000_000) }).to_string(),
                ),
                "/large" => (
                    StatusCode::OK,
                    json!({ "text": "x".repeat(400_000) }).to_string(),
                ),
                "/nul" => (StatusCode::OK, r#"{ "text": "a\u0000b" }"#.to_owned()),
                _ if flaky_calls == 1 => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
                _ => (StatusCode::OK, "{}".to_owned()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), calls)
}

async fn http_results_that_cannot_be_stored_fail_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (base, calls) = answers().await;
    let run = |path: &str, retries: i32| {
        let url = format!("{base}{path}");
        server.create(json!({
            "orderId": "o", "serviceId": "s", "autoStart": true,
            "retryPolicy": { "maxRetries": retries, "backoff": "LINEAR", "initialDelayMs": 100 },
            "steps": [{ "id": "call", "name": "Call", "handler": { "kind": "http", "config": { "url": url } } }]
        }))
    };
    for (path, code) in [
        ("/big", "RESULT_TOO_LARGE"),
        ("/large", "RESULT_TOO_LARGE"),
        ("/nul", "RESULT_INVALID"),
    ] {
        let id = run(path, 3).await;
        let failed = wait_status(&server, &id, "FAILED").await;
        assert_eq!(failed["error"]["code"], code, "{path}: {failed:#}");
        assert_eq!(failed["error"]["recoverable"], false, "{failed:#}");
        assert_eq!(step(&failed, "call")["status"], "FAILED");
    }
    tokio::time::sleep(Duration::from_secs(4)).await; // past a lease: nothing runs again
    let paths: Vec<String> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|(path, _)| path.clone())
        .collect();
    assert_eq!(paths, ["/big", "/large", "/nul"], "each ran once");

    // Every attempt of one step sends the same Idempotency-Key.
    let id = run("/flaky", 1).await;
    wait_status(&server, &id, "COMPLETED").await;
    let keys: Vec<String> = (calls.lock().unwrap().iter())
        .filter(|(path, _)| path == "/flaky")
        .map(|(_, key)| key.clone())
        .collect();
    assert_eq!(keys, [format!("{id}/call"), format!("{id}/call")]);
}

backend_suites!(
    text_holding_nul_is_refused_up_front,
    http_results_that_cannot_be_stored_fail_once
);

/// Four `exechub migrate` at once on a fresh Postgres database all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_started_together_migrate_once() {
    if postgres_skipped() {
        return;
    }
    let dir = std::env::temp_dir();
    let url = support::fresh_database(Backend::Postgres, &dir)
        .await
        .unwrap();
    let migrations: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_exechub"))
                .args(["migrate", "--database-url", &url])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for migration in migrations {
        let output = migration.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{said}");
    }
}
