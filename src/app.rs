//! The composition root: opens the database, runs migrations, loads the JWT keys,
//! builds the schema and the router. `main` and the tests both start the service
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
use crate::graphql::build_schema;
use crate::http::{AppState, router};
use crate::scheduler::Scheduler;
use crate::scheduler::handlers::Registry;
use crate::store::Store;

pub struct App {
    pub store: Store,
    pub scheduler: Scheduler,
    pub router: axum::Router,
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
        let scheduler = open_scheduler(store_config, scheduler_config).await?;
        let store = scheduler.store().clone();
        if !serve.no_workers {
            scheduler.start_workers();
        }
        let keys = Arc::new(Keys::load(jwt, &store_config.data_dir)?);
        spawn_log_retention(store.clone(), serve.log_retention, serve.retention_interval);
        let shutdown = CancellationToken::new();
        let state = AppState {
            schema: build_schema(Some((store.clone(), scheduler.clone())), serve),
            store: store.clone(),
            keys,
            insecure_no_auth: serve.insecure_no_auth,
            ws_init_timeout: serve.ws_init_timeout,
            ws_ping_interval: serve.ws_ping_interval,
            shutdown: shutdown.clone(),
        };
        Ok(App {
            store,
            scheduler,
            router: router(state, serve.max_body_bytes),
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
        let serving = axum::serve(listener, self.router).with_graceful_shutdown(async move {
            stop.await;
            shutdown.cancel();
        });
        let serving = async {
            let served = serving.await;
            self.shutdown.cancel();
            served
        };
        let draining = async {
            self.shutdown.cancelled().await;
            self.scheduler.drain().await;
        };
        let (served, ()) = tokio::join!(serving, draining);
        // Requests that were still running may have dispatched changes since.
        self.scheduler.flush().await;
        served?;
        Ok(())
    }
}

/// A worker process without the API (`exechub worker`): runs steps until it ends.
pub async fn run_worker(
    store_config: &StoreConfig,
    scheduler_config: &SchedulerConfig,
) -> anyhow::Result<Scheduler> {
    let scheduler = open_scheduler(store_config, scheduler_config).await?;
    scheduler.start_workers();
    Ok(scheduler)
}

/// Opens (and migrates) the database, then the scheduler's queue.
async fn open_scheduler(
    store_config: &StoreConfig,
    scheduler_config: &SchedulerConfig,
) -> anyhow::Result<Scheduler> {
    let store = Store::connect(store_config).await?;
    store.migrate().await?;
    // The scheduler's shared transactions and step reads get connections of their
    // own, so they never queue behind API requests for one (on SQLite, an API writer
    // holds its connection while it waits for the write lock).
    let own = (store.with_pool_of(store_config, store.write_lanes() as u32 + 1)).await?;
    let http = reqwest::Client::builder().build()?;
    Scheduler::open(
        store,
        own,
        scheduler_config.clone(),
        &store_config.data_dir,
        Registry::built_in(http),
    )
    .await
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
