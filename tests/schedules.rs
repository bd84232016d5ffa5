//! Schedules through the API, with the scheduler running: a schedule firing every
//! second fires once per instant across two processes and a restart of one; one
//! behind after downtime catches up once; SKIP holds fires back while the last
//! execution runs; what a client reads, pauses, resumes, updates and deletes; and
//! bad input refused with nothing written.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Timelike, Utc};
use serde_json::{Value, json};
use support::{Backend, Options, TestServer, error_code};

const CREATE: &str = r#"
mutation($input: ScheduleInput!) {
  createSchedule(input: $input) { id nextFireAt nextFireTimes(count: 3) overlap paused }
}"#;

const SCHEDULE: &str = r#"
query($id: ID!) {
  schedule(id: $id) { id paused nextFireAt fires skipped lastFireAt lastExecution { id scheduleId } }
}"#;

const FIRED: &str = r#"
query($id: ID!) {
  executions(filter: { scheduleId: { eq: $id } }, first: 500) {
    totalCount nodes { id status scheduledAt metrics { startedAt } error { code message } }
  }
}"#;

fn echo_every(cron: &str, overlap: &str) -> Value {
    json!({ "cron": cron, "overlap": overlap, "template": {
        "orderId": "o", "serviceId": "scheduled",
        "steps": [{ "id": "a", "name": "A", "handler": { "kind": "echo" } }] } })
}

async fn create(server: &TestServer, input: Value) -> Value {
    server.gql(CREATE, json!({ "input": input })).await["createSchedule"].clone()
}

async fn schedule(server: &TestServer, id: &str) -> Value {
    server.gql(SCHEDULE, json!({ "id": id })).await["schedule"].clone()
}

async fn fired(server: &TestServer, id: &str) -> Vec<Value> {
    let data = server.gql(FIRED, json!({ "id": id })).await;
    data["executions"]["nodes"].as_array().unwrap().clone()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().expect("a time").parse().expect("RFC 3339")
}

async fn pause(server: &TestServer, id: &str) {
    let pause = "mutation($id: ID!) { pauseSchedule(id: $id) { paused } }";
    let data = server.gql(pause, json!({ "id": id })).await;
    assert_eq!(data["pauseSchedule"]["paused"], true);
}

async fn fires_once_per_instant_across_processes(backend: Backend) {
    let server = TestServer::start_with(backend, Options::default()).await;
    let mut other = support::processes::Process(server.spawn("worker", &[]));
    let created = create(&server, echo_every("* * * * * *", "ALLOW")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The other process dies mid-run and another takes its place.
    other.0.kill().unwrap();
    other.0.wait().unwrap();
    let _restarted = support::processes::Process(server.spawn("worker", &[]));
    tokio::time::sleep(Duration::from_secs(5)).await;
    pause(&server, &id).await;
    // A fire claimed just before the pause still creates its execution.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let executions = fired(&server, &id).await;
    let instants: BTreeSet<DateTime<Utc>> =
        executions.iter().map(|e| time(&e["scheduledAt"])).collect();
    assert_eq!(
        instants.len(),
        executions.len(),
        "one execution per instant"
    );
    assert!(
        (9..=11).contains(&executions.len()),
        "{} fires in 10 s: {instants:?}",
        executions.len()
    );
    for instant in &instants {
        assert_eq!(
            instant.nanosecond(),
            0,
            "fired at whole seconds: {instants:?}"
        );
    }
    let read = schedule(&server, &id).await;
    assert_eq!(read["fires"], executions.len(), "{read:#}");
    assert_eq!(read["lastExecution"]["scheduleId"], id.as_str(), "{read:#}");
    for execution in &executions {
        support::runs::wait_status(&server, execution["id"].as_str().unwrap(), "COMPLETED").await;
    }
}

async fn catches_up_once_after_downtime(server: &TestServer) {
    let created = create(server, echo_every("*/10 * * * * *", "SKIP")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // As if no process had run for five minutes: thirty instants were missed.
    let five_minutes_ago = (Utc::now() - chrono::TimeDelta::minutes(5)).timestamp() / 10 * 10_000;
    server
        .execute(&format!(
            "UPDATE schedules SET next_fire_at = {five_minutes_ago} WHERE id = '{id}'"
        ))
        .await;
    let started = std::time::Instant::now();
    let read = loop {
        let read = schedule(server, &id).await;
        if read["fires"] == 1 {
            break read;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{read:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(read["skipped"].as_i64().unwrap() >= 29, "{read:#}");
    assert!(time(&read["nextFireAt"]) > Utc::now() - chrono::TimeDelta::seconds(1));
    assert_eq!(fired(server, &id).await.len(), 1);
}

async fn skip_holds_fires_back_while_the_last_execution_runs(server: &TestServer) {
    let input = json!({ "cron": "* * * * * *", "overlap": "SKIP", "template": {
        "orderId": "o", "serviceId": "slow",
        "steps": [{ "id": "a", "name": "A", "handler": { "kind": "delay", "config": { "ms": 2500 } } }] } });
    let id = create(server, input).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    pause(server, &id).await;
    let executions = fired(server, &id).await;
    assert!((1..=2).contains(&executions.len()), "{executions:#?}");
    let read = schedule(server, &id).await;
    assert!(read["skipped"].as_i64().unwrap() >= 2, "{read:#}");
}

async fn read_paused_resumed_updated_and_deleted(server: &TestServer) {
    let created = create(server, echo_every("0 9 * * MON-FRI", "SKIP")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let times: Vec<DateTime<Utc>> = created["nextFireTimes"]
        .as_array()
        .unwrap()
        .iter()
        .map(time)
        .collect();
    assert_eq!(times.len(), 3);
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert_eq!(time(&created["nextFireAt"]), times[0]);
    assert_eq!((times[0].hour(), times[0].minute()), (9, 0));

    pause(server, &id).await;
    assert!(schedule(server, &id).await["nextFireAt"].is_null());
    let resume = "mutation($id: ID!) { resumeSchedule(id: $id) { paused nextFireAt } }";
    let resumed = server.gql(resume, json!({ "id": id })).await["resumeSchedule"].clone();
    assert_eq!(resumed["paused"], false);
    assert_eq!(time(&resumed["nextFireAt"]), times[0]);

    let update = "mutation($id: ID!, $input: ScheduleInput!) { updateSchedule(id: $id, input: $input) { cron timezone nextFireAt } }";
    let mut input = echo_every("30 2 * * *", "ALLOW");
    input["timezone"] = json!("Europe/Berlin");
    let updated = server
        .gql(update, json!({ "id": id, "input": input }))
        .await["updateSchedule"]
        .clone();
    assert_eq!(updated["timezone"], "Europe/Berlin");
    assert_eq!(time(&updated["nextFireAt"]).trunc_subsecs(0).second(), 0);

    // Another tenant sees nothing of it.
    let other = server.token(exechub::auth::Role::Operator, Some("globex"));
    let hidden = server
        .gql_as(Some(&other), SCHEDULE, json!({ "id": id }))
        .await;
    assert!(hidden["data"]["schedule"].is_null(), "{hidden}");
    let list = server
        .gql_as(Some(&other), "{ schedules { id } }", json!({}))
        .await;
    assert_eq!(list["data"]["schedules"], json!([]), "{list}");

    let delete = "mutation($id: ID!) { deleteSchedule(id: $id) }";
    assert_eq!(
        server.gql(delete, json!({ "id": id })).await["deleteSchedule"],
        true
    );
    assert!(schedule(server, &id).await.is_null());
    assert_eq!(
        server.gql(delete, json!({ "id": id })).await["deleteSchedule"],
        false
    );
    let audited = server
        .count("SELECT COUNT(*) FROM audit_log WHERE action IN ('createSchedule', 'pauseSchedule', 'resumeSchedule', 'updateSchedule', 'deleteSchedule')")
        .await;
    assert_eq!(audited, 5);
}

async fn bad_input_is_refused_and_nothing_written(server: &TestServer) {
    let mut bad_step = echo_every("* * * * *", "SKIP");
    bad_step["template"]["steps"][0]["handler"]["kind"] = json!("teleport");
    let mut bad_zone = echo_every("* * * * *", "SKIP");
    bad_zone["timezone"] = json!("Mars/Olympus");
    let mut keyed = echo_every("* * * * *", "SKIP");
    keyed["template"]["idempotencyKey"] = json!("k");
    for (input, field) in [
        (echo_every("every day at nine", "SKIP"), "input.cron"),
        (echo_every("0 0 30 2 *", "SKIP"), "input.cron"),
        (bad_zone, "input.timezone"),
        (bad_step, "input.template.steps[0].handler.kind"),
        (keyed, "input.template"),
    ] {
        let admin = server.admin();
        let body = server
            .gql_as(Some(&admin), CREATE, json!({ "input": input }))
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(server.count("SELECT COUNT(*) FROM schedules").await, 0);
}

backend_suites!(fires_once_per_instant_across_processes);

backend_tests!(
    catches_up_once_after_downtime,
    skip_holds_fires_back_while_the_last_execution_runs,
    read_paused_resumed_updated_and_deleted,
    bad_input_is_refused_and_nothing_written
);
