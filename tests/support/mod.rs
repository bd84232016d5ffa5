//! Test harness: starts the real service on an ephemeral port (SQLite in a fresh
//! directory, or a fresh Postgres database when `EXECHUB_TEST_DATABASE_URL` is set)
//! and talks to it over real HTTP. Suites are written once and run per backend with
//! `backend_tests!`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use exechub::app::{App, bind};
use exechub::auth::{Keys, Role};
use exechub::config::{JwtConfig, SchedulerConfig, ServeConfig, StoreConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub mod processes;
pub mod runs;
pub mod ws;

pub const SECRET: &str = "test-secret-of-exechub-at-least-32-bytes";

#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub keys: Keys,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// The scheduler settings the server runs with (Redis, queue names, intervals),
    /// so that a test can start `exechub worker` processes on the same queue.
    pub scheduler: SchedulerConfig,
    /// The server's own scheduler, to look at what it holds (e.g. its gate).
    pub running: exechub::scheduler::Scheduler,
    /// The service every change goes through, for rules no client input can make.
    pub service: exechub::service::Service,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A database URL for a fresh, empty database on the chosen backend.
pub async fn fresh_database(backend: Backend, data_dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let base = std::env::var("EXECHUB_TEST_DATABASE_URL").ok()?;
            let name = format!("exechub_t_{}", uuid::Uuid::now_v7().simple());
            let admin = sea_orm::Database::connect(&base)
                .await
                .expect("connect to EXECHUB_TEST_DATABASE_URL");
            use sea_orm::ConnectionTrait;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            let _ = data_dir;
            let (prefix, _) = base.rsplit_once('/').expect("database URL with a path");
            Some(format!("{prefix}/{name}"))
        }
    }
}

pub fn postgres_configured() -> bool {
    std::env::var("EXECHUB_TEST_DATABASE_URL").is_ok()
}

pub struct Options {
    pub jwt: JwtConfig,
    pub serve: ServeConfig,
    /// Redis and the queue prefix are filled in per server: Redis on the Postgres
    /// backend when `EXECHUB_TEST_REDIS_URL` is set, a fresh prefix always.
    pub scheduler: SchedulerConfig,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jwt: JwtConfig {
                secret: Some(SECRET.into()),
                ..Default::default()
            },
            serve: ServeConfig {
                bind: "127.0.0.1:0".parse().unwrap(),
                ..Default::default()
            },
            scheduler: SchedulerConfig {
                lease: Duration::from_secs(3),
                reconcile_interval: Duration::from_secs(1),
                poll_interval: Duration::from_millis(20),
                // Tests' receivers listen on loopback.
                allow_private_destinations: true,
                ..Default::default()
            },
        }
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> TestServer {
        // EXECHUB_TEST_LOG=exechub=debug shows the server's own log in test output.
        if let Ok(filter) = std::env::var("EXECHUB_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
        }
        let data_dir = std::env::temp_dir().join(format!("exechub-test-{}", uuid::Uuid::now_v7()));
        let store = StoreConfig {
            database_url: fresh_database(backend, &data_dir).await,
            data_dir: data_dir.clone(),
            db_max_connections: None,
        };
        let database_url = store.url();
        let mut scheduler = options.scheduler.clone();
        if backend == Backend::Postgres && scheduler.redis_url.is_none() {
            scheduler.redis_url = std::env::var("EXECHUB_TEST_REDIS_URL").ok();
        }
        scheduler.queue_prefix = format!("exechub-test-{}", uuid::Uuid::now_v7().simple());
        let app = App::build(&store, &options.jwt, &options.serve, &scheduler)
            .await
            .expect("build app");
        let (listener, address) = bind(options.serve.bind).await.expect("bind");
        let (running, service) = (app.scheduler.clone(), app.service.clone());
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            base: format!("http://{address}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            keys: Keys::load(&options.jwt, &data_dir).expect("keys"),
            data_dir,
            database_url,
            scheduler,
            running,
            service,
            shutdown: Some(stop),
        }
    }

    /// A service on the server's database whose commits nobody here hears: its
    /// events reach no subscriber and its jobs no queue, as if its process had died
    /// right after each commit.
    pub fn unheard_service(&self) -> exechub::service::Service {
        let store = self.running.store().clone();
        let policy = self.service.policy().clone();
        exechub::service::Service::new(store.clone(), store, exechub::events::Hub::new(), policy)
    }

    pub fn token(&self, role: Role, tenant: Option<&str>) -> String {
        self.keys
            .mint(
                role,
                tenant.map(String::from),
                format!("{}-{}", role.as_str(), tenant.unwrap_or("none")),
                Duration::from_secs(600),
            )
            .unwrap()
    }

    pub fn admin(&self) -> String {
        self.token(Role::Admin, None)
    }

    /// POSTs a GraphQL request with an optional bearer token; returns the whole body.
    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        post_gql(&self.client, &self.base, token, query, variables).await
    }

    /// Every stored event of an execution as (sequence, type), in order.
    pub async fn stored_events(&self, id: &str) -> Vec<(i64, String)> {
        let data = self
            .gql(
                "query($id: ID!) { execution(id: $id) { events(first: 500) { sequence type } } }",
                json!({ "id": id }),
            )
            .await;
        data["execution"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["sequence"].as_i64().unwrap(),
                    e["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// As admin; panics on any GraphQL error and returns `data`.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let body = self.gql_as(Some(&self.admin()), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Creates an execution as admin from a `CreateExecutionInput` and returns its id.
    pub async fn create(&self, input: Value) -> String {
        let data = self
            .gql(
                "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createExecution"]["id"].as_str().unwrap().to_owned()
    }
}

impl TestServer {
    /// Runs a counting SQL query against the server's database.
    pub async fn count(&self, sql: &str) -> i64 {
        use sea_orm::{ConnectionTrait, Statement};
        let db = sea_orm::Database::connect(&self.database_url)
            .await
            .unwrap();
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    /// Runs a writing SQL statement against the server's database.
    pub async fn execute(&self, sql: &str) {
        use sea_orm::{ConnectionTrait, Statement};
        let db = sea_orm::Database::connect(&self.database_url)
            .await
            .unwrap();
        let statement = Statement::from_string(db.get_database_backend(), sql);
        db.execute_raw(statement).await.unwrap();
    }

    /// The audit rows of an execution as (subject, action, detail), oldest first.
    pub async fn audit_trail(&self, id: &str) -> Vec<(String, String, Value)> {
        use sea_orm::{ConnectionTrait, Statement};
        let db = sea_orm::Database::connect(&self.database_url)
            .await
            .unwrap();
        let backend = db.get_database_backend();
        let placeholder = if backend == sea_orm::DbBackend::Postgres {
            "$1"
        } else {
            "?"
        };
        let sql = format!(
            "SELECT subject, action, detail FROM audit_log WHERE execution_id = {placeholder} ORDER BY at, id"
        );
        db.query_all_raw(Statement::from_sql_and_values(backend, sql, [id.into()]))
            .await
            .unwrap()
            .into_iter()
            .map(|row| {
                (
                    row.try_get_by_index(0).unwrap(),
                    row.try_get_by_index(1).unwrap(),
                    row.try_get_by_index(2).unwrap(),
                )
            })
            .collect()
    }
}

impl TestServer {
    /// Starts step `step` of execution `id` as admin.
    pub async fn start_step(&self, id: &str, step: &str) {
        self.gql(
            "mutation($id: ID!, $step: ID!) { startStep(executionId: $id, step: { id: $step }) { id } }",
            json!({ "id": id, "step": step }),
        )
        .await;
    }
}

/// Runs `script` of the Node.js fixture `fixture` with `args`; its JSON lines (other
/// output is passed over), once it exited successfully.
pub async fn node_lines(fixture: &str, script: &str, args: &[&str]) -> Vec<Value> {
    let output = tokio::process::Command::new("node")
        .arg(node_fixture(fixture).join(script))
        .args(args)
        .output()
        .await
        .expect("run node");
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(
        output.status.success(),
        "{script}: {lines:#?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    lines
}

/// The Chromium the browser tests drive: Debian's, or `EXECHUB_TEST_CHROMIUM`.
pub fn chromium() -> String {
    let chromium =
        std::env::var("EXECHUB_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "the browser test needs Chromium: apt-get install chromium (or set EXECHUB_TEST_CHROMIUM)"
    );
    chromium
}

/// The Node.js fixture `tests/fixtures/<name>`, its packages installed (`npm ci` on
/// first use).
pub fn node_fixture(name: &str) -> PathBuf {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.join("node_modules").exists() {
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm (Node.js) is installed");
        assert!(status.success(), "npm ci in {}", dir.display());
    }
    dir
}

/// POSTs a GraphQL request to the server at `base`; returns the whole body.
pub async fn post_gql(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    response.json().await.expect("JSON body")
}

/// The `executions` list with every filter, order and paging argument as a variable,
/// asking for `node` of each edge.
pub fn list_query(node: &str) -> String {
    format!(
        "query($filter: ExecutionFilter, $orderBy: [ExecutionOrder!], $first: Int, $after: String, \
           $last: Int, $before: String) {{
  executions(filter: $filter, orderBy: $orderBy, first: $first, after: $after, last: $last, before: $before) {{
    totalCount
    edges {{ cursor node {{ {node} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}"
    )
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(String::from)
}

/// True (and says so) when the Postgres run of a test is skipped: no
/// `EXECHUB_TEST_DATABASE_URL`.
pub fn postgres_skipped() -> bool {
    let skipped = !postgres_configured();
    if skipped {
        eprintln!("EXECHUB_TEST_DATABASE_URL is not set: Postgres run skipped");
    }
    skipped
}

/// Generates one `#[tokio::test]` per backend for each suite function
/// `async fn suite(server: &TestServer)`. Postgres tests say so and return when
/// `EXECHUB_TEST_DATABASE_URL` is not set.
#[macro_export]
macro_rules! backend_tests {
    ($($suite:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    let server = $crate::support::TestServer::start($crate::support::Backend::Sqlite).await;
                    super::$suite(&server).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    if $crate::support::postgres_skipped() {
                        return;
                    }
                    let server = $crate::support::TestServer::start($crate::support::Backend::Postgres).await;
                    super::$suite(&server).await;
                }
            )+
        }
    };
}

/// As `backend_tests!`, for suites that start their own server (with options of
/// their own): `async fn suite(backend: Backend)`.
#[macro_export]
macro_rules! backend_suites {
    ($($suite:ident),+ $(,)?) => {
        mod each_backend {
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $suite() {
                        super::super::$suite($crate::support::Backend::Sqlite).await;
                    }
                )+
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $suite() {
                        if $crate::support::postgres_skipped() {
                            return;
                        }
                        super::super::$suite($crate::support::Backend::Postgres).await;
                    }
                )+
            }
        }
    };
}
