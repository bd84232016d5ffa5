//! Benchmarks of the running binary (see BENCHMARKS.md). It starts `exechub serve`
//! from the same build as a child process, like a user would, and measures it from
//! outside over real HTTP:
//!
//! - `bench startup`: time from spawn to `/readyz` = 200 on a fresh SQLite data dir,
//!   and the idle resident memory afterwards.
//! - `bench read`: `execution(id)` with 10 steps under N concurrent clients: requests
//!   per second and latency percentiles, on SQLite or on `--database-url`.
//! - `bench write`: `appendLog` under N concurrent clients, each on its own execution.
//! - `bench steps`: the scheduler: throughput of `echo` steps and dispatch latency,
//!   with BullMQ on the same Redis as the reference.

mod api;
mod server;
mod steps;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmarks of the exechub binary")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Spawn → /readyz latency and idle RSS, over fresh SQLite data dirs.
    Startup {
        #[arg(long, default_value_t = 11)]
        runs: usize,
    },
    /// execution(id) with 10 steps under concurrent load.
    Read {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Database to serve from (default: SQLite in a fresh data dir).
        #[arg(long)]
        database_url: Option<String>,
        /// Send `{ me { subject } }` instead: the same HTTP, JWT and GraphQL work with
        /// no database access, as a ceiling to compare with.
        #[arg(long)]
        baseline: bool,
    },
    /// `appendLog` (one transaction: row lock, log, event, audit) under concurrent load,
    /// each client on its own execution.
    Write {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Database to serve from (default: SQLite in a fresh data dir).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// The scheduler: `echo` steps per second end to end, and dispatch latency at a
    /// steady offered rate; with `--bullmq`, BullMQ on the same Redis as reference.
    Steps {
        /// Database to serve from (default: SQLite in a fresh data dir).
        #[arg(long)]
        database_url: Option<String>,
        /// Redis for the queue (default: the embedded queue).
        #[arg(long)]
        redis_url: Option<String>,
        /// Executions in the throughput run.
        #[arg(long, default_value_t = 200)]
        executions: usize,
        /// Parallel `echo` steps per execution in the throughput run.
        #[arg(long, default_value_t = 25)]
        steps: usize,
        /// Steps per second offered in the latency run.
        #[arg(long, default_value_t = 500)]
        rate: u64,
        /// Length of the latency run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Also run the BullMQ reference (Node.js; Redis from --redis-url or local).
        #[arg(long)]
        bullmq: bool,
    },
}

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Bench::Startup { runs } => api::startup(runs).await,
        Bench::Read {
            concurrency,
            seconds,
            database_url,
            baseline,
        } => api::read(concurrency, seconds, database_url, baseline).await,
        Bench::Write {
            concurrency,
            seconds,
            database_url,
        } => api::write(concurrency, seconds, database_url).await,
        Bench::Steps {
            database_url,
            redis_url,
            executions,
            steps,
            rate,
            seconds,
            bullmq,
        } => {
            steps::run(steps::StepsBench {
                database_url,
                redis_url,
                executions,
                steps,
                rate,
                seconds,
                bullmq,
            })
            .await
        }
    }
}
