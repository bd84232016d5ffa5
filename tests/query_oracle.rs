//! The filter language and Relay paging against an oracle: a few hundred seeded
//! executions (`exechub seed`), a few hundred random filters (every field and
//! operator, nested `and`/`or`/`not`) and orderings run through GraphQL, and the same
//! filter evaluated in plain Rust over the executions read back. Pages are walked
//! forward and backward and must join up to the oracle's ordered list.

mod support;

use std::cmp::Ordering;

use chrono::DateTime;
use exechub::auth::Role;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use support::{TestServer, list_query};

const EXECUTIONS: usize = 300;
const CASES: usize = 300;

const FIELDS: &str = "id orderId serviceId customerId providerId status priority progress tags
    assignee { type id model } error { code message recoverable } result { summary }
    metrics { durationMs cost tokensUsed retries startedAt completedAt }
    metadata { environment } createdAt updatedAt steps { name }";

// ------------------------------------------------------------------ the oracle

/// The value a filter field looks at, as the API shows it (null when absent).
fn field<'a>(e: &'a Value, name: &str) -> &'a Value {
    match name {
        "assigneeId" => &e["assignee"]["id"],
        "assigneeType" => &e["assignee"]["type"],
        "assigneeModel" => &e["assignee"]["model"],
        "durationMs" | "cost" | "tokensUsed" | "retries" | "startedAt" | "completedAt" => {
            &e["metrics"][name]
        }
        "errorCode" => &e["error"]["code"],
        "errorRecoverable" => &e["error"]["recoverable"],
        "environment" => &e["metadata"]["environment"],
        _ => &e[name],
    }
}

fn is_time(name: &str) -> bool {
    name.ends_with("At")
}

fn priority_rank(v: &Value) -> f64 {
    ["LOW", "NORMAL", "HIGH", "URGENT"]
        .iter()
        .position(|p| v == *p)
        .expect("a priority") as f64
}

/// Orders two non-null values of one field: times by instant, priorities by rank,
/// numbers numerically, strings as text.
fn compare(name: &str, a: &Value, b: &Value) -> Ordering {
    let number = |v: &Value| -> f64 {
        if is_time(name) {
            DateTime::parse_from_rfc3339(v.as_str().unwrap())
                .unwrap()
                .timestamp_millis() as f64
        } else if name == "priority" {
            priority_rank(v)
        } else {
            v.as_f64().unwrap()
        }
    };
    match a {
        Value::String(s) if !is_time(name) && name != "priority" => {
            s.as_str().cmp(b.as_str().unwrap())
        }
        _ => number(a).partial_cmp(&number(b)).unwrap(),
    }
}

fn operator(name: &str, op: &str, arg: &Value, v: &Value) -> bool {
    let lower = |v: &Value| v.as_str().unwrap().to_lowercase();
    let listed = |list: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .any(|x| compare(name, x, v).is_eq())
    };
    match op {
        "isNull" => v.is_null() == arg.as_bool().unwrap(),
        "ne" => v.is_null() || compare(name, v, arg).is_ne(),
        "notIn" => v.is_null() || !listed(arg),
        _ if v.is_null() => false,
        "eq" => compare(name, v, arg).is_eq(),
        "in" => listed(arg),
        "gt" => compare(name, v, arg).is_gt(),
        "gte" => compare(name, v, arg).is_ge(),
        "lt" => compare(name, v, arg).is_lt(),
        "lte" => compare(name, v, arg).is_le(),
        "contains" => lower(v).contains(&lower(arg)),
        "startsWith" => lower(v).starts_with(&lower(arg)),
        other => panic!("oracle has no operator {other}"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The filter evaluated in plain Rust: `not` is the complement of what it wraps.
fn matches(filter: &Value, e: &Value) -> bool {
    filter
        .as_object()
        .unwrap()
        .iter()
        .all(|(key, arg)| match key.as_str() {
            "and" => arg.as_array().unwrap().iter().all(|f| matches(f, e)),
            "or" => arg.as_array().unwrap().iter().any(|f| matches(f, e)),
            "not" => !matches(arg, e),
            "errorRecoverable" => field(e, key) == arg,
            "search" => {
                let needle = arg.as_str().unwrap().to_lowercase();
                let mut haystacks = vec![
                    &e["orderId"],
                    &e["serviceId"],
                    &e["result"]["summary"],
                    &e["error"]["message"],
                ];
                haystacks.extend(e["steps"].as_array().unwrap().iter().map(|s| &s["name"]));
                haystacks.iter().any(|h| {
                    h.as_str()
                        .is_some_and(|h| h.to_lowercase().contains(&needle))
                })
            }
            "tags" => {
                let tags = strings(&e["tags"]);
                arg.as_object().unwrap().iter().all(|(op, list)| {
                    let mut wanted = strings(list).into_iter();
                    match op.as_str() {
                        "hasAll" => wanted.all(|t| tags.contains(&t)),
                        "hasAny" => wanted.any(|t| tags.contains(&t)),
                        "hasNone" => !wanted.any(|t| tags.contains(&t)),
                        other => panic!("oracle has no tag operator {other}"),
                    }
                })
            }
            name => arg
                .as_object()
                .unwrap()
                .iter()
                .all(|(op, value)| operator(name, op, value, field(e, name))),
        })
}

/// The sort value of an `orderBy` field; nullable ones sort as -1, like the server.
fn sort_value(sort_field: &str, e: &Value) -> (String, Value) {
    let (name, nullable) = match sort_field {
        "CREATED_AT" => ("createdAt", false),
        "UPDATED_AT" => ("updatedAt", false),
        "STARTED_AT" => ("startedAt", true),
        "COMPLETED_AT" => ("completedAt", true),
        "PRIORITY" => ("priority", false),
        "PROGRESS" => ("progress", false),
        "DURATION" => ("durationMs", true),
        "COST" => ("cost", true),
        "STATUS" => ("status", false),
        other => panic!("no sort field {other}"),
    };
    let v = field(e, name);
    if v.is_null() {
        assert!(nullable, "{name} is null");
        return (name.to_owned(), Value::Null);
    }
    (name.to_owned(), v.clone())
}

fn order(order_by: &[(String, bool)], a: &Value, b: &Value) -> Ordering {
    for (sort_field, descending) in order_by {
        let (name, x) = sort_value(sort_field, a);
        let (_, y) = sort_value(sort_field, b);
        let ordering = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => compare(&name, &x, &y),
        };
        let ordering = if *descending {
            ordering.reverse()
        } else {
            ordering
        };
        if ordering.is_ne() {
            return ordering;
        }
    }
    // Ties: by id, in the first key's direction.
    let ids = a["id"].as_str().cmp(&b["id"].as_str());
    if order_by[0].1 { ids.reverse() } else { ids }
}

// ------------------------------------------------------------------ random filters

const ID_FIELDS: [&str; 6] = [
    "orderId",
    "serviceId",
    "customerId",
    "providerId",
    "assigneeId",
    "id",
];
const STRING_FIELDS: [&str; 3] = ["assigneeModel", "errorCode", "environment"];
const NUMBER_FIELDS: [&str; 5] = ["progress", "cost", "durationMs", "tokensUsed", "retries"];
const TIME_FIELDS: [&str; 4] = ["createdAt", "updatedAt", "startedAt", "completedAt"];
const ENUMS: [(&str, &[&str]); 3] = [
    (
        "status",
        &[
            "QUEUED",
            "STARTING",
            "RUNNING",
            "PAUSED",
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "RETRY",
        ],
    ),
    ("priority", &["LOW", "NORMAL", "HIGH", "URGENT"]),
    ("assigneeType", &["AI_AGENT", "HUMAN", "HYBRID", "SYSTEM"]),
];

struct Generator<'a> {
    rng: StdRng,
    data: &'a [Value],
}

impl Generator<'_> {
    /// A value the field has somewhere in the data (non-null when there is one).
    fn sample(&mut self, name: &str) -> Value {
        let present: Vec<&Value> = self
            .data
            .iter()
            .map(|e| field(e, name))
            .filter(|v| !v.is_null())
            .collect();
        present
            .choose(&mut self.rng)
            .map(|v| (*v).clone())
            .unwrap_or(json!("none"))
    }

    fn samples(&mut self, name: &str) -> Value {
        let n = self.rng.random_range(0..4);
        Value::Array((0..n).map(|_| self.sample(name)).collect())
    }

    fn pick<'b>(&mut self, options: &[&'b str]) -> &'b str {
        options.choose(&mut self.rng).unwrap()
    }

    fn leaf(&mut self) -> (String, Value) {
        let kind = self.rng.random_range(0..8);
        let name = match kind {
            0 => self.pick(&ID_FIELDS),
            1 => self.pick(&STRING_FIELDS),
            2 | 3 => self.pick(&NUMBER_FIELDS),
            4 => self.pick(&TIME_FIELDS),
            5 => ENUMS.choose(&mut self.rng).unwrap().0,
            6 => "tags",
            _ => self.pick(&["search", "errorRecoverable"]),
        };
        let arg = match name {
            "tags" => {
                let mut ops = Map::new();
                for op in ["hasAll", "hasAny", "hasNone"] {
                    if self.rng.random_bool(0.5) {
                        let n = self.rng.random_range(0..3);
                        let tags: Vec<&str> = exechub::domain::sample::TAGS
                            .choose_multiple(&mut self.rng, n)
                            .copied()
                            .collect();
                        ops.insert(op.into(), json!(tags));
                    }
                }
                Value::Object(ops)
            }
            "search" => {
                let needles = ["fetch", "REVIEW", "done for", "timeout", "failed", "ord"];
                json!(self.pick(&needles))
            }
            "errorRecoverable" => json!(self.rng.random_bool(0.5)),
            _ => {
                let mut ops = Map::new();
                let choices: &[&str] = match kind {
                    0 => &["eq", "ne", "in", "notIn", "isNull"],
                    1 => &[
                        "eq",
                        "ne",
                        "in",
                        "notIn",
                        "contains",
                        "startsWith",
                        "isNull",
                    ],
                    2 | 3 => &["eq", "ne", "gt", "gte", "lt", "lte", "isNull"],
                    4 => &["gt", "gte", "lt", "lte", "isNull"],
                    _ if name == "priority" => &["eq", "ne", "in", "notIn", "gte", "lte"],
                    _ if name == "status" => &["eq", "ne", "in", "notIn"],
                    _ => &["eq", "in", "notIn", "isNull"],
                };
                let enum_values = ENUMS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
                for _ in 0..self.rng.random_range(1..=2) {
                    let op = self.pick(choices);
                    let value = match (op, enum_values) {
                        ("isNull", _) => json!(self.rng.random_bool(0.5)),
                        ("in" | "notIn", Some(values)) => {
                            let n = self.rng.random_range(0..3);
                            json!(values.choose_multiple(&mut self.rng, n).collect::<Vec<_>>())
                        }
                        (_, Some(values)) => json!(self.pick(values)),
                        ("in" | "notIn", None) => self.samples(name),
                        ("contains" | "startsWith", None) => {
                            let whole = self.sample(name);
                            let whole = whole.as_str().unwrap_or("x");
                            let cut = self.rng.random_range(1..=whole.len().min(4));
                            json!(whole[..cut].to_uppercase())
                        }
                        _ => self.sample(name),
                    };
                    ops.insert(op.into(), value);
                }
                Value::Object(ops)
            }
        };
        (name.to_owned(), arg)
    }

    fn filter(&mut self, depth: usize) -> Value {
        let mut filter = Map::new();
        for _ in 0..self.rng.random_range(1..=2) {
            let (name, arg) = self.leaf();
            filter.insert(name, arg);
        }
        if depth < 3 && self.rng.random_bool(0.4) {
            let connective = self.pick(&["and", "or", "not"]);
            let value = if connective == "not" {
                self.filter(depth + 1)
            } else {
                let n = self.rng.random_range(1..=3);
                Value::Array((0..n).map(|_| self.filter(depth + 1)).collect())
            };
            filter.insert(connective.into(), value);
        }
        Value::Object(filter)
    }

    fn order_by(&mut self) -> Vec<(String, bool)> {
        let fields = [
            "CREATED_AT",
            "UPDATED_AT",
            "STARTED_AT",
            "COMPLETED_AT",
            "PRIORITY",
            "PROGRESS",
            "DURATION",
            "COST",
            "STATUS",
        ];
        let n = self.rng.random_range(0..=2);
        let chosen: Vec<&str> = fields.choose_multiple(&mut self.rng, n).copied().collect();
        chosen
            .into_iter()
            .map(|f| (f.to_owned(), self.rng.random_bool(0.5)))
            .collect()
    }
}

// ------------------------------------------------------------------ the suite

/// For a failure message: the rows one list has and the other lacks.
fn difference(all: &[Value], expected: &[String], got: &[String]) -> String {
    let describe = |id: &String| {
        let e = all.iter().find(|e| e["id"] == id.as_str());
        format!("{id}: {}", e.map_or("unknown".into(), Value::to_string))
    };
    let extra: Vec<String> = got
        .iter()
        .filter(|id| !expected.contains(id))
        .map(describe)
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|id| !got.contains(id))
        .map(describe)
        .collect();
    format!("extra {extra:#?}, missing {missing:#?}")
}

fn order_json(order_by: &[(String, bool)]) -> Value {
    order_by
        .iter()
        .map(|(f, desc)| json!({ "field": f, "direction": if *desc { "DESC" } else { "ASC" } }))
        .collect()
}

fn ids(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn list(server: &TestServer, token: &str, variables: Value) -> Value {
    let body = server
        .gql_as(Some(token), &list_query("id"), variables.clone())
        .await;
    assert!(body["errors"].is_null(), "{variables}: {body}");
    body["data"]["executions"].clone()
}

/// Walks every page of `size` forward, then backward, joining them up.
async fn walk(
    server: &TestServer,
    token: &str,
    base: &Value,
    size: i64,
) -> (Vec<String>, Vec<String>) {
    let mut forward = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut variables = base.clone();
        variables["first"] = json!(size);
        variables["after"] = json!(after);
        let page = list(server, token, variables).await;
        forward.extend(ids(&page));
        assert_eq!(page["pageInfo"]["hasPreviousPage"], after.is_some());
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(String::from);
    }
    let mut backward: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut variables = base.clone();
        variables["last"] = json!(size);
        variables["before"] = json!(before);
        let page = list(server, token, variables).await;
        let mut earlier = ids(&page);
        earlier.extend(backward);
        backward = earlier;
        assert_eq!(page["pageInfo"]["hasNextPage"], before.is_some());
        if page["pageInfo"]["hasPreviousPage"] == false {
            break;
        }
        before = page["pageInfo"]["startCursor"].as_str().map(String::from);
    }
    (forward, backward)
}

async fn random_filters_and_pages_match_the_oracle(server: &TestServer) {
    let status = server
        .spawn(
            "seed",
            &["--count", &EXECUTIONS.to_string(), "--random-seed", "5"],
        )
        .wait()
        .expect("seed runs");
    assert!(status.success());
    let admin = server.admin();
    let everything = server
        .gql_as(
            Some(&admin),
            &format!("{{ executions(first: 500) {{ nodes {{ {FIELDS} }} }} }}"),
            json!({}),
        )
        .await;
    let all = everything["data"]["executions"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{everything}"))
        .clone();
    assert_eq!(all.len(), EXECUTIONS);

    let seed = std::env::var("EXECHUB_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261125);
    let mut generator = Generator {
        rng: StdRng::seed_from_u64(seed),
        data: &all,
    };
    let tenant = "customer-3";
    let viewer = server.token(Role::Viewer, Some(tenant));
    let (mut nonempty, mut walked) = (0, 0);
    for case in 0..CASES {
        let filter = generator.filter(0);
        let order_by = generator.order_by();
        // Every fifth case runs as a viewer bound to one tenant.
        let scoped = case % 5 == 4;
        let (token, visible): (&str, Vec<&Value>) = if scoped {
            (
                &viewer,
                all.iter().filter(|e| e["customerId"] == tenant).collect(),
            )
        } else {
            (&admin, all.iter().collect())
        };
        let mut expected: Vec<&Value> = visible
            .into_iter()
            .filter(|e| matches(&filter, e))
            .collect();
        // No orderBy means newest first.
        let oracle_order = if order_by.is_empty() {
            vec![("CREATED_AT".to_owned(), true)]
        } else {
            order_by.clone()
        };
        expected.sort_by(|a, b| order(&oracle_order, a, b));
        let expected: Vec<String> = expected
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        let what = format!("case {case} (seed {seed}): filter {filter} orderBy {order_by:?}");

        let base = json!({ "filter": filter, "orderBy": order_json(&order_by) });
        let mut variables = base.clone();
        variables["first"] = json!(500);
        let page = list(server, token, variables).await;
        assert_eq!(page["totalCount"], expected.len(), "{what}");
        let got = ids(&page);
        assert_eq!(
            got,
            expected,
            "{what}: {}",
            difference(&all, &expected, &got)
        );
        nonempty += usize::from(!expected.is_empty());

        if case % 10 == 0 && expected.len() > 1 {
            let size = generator.rng.random_range(1..=expected.len().min(40)) as i64;
            let (forward, backward) = walk(server, token, &base, size).await;
            let differs = |got: &[String]| difference(&all, &expected, got);
            assert_eq!(
                forward,
                expected,
                "forward by {size}: {what}: {}",
                differs(&forward)
            );
            assert_eq!(
                backward,
                expected,
                "backward by {size}: {what}: {}",
                differs(&backward)
            );
            walked += 1;
        }
    }
    // The random filters are worth something only if many of them select rows.
    assert!(
        nonempty > CASES / 3,
        "only {nonempty} filters matched anything"
    );
    assert!(walked >= 10, "only {walked} cases were walked page by page");
}

backend_tests!(random_filters_and_pages_match_the_oracle);
