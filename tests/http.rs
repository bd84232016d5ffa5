//! The HTTP surface: health and readiness, GraphiQL and GET queries, mutations
//! refused over GET, the body-size and query-depth limits, the committed schema, and
//! the real binary starting on SQLite with nothing configured.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{TestServer, error_code, post_gql};

async fn health_graphiql_and_get(server: &TestServer) {
    let get = |path: &str| server.client.get(format!("{}{path}", server.base));
    assert_eq!(
        get("/healthz").send().await.unwrap().text().await.unwrap(),
        "ok"
    );
    assert_eq!(get("/readyz").send().await.unwrap().status(), 200);

    let page = get("/graphql")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );

    let query = get("/graphql?query=%7B%20me%20%7B%20subject%20%7D%20%7D")
        .bearer_auth(server.admin())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = query.json().await.unwrap();
    assert_eq!(body["data"]["me"]["subject"], "admin-none");

    let mutation =
        get("/graphql?query=mutation%20%7B%20cancelExecution(id%3A%22x%22)%20%7B%20id%20%7D%20%7D")
            .bearer_auth(server.admin())
            .send()
            .await
            .unwrap();
    assert_eq!(mutation.status(), 405);
}

async fn limits(server: &TestServer) {
    // Announce a 3 MiB body and send none of it: the limit answers from the headers.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        3 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 64];
    let read = stream.read(&mut answer).await.unwrap();
    let status_line = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

    let deep = "{ executions { nodes { steps { error { context } } } } }";
    let ok = server.gql_as(Some(&server.admin()), deep, json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok}");
    // Whatever async-graphql refuses by itself carries a code too.
    let admin = server.admin();
    for (query, code) in [
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ execution { id } }", "GRAPHQL_VALIDATION_FAILED"),
        (
            "{ executions(filter: { status: { eq: NOPE } }) { totalCount } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("{ me { subject ", "GRAPHQL_PARSE_FAILED"),
    ] {
        let body = server.gql_as(Some(&admin), query, json!({})).await;
        assert_eq!(error_code(&body).as_deref(), Some(code), "{query}: {body}");
    }
    // A body that is no GraphQL request, or comes without a media type: a 4xx with a
    // GraphQL error document, not debug text.
    let url = format!("{}/graphql", server.base);
    let malformed = server
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"query": "{ me "#)
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: serde_json::Value = malformed.json().await.unwrap();
    assert_eq!(error_code(&body).as_deref(), Some("BAD_REQUEST"), "{body}");
    let untyped = server
        .client
        .post(&url)
        .body(r#"{"query": "{ me { subject } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(untyped.status(), 415);
    let unknown = server
        .gql_as(
            Some(&server.admin()),
            "query($id: ID!) { execution(id: $id) { id } }",
            json!({ "id": "missing" }),
        )
        .await;
    assert_eq!(unknown["data"]["execution"], serde_json::Value::Null);
    assert_eq!(error_code(&unknown), None);
}

backend_tests!(health_graphiql_and_get, limits);

#[test]
fn committed_schema_is_current() {
    let output = Command::new(env!("CARGO_BIN_EXE_exechub"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(
        generated == committed,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql`"
    );
}

/// The binary with nothing configured: SQLite in the data dir, a generated secret
/// that `token` shares, and a token that the server accepts.
#[tokio::test]
async fn binary_serves_on_sqlite_with_a_generated_secret() {
    let dir = std::env::temp_dir().join(format!("exechub-bin-{}", uuid::Uuid::now_v7()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exechub"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&dir)
        .env_remove("EXECHUB_DATABASE_URL")
        .env_remove("EXECHUB_JWT_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = Command::new(env!("CARGO_BIN_EXE_exechub"))
        .args(["token", "--role", "operator", "--tenant", "acme"])
        .arg("--data-dir")
        .arg(&dir)
        .env_remove("EXECHUB_JWT_SECRET")
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let body = post_gql(
        &client,
        &base,
        Some(&token),
        "{ me { role tenant } }",
        json!({}),
    )
    .await;
    // SIGTERM ends the server cleanly.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let database_created = dir.join("exechub.db").exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        body["data"]["me"],
        json!({ "role": "operator", "tenant": "acme" })
    );
    assert!(
        database_created,
        "the SQLite database lives in the data dir"
    );
}
