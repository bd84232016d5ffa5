//! Analytics against an oracle: the same numbers computed in plain Rust from the
//! executions read back through the API, for several groupings, buckets and tenants.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use exechub::auth::Role;
use serde_json::{Value, json};
use support::TestServer;

async fn seed(server: &TestServer) {
    let services = ["translate", "summarise", "classify"];
    for i in 0..24usize {
        let priority = ["LOW", "NORMAL", "HIGH", "URGENT"][i % 4];
        let tags = if i % 3 == 0 {
            json!(["prod", "llm"])
        } else {
            json!(["dev"])
        };
        let id = server
            .create(json!({
                "orderId": format!("o{i}"), "serviceId": services[i % 3], "priority": priority,
                "customerId": if i % 2 == 0 { "acme" } else { "globex" }, "tags": tags,
                "environment": if i % 5 == 0 { Value::Null } else { json!("production") },
                "steps": [{ "id": "fetch", "name": "Fetch" }, { "id": "work", "name": "Work" }],
            }))
            .await;
        if i % 6 == 5 {
            continue; // stays QUEUED
        }
        server
            .gql(
                "mutation($id: ID!) { startExecution(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        server.start_step(&id, "fetch").await;
        tokio::time::sleep(std::time::Duration::from_millis((i % 4) as u64 * 3)).await;
        server
            .gql(
                r#"mutation($id: ID!, $t: Int, $c: Float) { completeStep(executionId: $id, stepId: "fetch",
                     metrics: { tokensUsed: $t, cost: $c, apiCalls: 2 }) { id } }"#,
                json!({ "id": id, "t": i * 10, "c": i as f64 * 0.01 }),
            )
            .await;
        match i % 6 {
            0 | 1 => {
                server.start_step(&id, "work").await;
                server
                    .gql(r#"mutation($id: ID!) { completeStep(executionId: $id, stepId: "work") { id } }"#, json!({ "id": id }))
                    .await;
                server
                    .gql(r#"mutation($id: ID!) { completeExecution(id: $id, result: { summary: "ok" }) { id } }"#, json!({ "id": id }))
                    .await;
            }
            2 | 3 => {
                server.start_step(&id, "work").await;
                let code = if i % 6 == 2 {
                    "API_TIMEOUT"
                } else {
                    "VALIDATION_ERROR"
                };
                server
                    .gql(
                        // The step's failure fails the execution with its error.
                        r#"mutation($id: ID!, $c: String!, $r: Boolean!, $m: String!) {
                             failStep(executionId: $id, stepId: "work", error: { code: $c, message: $m, recoverable: $r }) { id } }"#,
                        json!({ "id": id, "c": code, "r": i % 6 == 2, "m": format!("failure {i}") }),
                    )
                    .await;
            }
            4 => {
                server
                    .gql(
                        "mutation($id: ID!) { cancelExecution(id: $id) { id } }",
                        json!({ "id": id }),
                    )
                    .await;
            }
            _ => unreachable!(),
        }
    }
}

/// What the oracle needs of each execution.
async fn everything(server: &TestServer, token: &str) -> Vec<Value> {
    let body = server
        .gql_as(
            Some(token),
            "{ executions(first: 500) { nodes { status serviceId priority customerId tags metadata { environment } createdAt
                 error { code recoverable message } metrics { durationMs cost tokensUsed apiCalls retries completedAt }
                 updatedAt steps { name status durationMs } } } }",
            json!({}),
        )
        .await;
    body["data"]["executions"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .clone()
}

fn percentile_cont(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[lo] as f64 + (sorted[hi] - sorted[lo]) as f64 * (rank - lo as f64))
}

fn close(a: &Value, b: Option<f64>, what: &str) {
    match (a.as_f64(), b) {
        (Some(a), Some(b)) => assert!((a - b).abs() < 1e-6, "{what}: {a} vs {b}"),
        (None, None) => {}
        other => panic!("{what}: {other:?}"),
    }
}

/// The oracle's ExecutionStats fields for one group of executions.
fn check_group(stats: &Value, group: &[&Value], what: &str) {
    let count = |s: &str| group.iter().filter(|e| e["status"] == s).count() as i64;
    assert_eq!(stats["total"], group.len() as i64, "{what} total");
    let (completed, failed, cancelled) = (count("COMPLETED"), count("FAILED"), count("CANCELLED"));
    assert_eq!(stats["completed"], completed, "{what}");
    assert_eq!(stats["failed"], failed, "{what}");
    assert_eq!(stats["cancelled"], cancelled, "{what}");
    assert_eq!(
        stats["active"],
        group.len() as i64 - completed - failed - cancelled,
        "{what}"
    );
    let finished = completed + failed + cancelled;
    close(
        &stats["successRate"],
        (finished > 0).then(|| completed as f64 / finished as f64),
        what,
    );
    let sum = |f: &str| {
        group
            .iter()
            .map(|e| e["metrics"][f].as_f64().unwrap_or(0.0))
            .sum::<f64>()
    };
    close(&stats["totalCost"], Some(sum("cost")), what);
    assert_eq!(
        stats["totalTokens"].as_f64().unwrap(),
        sum("tokensUsed"),
        "{what}"
    );
    assert_eq!(
        stats["totalApiCalls"].as_f64().unwrap(),
        sum("apiCalls"),
        "{what}"
    );
    let costs: Vec<f64> = group
        .iter()
        .filter_map(|e| e["metrics"]["cost"].as_f64())
        .collect();
    close(
        &stats["avgCost"],
        (!costs.is_empty()).then(|| costs.iter().sum::<f64>() / costs.len() as f64),
        what,
    );
    let mut durations: Vec<i64> = group
        .iter()
        .filter_map(|e| e["metrics"]["durationMs"].as_i64())
        .collect();
    durations.sort();
    let d = &stats["duration"];
    close(
        &d["avgMs"],
        (!durations.is_empty())
            .then(|| durations.iter().sum::<i64>() as f64 / durations.len() as f64),
        what,
    );
    assert_eq!(d["minMs"].as_i64(), durations.first().copied(), "{what}");
    assert_eq!(d["maxMs"].as_i64(), durations.last().copied(), "{what}");
    for (field, p) in [
        ("p50Ms", 0.5),
        ("p90Ms", 0.9),
        ("p95Ms", 0.95),
        ("p99Ms", 0.99),
    ] {
        close(
            &d[field],
            percentile_cont(&durations, p),
            &format!("{what} {field}"),
        );
    }
}

const STATS: &str = "query($g: [StatsDimension!], $b: TimeBucket) { executionStats(groupBy: $g, bucket: $b, limit: 1000) {
    keys { dimension value } bucketStart total completed failed cancelled active successRate
    byStatus { status count } totalCost avgCost totalTokens totalApiCalls totalRetries
    duration { avgMs p50Ms p90Ms p95Ms p99Ms minMs maxMs } } }";

/// Each grouping's rows against the oracle's groups of `all` (everything visible).
async fn check_groupings(server: &TestServer, all: &[Value]) {
    for dims in [
        vec!["SERVICE"],
        vec!["TAG", "PRIORITY"],
        vec!["ENVIRONMENT", "CUSTOMER"],
    ] {
        let rows = server.gql(STATS, json!({ "g": dims })).await["executionStats"].clone();
        let mut groups: BTreeMap<Vec<String>, Vec<&Value>> = BTreeMap::new();
        for e in all {
            let values = |dim: &str| -> Vec<Value> {
                match dim {
                    "SERVICE" => vec![e["serviceId"].clone()],
                    "PRIORITY" => vec![e["priority"].clone()],
                    "ENVIRONMENT" => vec![e["metadata"]["environment"].clone()],
                    "CUSTOMER" => vec![e["customerId"].clone()],
                    // An untagged execution counts in the null tag's group.
                    "TAG" => match e["tags"].as_array().unwrap() {
                        tags if tags.is_empty() => vec![Value::Null],
                        tags => tags.clone(),
                    },
                    _ => unreachable!(),
                }
            };
            for a in values(dims[0]) {
                let rest = if dims.len() > 1 {
                    values(dims[1])
                } else {
                    vec![Value::Null]
                };
                for b in rest {
                    let key = if dims.len() > 1 {
                        vec![a.to_string(), b.to_string()]
                    } else {
                        vec![a.to_string()]
                    };
                    groups.entry(key).or_default().push(e);
                }
            }
        }
        assert_eq!(rows.as_array().unwrap().len(), groups.len(), "{dims:?}");
        for row in rows.as_array().unwrap() {
            let key: Vec<String> = row["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["value"].to_string())
                .collect();
            let group = groups
                .get(&key)
                .unwrap_or_else(|| panic!("{dims:?} {key:?}"));
            check_group(row, group, &format!("{dims:?} {key:?}"));
        }
    }
}

/// Fields asked for without the others (the SQL then computes only those) have the
/// values they have when everything is asked for.
async fn check_narrow_selections(server: &TestServer) {
    let variables = json!({ "g": ["SERVICE", "TAG"], "b": "DAY" });
    let everything = server.gql(STATS, variables.clone()).await["executionStats"].clone();
    for fields in [
        "total successRate totalCost duration { p50Ms p95Ms }",
        "active byStatus { status count } totalTokens",
        "avgCost totalApiCalls totalRetries duration { avgMs minMs maxMs }",
        "... on ExecutionStats { duration { p90Ms p99Ms } }",
    ] {
        let query = format!(
            "query($g: [StatsDimension!], $b: TimeBucket) {{ executionStats(groupBy: $g, \
               bucket: $b, limit: 1000) {{ keys {{ value }} bucketStart {fields} }} }}"
        );
        let narrow = server.gql(&query, variables.clone()).await["executionStats"].clone();
        assert_eq!(
            narrow.as_array().unwrap().len(),
            everything.as_array().unwrap().len()
        );
        assert!(
            contained(&narrow, &everything),
            "{fields}: {narrow} in {everything}"
        );
    }
}

/// Whether every field of `part` is in `whole` with the same value (numbers up to
/// the order in which a float sum was added up).
fn contained(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(part), Value::Object(whole)) => part
            .iter()
            .all(|(key, value)| whole.get(key).is_some_and(|w| contained(value, w))),
        (Value::Array(part), Value::Array(whole)) => {
            part.len() == whole.len() && part.iter().zip(whole).all(|(p, w)| contained(p, w))
        }
        (Value::Number(p), Value::Number(w)) => {
            let (p, w) = (p.as_f64().unwrap(), w.as_f64().unwrap());
            (p - w).abs() <= 1e-9 * p.abs().max(1.0)
        }
        _ => part == whole,
    }
}

/// `bucket: DAY` rows against the oracle's executions per UTC day of creation.
async fn check_days(server: &TestServer, all: &[Value]) {
    let rows = server.gql(STATS, json!({ "b": "DAY" })).await["executionStats"].clone();
    let mut days: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in all {
        let created = DateTime::parse_from_rfc3339(e["createdAt"].as_str().unwrap()).unwrap();
        let day = Utc
            .with_ymd_and_hms(created.year(), created.month(), created.day(), 0, 0, 0)
            .unwrap();
        days.entry(day.to_rfc3339()).or_default().push(e);
    }
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), days.len());
    for row in rows {
        let start = DateTime::parse_from_rfc3339(row["bucketStart"].as_str().unwrap()).unwrap();
        let day = start.with_timezone(&Utc).to_rfc3339();
        check_group(row, &days[&day], &day);
    }
}

async fn stats_match_the_oracle(server: &TestServer) {
    seed(server).await;
    let admin = server.admin();
    let all = everything(server, &admin).await;
    assert_eq!(all.len(), 24);

    // No grouping: one row over everything.
    let rows = server.gql(STATS, json!({})).await["executionStats"].clone();
    check_group(&rows[0], &all.iter().collect::<Vec<_>>(), "all");

    check_groupings(server, &all).await;
    check_narrow_selections(server).await;

    // Buckets: everything was created in the same minute, day and month.
    let created = DateTime::parse_from_rfc3339(all[0]["createdAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let day = Utc
        .with_ymd_and_hms(created.year(), created.month(), created.day(), 0, 0, 0)
        .unwrap();
    let monday = day - chrono::Duration::days(created.weekday().num_days_from_monday() as i64);
    let month = Utc
        .with_ymd_and_hms(created.year(), created.month(), 1, 0, 0, 0)
        .unwrap();
    for (bucket, start) in [("DAY", day), ("WEEK", monday), ("MONTH", month)] {
        let rows = server.gql(STATS, json!({ "b": bucket })).await["executionStats"].clone();
        let rows = rows.as_array().unwrap();
        if rows.len() == 1 {
            let got =
                DateTime::parse_from_rfc3339(rows[0]["bucketStart"].as_str().unwrap()).unwrap();
            assert_eq!(got, start, "{bucket}");
            assert_eq!(rows[0]["total"], 24);
        } else {
            // The seed straddled a boundary: buckets still add up and are ordered.
            assert_eq!(
                rows.iter()
                    .map(|r| r["total"].as_i64().unwrap())
                    .sum::<i64>(),
                24
            );
        }
    }

    // Tenant scope: a viewer of acme sees only acme's executions.
    let viewer = server.token(Role::Viewer, Some("acme"));
    let mine = everything(server, &viewer).await;
    assert_eq!(mine.len(), 12);
    let body = server.gql_as(Some(&viewer), STATS, json!({})).await;
    check_group(
        &body["data"]["executionStats"][0],
        &mine.iter().collect::<Vec<_>>(),
        "acme",
    );
}

async fn errors_and_steps_match_the_oracle(server: &TestServer) {
    seed(server).await;
    let all = everything(server, &server.admin()).await;
    check_errors_and_steps(server, &all).await;
    let step_rows = server.gql("{ stepStats { stepName } }", json!({})).await["stepStats"].clone();
    assert_eq!(step_rows.as_array().unwrap().len(), 2);

    let bad = server
        .gql_as(
            Some(&server.admin()),
            "{ stepStats(limit: 0) { total } }",
            json!({}),
        )
        .await;
    assert_eq!(support::error_code(&bad).as_deref(), Some("BAD_USER_INPUT"));
}

/// errorDistribution and stepStats against the oracle over `all` (everything visible).
async fn check_errors_and_steps(server: &TestServer, all: &[Value]) {
    let errors = server
        .gql(
            "{ errorDistribution { code count recoverable sampleMessage lastSeenAt } }",
            json!({}),
        )
        .await["errorDistribution"]
        .clone();
    let mut expected: BTreeMap<String, (i64, i64, String)> = BTreeMap::new();
    for e in all.iter().filter(|e| !e["error"].is_null()) {
        let entry = expected
            .entry(e["error"]["code"].as_str().unwrap().to_owned())
            .or_default();
        entry.0 += 1;
        entry.1 += e["error"]["recoverable"].as_bool().unwrap() as i64;
        entry.2 = entry
            .2
            .clone()
            .max(e["error"]["message"].as_str().unwrap().to_owned());
    }
    assert_eq!(errors.as_array().unwrap().len(), expected.len());
    for row in errors.as_array().unwrap() {
        let (count, recoverable, sample) = &expected[row["code"].as_str().unwrap()];
        assert_eq!(row["count"], *count);
        assert_eq!(row["recoverable"], *recoverable);
        assert_eq!(row["sampleMessage"], sample.as_str());
    }

    let steps = server
        .gql(
            "{ stepStats { stepName total failed avgDurationMs p95DurationMs } }",
            json!({}),
        )
        .await["stepStats"]
        .clone();
    for row in steps.as_array().unwrap() {
        let name = row["stepName"].as_str().unwrap();
        let all_steps: Vec<&Value> = all
            .iter()
            .flat_map(|e| e["steps"].as_array().unwrap())
            .filter(|s| s["name"] == name)
            .collect();
        assert_eq!(row["total"], all_steps.len() as i64, "{name}");
        assert_eq!(
            row["failed"],
            all_steps.iter().filter(|s| s["status"] == "FAILED").count() as i64
        );
        let mut durations: Vec<i64> = all_steps
            .iter()
            .filter_map(|s| s["durationMs"].as_i64())
            .collect();
        durations.sort();
        close(
            &row["p95DurationMs"],
            percentile_cont(&durations, 0.95),
            name,
        );
        close(
            &row["avgDurationMs"],
            (!durations.is_empty())
                .then(|| durations.iter().sum::<i64>() as f64 / durations.len() as f64),
            name,
        );
    }
}

/// Three hundred `exechub seed` histories over 30 days: every grouping, the daily
/// buckets, errors and steps against the oracle.
async fn seeded_history_matches_the_oracle(server: &TestServer) {
    let status = server
        .spawn("seed", &["--count", "300", "--random-seed", "9"])
        .wait()
        .expect("seed runs");
    assert!(status.success());
    let all = everything(server, &server.admin()).await;
    assert_eq!(all.len(), 300);
    let rows = server.gql(STATS, json!({})).await["executionStats"].clone();
    check_group(&rows[0], &all.iter().collect::<Vec<_>>(), "all");
    check_groupings(server, &all).await;
    check_days(server, &all).await;
    check_errors_and_steps(server, &all).await;
}

backend_tests!(
    stats_match_the_oracle,
    errors_and_steps_match_the_oracle,
    seeded_history_matches_the_oracle
);
