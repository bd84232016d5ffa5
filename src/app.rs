//! The composition root: opens the database, runs migrations, loads the JWT keys,
//! builds the event hub, the service, the scheduler, the schema and the router. `main` and the tests both start the service
//! through here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Keys;
use crate::clock;
use crate::config::{JwtConfig, SchedulerConfig, ServeConfig, StoreConfig};
use crate::domain::step_graph::StepKinds;
use crate::events::Hub;
use crate::graphql::build_schema;
use crate::http::listen::{self, ConnectionLimits};
use crate::http::{AppState, Quota, router};
use crate::scheduler::Scheduler;
use crate::scheduler::egress::Egress;
use crate::scheduler::handlers::Registry;
use crate::service::{Policy, Service};
use crate::store::Store;

pub struct App {
    pub store: Store,
    pub service: Service,
    pub scheduler: Scheduler,
    pub router: axum::Router,
    limits: ConnectionLimits,
    /// Cancelled when the server stops (`serve`).
    shutdown: CancellationToken,
}

impl App {
    pub async fn build(
        store_config: &StoreConfig,
        jwt: &JwtConfig,
        serve: &ServeConfig,
        scheduler_config: &SchedulerConfig,
    ) -> anyhow::Result<Self> {
        let (store, service, scheduler) = open(store_config, scheduler_config).await?;
        if !serve.no_workers {
            scheduler.start_workers();
        }
        let keys = Arc::new(Keys::load(jwt, &store_config.data_dir)?);
        spawn_log_retention(store.clone(), serve.log_retention, serve.retention_interval);
        let shutdown = CancellationToken::new();
        let state = AppState {
            schema: build_schema(Some((store.clone(), service.clone())), serve),
            store: store.clone(),
            keys,
            insecure_no_auth: serve.insecure_no_auth,
            ws_init_timeout: serve.ws_init_timeout,
            ws_ping_interval: serve.ws_ping_interval,
            websockets: Arc::new(tokio::sync::Semaphore::new(serve.max_websockets)),
            max_operations_per_connection: serve.max_operations_per_connection,
            max_message_bytes: serve.max_body_bytes,
            quota: Quota::new(serve.max_subscriptions_per_principal),
            shutdown: shutdown.clone(),
        };
        Ok(App {
            store,
            service,
            scheduler,
            router: router(state, serve.max_body_bytes),
            limits: ConnectionLimits {
                header_read_timeout: serve.header_read_timeout,
                max_connections: serve.max_connections,
            },
            shutdown,
        })
    }

    /// Serves on `listener` until `stop` resolves, then stops without losing work:
    /// takes no new connections, closes WebSockets (1001) and ends SSE streams,
    /// lets requests in flight finish, and drains the scheduler
    /// (`Scheduler::drain`).
    pub async fn serve(
        self,
        listener: TcpListener,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            stop.await;
            shutdown.cancel();
        });
        let serving = listen::serve(listener, self.router, self.limits, self.shutdown.clone());
        let draining = async {
            self.shutdown.cancelled().await;
            self.scheduler.drain().await;
        };
        tokio::join!(serving, draining);
        // Requests that were still running may have dispatched changes since.
        self.scheduler.flush().await;
        Ok(())
    }
}

/// A worker process without the API (`exechub worker`): runs steps until it ends.
pub async fn run_worker(
    store_config: &StoreConfig,
    scheduler_config: &SchedulerConfig,
) -> anyhow::Result<Scheduler> {
    let (_, _, scheduler) = open(store_config, scheduler_config).await?;
    scheduler.start_workers();
    Ok(scheduler)
}

/// Opens (and migrates) the database, then the event hub (with its Redis fan-out),
/// the service and the scheduler's queue: the API's pool, the service and the
/// scheduler.
async fn open(
    store_config: &StoreConfig,
    scheduler_config: &SchedulerConfig,
) -> anyhow::Result<(Store, Service, Scheduler)> {
    let store = Store::connect(store_config).await?;
    while_locked(|| store.migrate())
        .await
        .context("migrating the database")?;
    // Shared transactions and the scheduler (its step reads, lease renewals and
    // maintenance) get connections of their own, so that they never queue behind
    // API requests for one, however many a burst of requests holds (on SQLite, an
    // API writer holds its connection while it waits for the write lock): a
    // connection per lane of changes and of creates, and three for the rest.
    let lanes = store.write_lanes() as u32;
    let own = (store.with_pool_of(store_config, 2 * lanes + 3)).await?;
    let events = Hub::new();
    if let Some(url) = &scheduler_config.redis_url {
        crate::events::fanout::connect(&events, url, &scheduler_config.queue_prefix).await?;
    }
    let http = Egress::new(scheduler_config.allow_private_destinations, true)?;
    let handlers = Registry::built_in(http, scheduler_config.http_step_max_response_bytes);
    let declared = scheduler_config.handler_kinds.iter().cloned();
    let policy = Policy {
        step_kinds: StepKinds::new(handlers.kinds().map(String::from).chain(declared)),
        lease: scheduler_config.lease,
        aging: scheduler_config.priority_aging,
    };
    let service = Service::new(store.clone(), own.clone(), events, policy);
    store
        .reload_limits()
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    if let Some(path) = &scheduler_config.limits_file {
        seed_limits(&service, path).await?;
    }
    let scheduler = Scheduler::open(
        own,
        service.clone(),
        scheduler_config.clone(),
        &store_config.data_dir,
        handlers,
    )
    .await?;
    Ok((store, service, scheduler))
}

/// Runs `step` of the start-up again while SQLite says its database is locked:
/// processes started together on one data dir (a `serve` and its workers) may find
/// another's write under way, which SQLite refuses at once instead of waiting when a
/// reading transaction wants to write.
pub(crate) async fn while_locked<T, F, Fut>(mut step: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    for _ in 0..50 {
        match step().await {
            Err(error) if format!("{error:#}").contains("database is locked") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            done => return done,
        }
    }
    step().await
}

/// The limits file: `[[limit]]` tables, each a `setLimit` input.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    #[serde(default)]
    limit: Vec<crate::domain::limits::LimitInput>,
}

/// Sets the limits of the file at `path`; a file that does not parse, or a bad
/// limit, stops the start with what is wrong.
async fn seed_limits(service: &Service, path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the limits file {}", path.display()))?;
    let file: LimitsFile = toml::from_str(&text)
        .with_context(|| format!("the limits file {} does not parse", path.display()))?;
    let count = file.limit.len();
    (service.seed_limits(file.limit).await)
        .map_err(|e| anyhow::anyhow!("the limits file {}: {}", path.display(), e.message()))?;
    tracing::info!(count, file = %path.display(), "limits set from the limits file");
    Ok(())
}

/// Every `interval`, deletes log lines older than `retention`.
fn spawn_log_retention(store: Store, retention: Duration, interval: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            let cutoff = Utc::now() - retention;
            match store.delete_logs_before(cutoff).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, %cutoff, "deleted old log lines"),
                Err(error) => tracing::warn!(?error, "log retention failed"),
            }
        }
    });
}

/// Binds `address` (port 0 picks a free one) and returns the listener with the
/// address it got. A refusal names the address.
pub async fn bind(address: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Fills the database with `count` sample histories (`domain::sample`) created over
/// the `days` before now; the same `random_seed` gives the same histories. Batches
/// are written side by side where the database takes concurrent writers.
pub async fn seed(
    store: &Store,
    count: usize,
    days: i64,
    random_seed: u64,
) -> crate::error::AppResult<()> {
    use futures::StreamExt;
    use rand::SeedableRng;
    const BATCH: usize = 1000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(random_seed);
    let now = clock::now();
    let batches = (0..count).step_by(BATCH).map(move |start| {
        (start..(start + BATCH).min(count))
            .map(|index| crate::domain::sample::history(&mut rng, index, now, days))
            .collect::<Result<Vec<_>, _>>()
    });
    let mut imports = futures::stream::iter(batches)
        .map(|histories| async move {
            let histories = histories?;
            store.import(&histories).await?;
            Ok::<_, crate::error::AppError>(histories.len())
        })
        .buffer_unordered(store.write_lanes());
    let mut seeded = 0;
    while let Some(imported) = imports.next().await {
        seeded += imported?;
        tracing::info!(seeded, of = count, "seeding");
    }
    store.analyze().await
}
