//! GraphQL over HTTP as the spec has it: the npm `graphql-http` package's
//! `auditServer` against a real server reports every check ok (errors, warnings and
//! notices alike); and the negotiation it rests on, checked directly: the media type
//! follows `Accept`, and under `application/graphql-response+json` a request that
//! cannot run is a 400 without `data` while an execution error is still a 200.

mod support;

use serde_json::{Value, json};
use support::TestServer;

async fn audit_reports_every_check_ok(server: &TestServer) {
    let url = format!("{}/graphql", server.base);
    let checks = support::node_lines("graphql-http-audit", "audit.mjs", &[&url]).await;
    assert!(checks.len() >= 50, "only {} checks ran", checks.len());
    let failed: Vec<&Value> = checks.iter().filter(|c| c["status"] != "ok").collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// POSTs `query` with `accept`; the status, content type and body.
async fn post(server: &TestServer, accept: Option<&str>, query: &str) -> (u16, String, Value) {
    let mut request = server
        .client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(server.admin())
        .json(&json!({ "query": query }));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let media = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, media, response.json().await.unwrap())
}

async fn media_type_and_status_follow_accept(server: &TestServer) {
    const GRJ: &str = "application/graphql-response+json";
    let (status, media, body) = post(server, None, "{ me { subject } }").await;
    assert_eq!((status, media.as_str()), (200, "application/json"));
    assert_eq!(body["data"]["me"]["subject"], "admin-none");
    let (_, media, _) = post(
        server,
        Some(&format!("{GRJ}, application/json;q=0.9")),
        "{ me { subject } }",
    )
    .await;
    assert_eq!(media, GRJ);

    // Does not parse / does not validate: 400 and no data under the new media type,
    // 200 with `data: null` under application/json (as older clients expect).
    for broken in ["{ me { subject ", "{ noSuchField }"] {
        let (status, media, body) = post(server, Some(GRJ), broken).await;
        assert_eq!((status, media.as_str()), (400, GRJ), "{broken}: {body}");
        assert!(
            body.get("data").is_none() && body["errors"][0]["message"].is_string(),
            "{body}"
        );
        let (status, _, body) = post(server, Some("application/json"), broken).await;
        assert_eq!(status, 200, "{broken}");
        assert!(body["errors"].is_array(), "{body}");
    }

    // It ran and a field failed: 200 with `data` (null: the field is non-null) and
    // the error's code, either way.
    let missing = r#"mutation { startExecution(id: "nope") { id } }"#;
    for accept in [GRJ, "application/json"] {
        let (status, _, body) = post(server, Some(accept), missing).await;
        assert_eq!(status, 200, "{accept}: {body}");
        assert_eq!(
            support::error_code(&body).as_deref(),
            Some("NOT_FOUND"),
            "{body}"
        );
        assert!(body.get("data").is_some(), "{body}");
    }
}

backend_tests!(
    audit_reports_every_check_ok,
    media_type_and_status_follow_accept
);
