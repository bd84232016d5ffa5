//! Authentication and authorisation: every role against every mutation, tenant
//! isolation (customer and provider), bad tokens, and the audit trail.

mod support;

use std::time::Duration;

use exechub::auth::Role;
use exechub::config::JwtConfig;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use support::{Backend, Options, SECRET, TestServer, error_code};

/// Each mutation with the permission it needs ("manage" or "report" or "create").
const MUTATIONS: [(&str, &str); 18] = [
    (
        "create",
        "mutation($id: ID!) { createExecution(input: { orderId: $id, serviceId: \"s\", customerId: \"acme\" }) { id } }",
    ),
    (
        "manage",
        "mutation($id: ID!) { updateExecution(id: $id, input: { tags: [\"t\"] }) { id } }",
    ),
    (
        "manage",
        "mutation($id: ID!) { startExecution(id: $id) { id } }",
    ),
    (
        "manage",
        "mutation($id: ID!) { pauseExecution(id: $id) { id } }",
    ),
    (
        "manage",
        "mutation($id: ID!) { resumeExecution(id: $id) { id } }",
    ),
    (
        "manage",
        "mutation($id: ID!) { cancelExecution(id: $id) { id } }",
    ),
    (
        "manage",
        "mutation($id: ID!) { completeExecution(id: $id, result: { summary: \"s\" }) { id } }",
    ),
    (
        "manage",
        "mutation($id: ID!) { failExecution(id: $id, error: { code: \"X\", message: \"m\" }) { id } }",
    ),
    (
        "manage",
        "mutation($id: ID!) { retryExecution(id: $id) { id } }",
    ),
    (
        "report",
        "mutation($id: ID!) { updateProgress(id: $id, progress: 10) { id } }",
    ),
    (
        "report",
        "mutation($id: ID!) { recordMetrics(id: $id, metrics: { tokensUsed: 1 }) { id } }",
    ),
    (
        "report",
        "mutation($id: ID!) { appendLog(id: $id, log: { message: \"m\" }) { id } }",
    ),
    (
        "report",
        "mutation($id: ID!) { appendLogs(id: $id, logs: [{ message: \"m\" }]) { id } }",
    ),
    (
        "report",
        "mutation($id: ID!) { createCheckpoint(id: $id, input: { state: {} }) { id } }",
    ),
    (
        "report",
        "mutation($id: ID!) { startStep(executionId: $id, step: { id: \"a\" }) { id } }",
    ),
    (
        "report",
        "mutation($id: ID!) { completeStep(executionId: $id, stepId: \"b\") { id } }",
    ),
    (
        "report",
        "mutation($id: ID!) { failStep(executionId: $id, stepId: \"c\", error: { code: \"X\", message: \"m\" }) { id } }",
    ),
    (
        "report",
        "mutation($id: ID!) { skipStep(executionId: $id, stepId: \"d\") { id } }",
    ),
];

fn may(role: Role, permission: &str) -> bool {
    match role {
        Role::Admin | Role::Operator => true,
        Role::Agent => permission == "report",
        Role::Viewer => false,
    }
}

async fn running_execution(server: &TestServer) -> String {
    server
        .create(
            json!({ "orderId": "o", "serviceId": "s", "customerId": "acme", "autoStart": true,
                        "steps": [{ "id": "a", "name": "A", "dependsOn": [] },
                                  { "id": "b", "name": "B", "dependsOn": [] },
                                  { "id": "c", "name": "C", "dependsOn": [] },
                                  { "id": "d", "name": "D", "dependsOn": [] }] }),
        )
        .await
}

async fn every_role_against_every_mutation(server: &TestServer) {
    let mut operator_successes = 0;
    for role in [Role::Admin, Role::Operator, Role::Agent, Role::Viewer] {
        let token = server.token(role, Some("acme"));
        for (permission, mutation) in MUTATIONS {
            let id = running_execution(server).await;
            // b and c are running so that completing or failing them is possible.
            for step in ["b", "c"] {
                server.start_step(&id, step).await;
            }
            let body = server
                .gql_as(Some(&token), mutation, json!({ "id": id }))
                .await;
            let code = error_code(&body);
            if may(role, permission) {
                assert!(
                    code.is_none() || code.as_deref() == Some("INVALID_TRANSITION"),
                    "{role:?} should be allowed {mutation}: {body}"
                );
                if role == Role::Operator && code.is_none() {
                    operator_successes += 1;
                }
            } else {
                assert_eq!(
                    code.as_deref(),
                    Some("FORBIDDEN"),
                    "{role:?} {mutation}: {body}"
                );
            }
        }
    }
    // Every successful mutation left an audit row naming its subject.
    assert_eq!(
        operator_successes, 15,
        "all but start, resume and retry of a running execution"
    );
    assert_eq!(
        server
            .count("SELECT COUNT(*) FROM audit_log WHERE subject = 'operator-acme'")
            .await,
        operator_successes
    );
    assert_eq!(
        server
            .count("SELECT COUNT(*) FROM audit_log WHERE subject = 'viewer-acme'")
            .await,
        0
    );
}

async fn tenants_see_only_their_executions(server: &TestServer) {
    let acme = server
        .create(json!({ "orderId": "o", "serviceId": "s", "customerId": "acme" }))
        .await;
    let provided = server
        .create(
            json!({ "orderId": "o", "serviceId": "s", "customerId": "acme", "providerId": "prov" }),
        )
        .await;
    let globex = server.token(Role::Operator, Some("globex"));
    let read = "query($id: ID!) { execution(id: $id) { id } node(id: $id) { id } }";

    let body = server
        .gql_as(Some(&globex), read, json!({ "id": acme }))
        .await;
    assert_eq!(
        body["data"],
        json!({ "execution": null, "node": null }),
        "{body}"
    );
    let body = server
        .gql_as(
            Some(&globex),
            "mutation($id: ID!) { cancelExecution(id: $id) { id } }",
            json!({ "id": acme }),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
    let list = server
        .gql_as(
            Some(&globex),
            "{ executions { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["data"]["executions"],
        json!({ "totalCount": 0, "nodes": [] })
    );

    let provider = server.token(Role::Viewer, Some("prov"));
    let body = server
        .gql_as(Some(&provider), read, json!({ "id": provided }))
        .await;
    assert_eq!(body["data"]["execution"]["id"], provided.as_str());
    let body = server
        .gql_as(Some(&provider), read, json!({ "id": acme }))
        .await;
    assert_eq!(body["data"]["execution"], Value::Null);

    let acme_viewer = server.token(Role::Viewer, Some("acme"));
    let list = server
        .gql_as(
            Some(&acme_viewer),
            "{ executions { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(list["data"]["executions"]["totalCount"], 2);

    // An operator creates within its tenant only; without customerId it is its own.
    let acme_operator = server.token(Role::Operator, Some("acme"));
    let body = server
        .gql_as(Some(&acme_operator),
                "mutation { createExecution(input: { orderId: \"o\", serviceId: \"s\", customerId: \"globex\" }) { id } }",
                json!({}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
    let body = server
        .gql_as(Some(&acme_operator),
                "mutation { createExecution(input: { orderId: \"o\", serviceId: \"s\" }) { customerId } }",
                json!({}))
        .await;
    assert_eq!(body["data"]["createExecution"]["customerId"], "acme");
    let me = server
        .gql_as(
            Some(&acme_operator),
            "{ me { subject role tenant } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({ "subject": "operator-acme", "role": "operator", "tenant": "acme" })
    );
}

#[derive(Clone, serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn unsigned(claims: &Claims) -> String {
    use base64::Engine;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(&serde_json::to_vec(claims).unwrap())
    )
}

async fn bad_tokens_are_rejected(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Options {
            jwt: JwtConfig {
                secret: Some(SECRET.into()),
                issuer: Some("exechub-test".into()),
                audience: Some("api".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let good = Claims {
        sub: "u",
        role: "admin",
        exp: now() + 600,
        iss: Some("exechub-test"),
        aud: Some(json!("api")),
        tenant: None,
    };
    let query = "{ me { subject } }";
    let ok = server
        .gql_as(Some(&sign(&good, SECRET)), query, json!({}))
        .await;
    assert_eq!(ok["data"]["me"]["subject"], "u", "{ok}");
    let minted = server
        .keys
        .mint(Role::Viewer, None, "m".into(), Duration::from_secs(60))
        .unwrap();
    let ok = server.gql_as(Some(&minted), query, json!({})).await;
    assert_eq!(
        ok["data"]["me"]["subject"], "m",
        "minted tokens carry iss and aud: {ok}"
    );
    let audiences = Claims {
        aud: Some(json!(["other", "api"])),
        ..good.clone()
    };
    let ok = (server.gql_as(Some(&sign(&audiences, SECRET)), query, json!({}))).await;
    assert_eq!(
        ok["data"]["me"]["subject"], "u",
        "an array of audiences: {ok}"
    );

    let bad = [
        ("no token", None),
        ("garbage", Some("not-a-jwt".to_owned())),
        ("alg none", Some(unsigned(&good))),
        ("wrong key", Some(sign(&good, "another-secret"))),
        (
            "expired",
            Some(sign(
                &Claims {
                    exp: now() - 3600,
                    ..good.clone()
                },
                SECRET,
            )),
        ),
        (
            "wrong issuer",
            Some(sign(
                &Claims {
                    iss: Some("evil"),
                    ..good.clone()
                },
                SECRET,
            )),
        ),
        (
            "no issuer",
            Some(sign(
                &Claims {
                    iss: None,
                    ..good.clone()
                },
                SECRET,
            )),
        ),
        (
            "wrong audience",
            Some(sign(
                &Claims {
                    aud: Some(json!("other")),
                    ..good.clone()
                },
                SECRET,
            )),
        ),
        (
            "exp past 2^63 seconds",
            Some(sign(
                &Claims {
                    exp: 1 << 63,
                    ..good.clone()
                },
                SECRET,
            )),
        ),
        (
            "empty tenant",
            Some(sign(
                &Claims {
                    tenant: Some(""),
                    ..good.clone()
                },
                SECRET,
            )),
        ),
        (
            "unknown role",
            Some(sign(
                &Claims {
                    role: "root",
                    ..good.clone()
                },
                SECRET,
            )),
        ),
    ];
    for (case, token) in bad {
        let body = server.gql_as(token.as_deref(), query, json!({})).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{case}: {body}"
        );
        if case == "wrong key" {
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(
                message.contains("not signed with this server's key"),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn bad_tokens_are_rejected_on_sqlite() {
    bad_tokens_are_rejected(Backend::Sqlite).await;
}

/// `execution(id)` of concurrent requests is read in one batch per tenant scope: many
/// callers of different scopes at once still each see only what theirs allows.
async fn concurrent_reads_keep_their_scopes(server: &TestServer) {
    let acme_execution = server
        .create(json!({ "orderId": "o", "serviceId": "s", "customerId": "acme" }))
        .await;
    let read = "query($id: ID!) { execution(id: $id) { id customerId } }";
    let callers = [
        (server.admin(), true),
        (server.token(Role::Viewer, Some("acme")), true),
        (server.token(Role::Viewer, Some("globex")), false),
        (server.token(Role::Viewer, None), false),
    ];
    let reads = (0..40).map(|i| {
        let (token, sees) = callers[i % callers.len()].clone();
        let id = acme_execution.clone();
        async move {
            let body = server.gql_as(Some(&token), read, json!({ "id": id })).await;
            (body, sees)
        }
    });
    for (body, sees) in futures::future::join_all(reads).await {
        if sees {
            assert_eq!(body["data"]["execution"]["customerId"], "acme", "{body}");
        } else {
            assert_eq!(body["data"]["execution"], serde_json::Value::Null, "{body}");
        }
    }
}

backend_tests!(
    every_role_against_every_mutation,
    tenants_see_only_their_executions,
    concurrent_reads_keep_their_scopes
);
