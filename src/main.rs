//! The `exechub` command line: parses flags and environment, then calls the library.

use std::time::Duration;

use clap::{Parser, Subcommand};
use exechub::app::{App, bind, run_worker};
use exechub::auth::{Keys, Role};
use exechub::config::{JwtConfig, SchedulerConfig, ServeConfig, StoreConfig};
use exechub::store::Store;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: a step's trip through rules, rows and
/// statements allocates many small values, and glibc's malloc took a quarter of
/// the server's CPU under load (see BENCHMARKS.md). Built without transparent huge
/// pages (`no_thp`): its first arena, committed at start, was otherwise backed by
/// 20 MiB of huge pages in an idle server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "exechub",
    version,
    about = "Tracks and runs service executions over GraphQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the API server and, unless --no-workers, the workers (migrations run at start).
    Serve {
        #[command(flatten)]
        serve: ServeConfig,
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        jwt: JwtConfig,
        #[command(flatten)]
        scheduler: SchedulerConfig,
    },
    /// Run workers only: they take steps from the shared queue (set --redis-url and a
    /// shared --database-url) until SIGTERM.
    Worker {
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        scheduler: SchedulerConfig,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Fill the database with realistic sample executions, for demos and benchmarks.
    Seed {
        /// How many executions.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Creation times are spread over this many days before now.
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// The same seed gives the same executions.
        #[arg(long, default_value_t = 1)]
        random_seed: u64,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Print a signed token for the configured key.
    Token {
        /// admin, operator, agent or viewer.
        #[arg(long)]
        role: Role,
        /// Tenant the token is bound to (an execution's customerId or providerId).
        #[arg(long)]
        tenant: Option<String>,
        /// The token's subject; defaults to the role name.
        #[arg(long)]
        subject: Option<String>,
        /// Lifetime, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Data directory holding a generated secret, when no key is configured.
        #[arg(long, env = "EXECHUB_DATA_DIR", default_value = "./data")]
        data_dir: std::path::PathBuf,
        #[command(flatten)]
        jwt: JwtConfig,
    },
}

/// Ctrl-C or SIGTERM (what service managers send): the process then stops without
/// losing work (`App::serve`, `Scheduler::drain`) and exits 0.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

/// The `token` command that mints a token this server accepts: with the data
/// directory whose generated secret it uses, or naming the key it was given.
fn token_command(store: &StoreConfig, jwt: &JwtConfig) -> String {
    let command = "cargo run --release -- token --role admin";
    if jwt.secret.is_some() {
        format!("{command}   (with the same EXECHUB_JWT_SECRET)")
    } else if jwt.public_key.is_some() {
        format!("{command}   (with the same EXECHUB_JWT_PUBLIC_KEY and its private key)")
    } else if store.data_dir == std::path::Path::new("./data") {
        command.to_owned()
    } else {
        format!("{command} --data-dir {}", store.data_dir.display())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("EXECHUB_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            serve,
            store,
            jwt,
            scheduler,
        } => {
            // Bound before anything starts, so that a taken port fails at once.
            let (listener, address) = bind(serve.bind).await?;
            let app = App::build(&store, &jwt, &serve, &scheduler).await?;
            println!("exechub is listening on http://{address}");
            println!("  dashboard:     http://{address}/");
            println!("  GraphiQL:      http://{address}/graphql");
            if serve.insecure_no_auth {
                println!("  auth:          OFF (--insecure-no-auth): every request is an admin");
            } else {
                println!("  mint a token:  {}", token_command(&store, &jwt));
                println!("  then send it as the header  Authorization: Bearer <token>");
            }
            app.serve(listener, shutdown_signal()).await
        }
        Command::Worker { store, scheduler } => {
            let worker = run_worker(&store, &scheduler).await?;
            println!("exechub worker {} is running", worker.name());
            shutdown_signal().await;
            worker.drain().await;
            Ok(())
        }
        Command::Migrate { store } => {
            Store::connect(&store).await?.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Seed {
            count,
            days,
            random_seed,
            store,
        } => {
            let store = Store::connect(&store).await?;
            store.migrate().await?;
            exechub::app::seed(&store, count, days, random_seed)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            println!("seeded {count} executions");
            Ok(())
        }
        Command::Schema => {
            print!("{}", exechub::graphql::sdl());
            Ok(())
        }
        Command::Token {
            role,
            tenant,
            subject,
            ttl,
            data_dir,
            jwt,
        } => {
            let keys = Keys::load(&jwt, &data_dir)?;
            let subject = subject.unwrap_or_else(|| role.as_str().to_owned());
            println!("{}", keys.mint(role, tenant, subject, ttl)?);
            Ok(())
        }
    }
}
