//! The exechub server under test: spawned from the same build as a child process,
//! with a fresh data dir, an admin token and a GraphQL client.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SECRET: &str = "bench-secret-of-exechub-at-least-32-bytes";

pub struct Server {
    pub child: Child,
    pub base: String,
    data_dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn exechub_binary() -> PathBuf {
    std::env::current_exe()
        .expect("current exe")
        .with_file_name("exechub")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Spawns `exechub serve` with `env` set and returns once `/readyz` answers 200, with
/// the time that took.
pub async fn spawn_server(database_url: Option<&str>, env: &[(&str, &str)]) -> (Server, Duration) {
    let port = free_port();
    let data_dir = std::env::temp_dir().join(format!("exechub-bench-{}", uuid::Uuid::now_v7()));
    let mut command = Command::new(exechub_binary());
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("EXECHUB_JWT_SECRET", SECRET)
        .env("EXECHUB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
        .env_remove("EXECHUB_DATABASE_URL")
        .env_remove("EXECHUB_REDIS_URL");
    if let Some(url) = database_url {
        command.env("EXECHUB_DATABASE_URL", url);
    }
    command.envs(env.iter().copied());
    let started = Instant::now();
    let child = command
        .spawn()
        .expect("spawn exechub (build it with --release first)");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server never became ready"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ready = started.elapsed();
    (
        Server {
            child,
            base,
            data_dir,
        },
        ready,
    )
}

/// The Node.js reference `bench/peers/<name>`, its packages installed (`npm ci`).
pub fn node_peer(name: &str) -> PathBuf {
    let peer = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(name);
    if !peer.join("node_modules").exists() {
        let installed = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&peer)
            .status()
            .expect("npm (Node.js is needed for the reference peers)");
        assert!(installed.success(), "npm ci in {}", peer.display());
    }
    peer
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|v| v.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Where a bench's server runs: its database, its queue, and the limits it starts
/// with.
#[derive(clap::Args, Clone)]
pub struct Deployment {
    /// Database to serve from (default: SQLite in a fresh data dir).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Redis for the queue (default: the embedded queue).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// A limits file the server starts with (`exechub serve --limits`).
    #[arg(long)]
    pub limits: Option<PathBuf>,
}

impl Deployment {
    pub fn name(&self) -> &'static str {
        match (&self.database_url, &self.redis_url) {
            (None, None) => "SQLite + embedded queue",
            (Some(_), Some(_)) => "Postgres + Redis",
            (Some(_), None) => "Postgres + embedded queue",
            (None, Some(_)) => "SQLite + Redis",
        }
    }

    /// A fresh server on this database and queue (a queue prefix of its own), with
    /// an admin's token.
    pub async fn launch(&self) -> (Server, String) {
        let prefix = format!("exechub-bench-{}", uuid::Uuid::now_v7().simple());
        let limits = self.limits.as_ref().map(|path| path.display().to_string());
        let mut env = vec![
            ("EXECHUB_QUEUE_PREFIX", prefix.as_str()),
            ("EXECHUB_LOG", "warn"),
        ];
        if let Some(url) = &self.redis_url {
            env.push(("EXECHUB_REDIS_URL", url));
        }
        if let Some(path) = &limits {
            env.push(("EXECHUB_LIMITS", path));
        }
        let (server, _) = spawn_server(self.database_url.as_deref(), &env).await;
        (server, token())
    }
}

pub fn token() -> String {
    let output = Command::new(exechub_binary())
        .args(["token", "--role", "admin", "--ttl", "1h"])
        .env("EXECHUB_JWT_SECRET", SECRET)
        .output()
        .expect("exechub token");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Creates an execution from `input` (a `CreateExecutionInput`); its id.
pub async fn create_execution(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    input: Value,
) -> String {
    let create =
        "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }";
    let created = gql(client, base, token, create, json!({ "input": input })).await;
    let id = created["data"]["createExecution"]["id"].as_str();
    id.unwrap_or_else(|| panic!("no execution created: {created}"))
        .to_owned()
}

pub async fn gql(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let body: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    body
}
