//! What the standard GraphQL tools send works under the default limits: graphql-js'
//! `getIntrospectionQuery()` (plain and with GraphiQL's options) gives a schema that
//! `buildClientSchema` accepts, while a real query past `--max-query-depth` or
//! `--max-query-complexity` is refused with `QUERY_TOO_COMPLEX`; and GraphiQL, in a
//! headless Chromium that may reach nothing but the server, lists `Query`'s fields in
//! its docs explorer once a token is set.

mod support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::{Backend, Options, TestServer, error_code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_js_introspection_builds_a_client_schema() {
    let server = TestServer::start(Backend::Sqlite).await;
    let url = format!("{}/graphql", server.base);
    let variants = support::node_lines(
        "graphql-http-audit",
        "introspect.mjs",
        &[&url, &server.admin()],
    )
    .await;
    assert_eq!(variants.len(), 2, "{variants:#?}");
    for variant in &variants {
        assert_eq!(variant["errors"], Value::Null, "{variant:#}");
        assert_eq!(variant["status"], 200);
        let fields = variant["queryFields"].as_array().unwrap();
        assert!(fields.contains(&json!("executions")), "{variant:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_queries_stay_within_the_limits() {
    let mut options = Options::default();
    options.serve.max_query_depth = 3;
    // A page of 50 executions' ids costs 1,000 (the query) + 50 × 2.
    options.serve.max_query_complexity = 1_200;
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    let admin = server.admin();
    let ask = |query: &'static str| server.gql_as(Some(&admin), query, json!({}));

    let within = ask("{ executions { nodes { id } } __schema { types { fields { type { ofType { name } } } } } }").await;
    assert!(within.get("errors").is_none(), "{within}");

    let deep = ask("{ executions { nodes { steps { id } } } }").await;
    assert_eq!(
        error_code(&deep).as_deref(),
        Some("QUERY_TOO_COMPLEX"),
        "{deep}"
    );
    let message = deep["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("nested too deep"), "{message}");

    let wide = ask("{ executions { nodes { id orderId serviceId status priority } } }").await;
    assert_eq!(
        error_code(&wide).as_deref(),
        Some("QUERY_TOO_COMPLEX"),
        "{wide}"
    );
    let spread = ask("{ executions { ...A } } fragment A on ExecutionConnection { nodes { ...B } } fragment B on Execution { steps { id } }").await;
    assert_eq!(
        error_code(&spread).as_deref(),
        Some("QUERY_TOO_COMPLEX"),
        "{spread}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_docs_list_query_fields_offline() {
    let chromium = support::chromium();
    let server = TestServer::start(Backend::Sqlite).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let lines = support::node_lines(
        "dashboard-browser",
        "graphiql.mjs",
        &[
            &server.base,
            &server.admin(),
            shots.to_str().unwrap(),
            &chromium,
        ],
    )
    .await;
    let seen = &lines[0];
    assert_eq!(
        seen["external"],
        json!([]),
        "GraphiQL reached out: {seen:#}"
    );
    assert_eq!(seen["pageErrors"], json!([]), "{seen:#}");
    let fields = seen["queryFields"].as_array().unwrap();
    for field in ["execution", "executions", "me"] {
        assert!(fields.contains(&json!(field)), "{field} missing: {seen:#}");
    }
}
