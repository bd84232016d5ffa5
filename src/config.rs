//! Typed configuration. Every setting is a command-line flag with an `EXECHUB_*`
//! environment variable behind it (the flag wins); `main` parses, the library only
//! reads these structs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Where data lives.
#[derive(Args, Clone, Debug)]
pub struct StoreConfig {
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    /// Default: the SQLite file `exechub.db` in the data directory.
    #[arg(long, env = "EXECHUB_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory for the SQLite database and the generated JWT secret.
    #[arg(long, env = "EXECHUB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Largest number of pooled database connections (default: 4 on SQLite, where
    /// each connection is a thread and one writer runs at a time; 16 on Postgres).
    #[arg(long, env = "EXECHUB_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
}

impl StoreConfig {
    pub fn max_connections(&self) -> u32 {
        self.db_max_connections
            .unwrap_or(if self.url().starts_with("sqlite:") {
                4
            } else {
                16
            })
    }

    /// The configured URL, or the default SQLite file in the data directory.
    pub fn url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("exechub.db").display()
            )
        })
    }
}

/// How tokens are verified and minted.
#[derive(Args, Clone, Debug, Default)]
pub struct JwtConfig {
    /// HS256 shared secret. With neither this nor a public key, a secret is generated
    /// into the data directory.
    #[arg(
        long = "jwt-secret",
        env = "EXECHUB_JWT_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,
    /// RS256/ES256 public key: PEM text or a path to a PEM file.
    #[arg(long = "jwt-public-key", env = "EXECHUB_JWT_PUBLIC_KEY")]
    pub public_key: Option<String>,
    /// Private key matching the public key (PEM text or path), needed by `token`.
    #[arg(
        long = "jwt-private-key",
        env = "EXECHUB_JWT_PRIVATE_KEY",
        hide_env_values = true
    )]
    pub private_key: Option<String>,
    /// Required `iss` claim.
    #[arg(long = "jwt-issuer", env = "EXECHUB_JWT_ISSUER")]
    pub issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long = "jwt-audience", env = "EXECHUB_JWT_AUDIENCE")]
    pub audience: Option<String>,
}

/// The API server.
#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on, `HOST:PORT` (port 0 picks a free one).
    #[arg(long, env = "EXECHUB_BIND", default_value = "127.0.0.1:8080", value_parser = socket_address)]
    pub bind: SocketAddr,
    /// Accept every request as an admin without a token. For local play only.
    #[arg(long, env = "EXECHUB_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// Largest request body, in bytes.
    #[arg(long, env = "EXECHUB_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Deepest GraphQL query accepted.
    #[arg(long, env = "EXECHUB_MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,
    /// Highest GraphQL query cost accepted (a field costs 1, a database read 1,000,
    /// a page its items' selection once per item).
    #[arg(long, env = "EXECHUB_MAX_QUERY_COMPLEXITY", default_value_t = 50_000)]
    pub max_query_complexity: usize,
    /// Log lines older than this are deleted (executions and events are kept).
    #[arg(long, env = "EXECHUB_LOG_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub log_retention: Duration,
    /// How often old log lines are looked for.
    #[arg(long, env = "EXECHUB_RETENTION_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retention_interval: Duration,
    /// Serve the API only; separate `exechub worker` processes run the steps.
    #[arg(long, env = "EXECHUB_NO_WORKERS")]
    pub no_workers: bool,
    /// A WebSocket that has not sent `connection_init` this long after opening is
    /// closed (4408).
    #[arg(long, env = "EXECHUB_WS_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_init_timeout: Duration,
    /// How often the server pings each WebSocket (and SSE stream) to keep it open.
    #[arg(long, env = "EXECHUB_WS_PING_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ws_ping_interval: Duration,
    /// A request head (request line and headers) that does not arrive whole within
    /// this is dropped with its connection; so is a kept-alive connection that sends
    /// no next request for as long.
    #[arg(long, env = "EXECHUB_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// HTTP connections open at once at most; more wait to be accepted.
    #[arg(long, env = "EXECHUB_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// A query or mutation over HTTP that runs longer is stopped (its database
    /// connections go back to the pool) and answered with an error.
    #[arg(long, env = "EXECHUB_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// WebSockets open at once at most (they outlive the HTTP connection they came
    /// from); more are refused with 503.
    #[arg(long, env = "EXECHUB_MAX_WEBSOCKETS", default_value_t = 10_000)]
    pub max_websockets: usize,
    /// Operations (subscriptions, queries) one WebSocket may run at once.
    #[arg(
        long,
        env = "EXECHUB_MAX_OPERATIONS_PER_CONNECTION",
        default_value_t = 100
    )]
    pub max_operations_per_connection: usize,
    /// Subscriptions (WebSocket operations and SSE streams) one principal may hold
    /// open at once, over all its connections.
    #[arg(
        long,
        env = "EXECHUB_MAX_SUBSCRIPTIONS_PER_PRINCIPAL",
        default_value_t = 10_000
    )]
    pub max_subscriptions_per_principal: usize,
    /// How long the steps, checkpoints and webhooks of a list's executions are
    /// gathered before they are read in one query.
    #[arg(long, env = "EXECHUB_DATALOADER_DELAY", default_value = "1ms", value_parser = humantime::parse_duration)]
    pub dataloader_delay: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            insecure_no_auth: false,
            max_body_bytes: 2 * 1024 * 1024,
            max_query_depth: 12,
            max_query_complexity: 50_000,
            log_retention: Duration::from_secs(30 * 86_400),
            retention_interval: Duration::from_secs(3600),
            no_workers: false,
            ws_init_timeout: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(15),
            dataloader_delay: Duration::from_millis(1),
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_websockets: 10_000,
            max_operations_per_connection: 100,
            max_subscriptions_per_principal: 10_000,
        }
    }
}

/// A listening address, `HOST:PORT` (the host a name or an IP address), resolved at
/// parse time so that `--bind 18112` (no host) is refused before anything starts.
fn socket_address(value: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let resolved = value.to_socket_addrs().ok().and_then(|mut all| all.next());
    resolved.ok_or_else(|| {
        let hint = match value.parse::<u16>() {
            Ok(port) => format!(" (port {port} on this machine only: 127.0.0.1:{port})"),
            Err(_) => String::new(),
        };
        format!(
            "`{value}` is not an address to listen on: give HOST:PORT, e.g. 127.0.0.1:8080{hint}"
        )
    })
}

/// The job scheduler: its queue and, in worker processes, its workers.
#[derive(Args, Clone, Debug)]
pub struct SchedulerConfig {
    /// Redis for the job queue (and, across processes, shared by every `serve` and
    /// `worker`). Without it the queue is embedded in `queue.db` in the data directory.
    #[arg(long, env = "EXECHUB_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Namespace of the queues, so deployments can share one Redis.
    #[arg(long, env = "EXECHUB_QUEUE_PREFIX", default_value = "exechub")]
    pub queue_prefix: String,
    /// Steps run at once by this process (`--concurrency` is an alias).
    #[arg(
        long = "worker-concurrency",
        visible_alias = "concurrency",
        env = "EXECHUB_WORKER_CONCURRENCY",
        default_value_t = 64
    )]
    pub concurrency: usize,
    /// A job that waited this long counts one priority level higher.
    #[arg(long, env = "EXECHUB_PRIORITY_AGING", default_value = "30s", value_parser = humantime::parse_duration)]
    pub priority_aging: Duration,
    /// Lease of a running built-in step, renewed every third of it while it runs; a
    /// step whose lease runs out (its worker died) runs again.
    #[arg(long = "step-lease", env = "EXECHUB_STEP_LEASE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease: Duration,
    /// How often handed-out steps that no worker started are queued again.
    #[arg(long, env = "EXECHUB_RECONCILE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub reconcile_interval: Duration,
    /// A RUNNING execution records a checkpoint (where it stands, what its steps
    /// returned) this long after its last one.
    #[arg(long, env = "EXECHUB_CHECKPOINT_INTERVAL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub checkpoint_interval: Duration,
    /// How often idle workers look for jobs queued by other processes (this process's
    /// own jobs wake its workers at once).
    #[arg(
        long = "queue-poll-interval",
        visible_alias = "poll-interval",
        env = "EXECHUB_QUEUE_POLL_INTERVAL",
        default_value = "50ms",
        value_parser = humantime::parse_duration
    )]
    pub poll_interval: Duration,
    /// On SIGTERM, how long running built-in steps may take to finish; the rest are
    /// interrupted and given back (a lost attempt) to run again elsewhere at once.
    #[arg(long, env = "EXECHUB_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Step handler kinds that only separate worker processes run (an embedder's own
    /// kinds), comma-separated: steps may name them besides `external` and the
    /// built-in `echo`, `delay` and `http`; any other kind is refused at create.
    #[arg(long, env = "EXECHUB_HANDLER_KINDS", value_delimiter = ',')]
    pub handler_kinds: Vec<String>,
    /// Prefix of this process's worker name (a unique suffix is added).
    #[arg(long, env = "EXECHUB_WORKER_NAME", default_value = "exechub")]
    pub worker_name: String,
    /// Let `http` steps and webhooks reach private, loopback and link-local
    /// addresses too (refused by default, so that executions cannot reach into the
    /// network they run in).
    #[arg(long, env = "EXECHUB_ALLOW_PRIVATE_DESTINATIONS")]
    pub allow_private_destinations: bool,
    /// Largest response body an `http` step reads, in bytes; a longer answer fails
    /// the step (`RESULT_TOO_LARGE`).
    #[arg(long, env = "EXECHUB_HTTP_STEP_MAX_RESPONSE_BYTES", default_value_t = 1024 * 1024)]
    pub http_step_max_response_bytes: usize,
    /// A TOML file of flow-control limits set at every start, as `setLimit` sets them
    /// (`[[limit]]` tables with its fields: `key`, `concurrency`, `executions`,
    /// `share`, `rate`, `burst`, `maxCost`, `maxTokens`, `budgetPeriod`); all or none.
    #[arg(long = "limits", env = "EXECHUB_LIMITS")]
    pub limits_file: Option<std::path::PathBuf>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            redis_url: None,
            queue_prefix: "exechub".into(),
            concurrency: 64,
            priority_aging: Duration::from_secs(30),
            lease: Duration::from_secs(30),
            reconcile_interval: Duration::from_secs(30),
            checkpoint_interval: Duration::from_secs(15 * 60),
            poll_interval: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(10),
            handler_kinds: Vec::new(),
            worker_name: "exechub".into(),
            allow_private_destinations: false,
            http_step_max_response_bytes: 1024 * 1024,
            limits_file: None,
        }
    }
}
