//! The dashboard at `/` in a real, headless Chromium (Debian's `chromium`, driven by
//! npm `playwright-core`): a person enters a token, sees an execution created through
//! the API appear, presses Start, watches progress reach 100 % live, opens the step
//! timeline, sees why another execution failed (its error, id and stored history),
//! finds it by its order id, opens the analytics, and as a viewer finds the
//! lifecycle buttons off.
//! Screenshots land in `target/tmp/dashboard-screenshots/`.

mod support;

use std::path::PathBuf;

use exechub::auth::Role;
use serde_json::Value;
use support::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_watches_an_execution_run_live() {
    let chromium = support::chromium();
    let server = TestServer::start(Backend::Sqlite).await;

    // One page, compiled in, loading nothing from elsewhere.
    let page = server
        .client
        .get(format!("{}/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>exechub</title>"));
    for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(external), "the page loads {external}…");
    }

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let viewer = server.token(Role::Viewer, None);
    let args = [
        server.base.as_str(),
        &server.admin(),
        &viewer,
        shots.to_str().unwrap(),
        &chromium,
    ];
    let stages = support::node_lines("dashboard-browser", "check.mjs", &args).await;
    let report = format!("{stages:#?}");
    let stage = |name: &str| {
        stages
            .iter()
            .find(|s| s["stage"] == name)
            .unwrap_or_else(|| panic!("no stage {name}: {report}"))
    };
    stage("done");
    // Live: the list showed progress between 0 and 100 on the way, without a reload.
    let seen: Vec<i64> = stage("completed")["progressSeen"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert!(seen.iter().any(|p| *p > 0 && *p < 100), "{seen:?}");
    assert_eq!(stage("timeline")["bars"], 3);
    let failed = stage("failed detail");
    let why = failed["failure"].as_str().unwrap();
    assert!(
        why.contains("OCR_UNREADABLE") && why.contains("page 3 is blank") && why.contains("ocr"),
        "{why}"
    );
    assert_eq!(failed["showsId"], true);
    let history = failed["history"].to_string();
    assert!(
        history.contains("EXECUTION_CREATED") && history.contains("EXECUTION_FAILED"),
        "{history}"
    );
    assert_eq!(failed["count"], "2 of 2");
    assert_eq!(failed["searchByOrder"], 1);
    let waiting = stage("waiting");
    assert_eq!(waiting["list"], "waits on concurrency browser-gpu");
    assert_eq!(waiting["step"], "waits on concurrency browser-gpu");
    assert_eq!(stage("viewer")["enabledButtons"], 0);
    for shot in [
        "1-list.png",
        "2-timeline.png",
        "3-analytics.png",
        "4-failed.png",
    ] {
        let size = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 10_000, "{shot}: {size} bytes");
    }
}
