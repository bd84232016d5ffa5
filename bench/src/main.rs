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
//! - `bench fairness`: one customer's backlog of steps, and how long other
//!   customers' single steps wait under it (with a share per customer, or without).
//! - `bench subscribers`: N WebSocket subscribers (each on its own execution, then
//!   all on one) while events are published: idle memory per subscriber and event →
//!   client latency, with the graphql-ws library on Node.js as the reference.
//! - `bench queries`: the analyst's filtered list, statistics and error codes over a
//!   seeded database, with PostGraphile on the same Postgres as the reference.
//! - `bench mix`: hundreds of clients reading, creating and reporting at once:
//!   requests per second and the latency of writes behind reads.

mod api;
mod fairness;
mod mix;
mod queries;
mod server;
mod steps;
mod subscribers;

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
        #[command(flatten)]
        load: api::Load,
        /// Send `{ me { subject } }` instead: the same HTTP, JWT and GraphQL work with
        /// no database access, as a ceiling to compare with.
        #[arg(long)]
        baseline: bool,
        /// Executions read: client `i` reads execution `i % N` (1: all read one).
        #[arg(long, default_value_t = 1)]
        executions: usize,
    },
    /// `appendLog` (one transaction: row lock, log, event, audit) under concurrent load,
    /// each client on its own execution.
    Write(api::Load),
    /// The scheduler: `echo` steps per second end to end, and dispatch latency at a
    /// steady offered rate; with `--bullmq`, BullMQ on the same Redis as reference.
    Steps(steps::StepsBench),
    /// Fair share: other customers' single steps queued under one customer's
    /// backlog, and how long each waits.
    Fairness(fairness::FairnessBench),
    /// WebSocket subscribers at scale: idle memory each and event → client latency;
    /// with `--peer`, graphql-ws on Node.js under the same load.
    Subscribers(subscribers::SubscribersBench),
    /// Analyst queries over a database filled by `exechub seed`; with `--peer`, the
    /// filtered list through PostGraphile on the same Postgres.
    Queries(queries::QueriesBench),
    /// Many clients at once: lists, details, creates, logs, progress and statistics
    /// in a deployment's proportions; latency per kind and of writes.
    Mix(mix::MixBench),
}

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Bench::Startup { runs } => api::startup(runs).await,
        Bench::Read {
            load,
            baseline,
            executions,
        } => api::read(load, baseline, executions).await,
        Bench::Write(load) => api::write(load).await,
        Bench::Steps(bench) => steps::run(bench).await,
        Bench::Fairness(bench) => fairness::run(bench).await,
        Bench::Subscribers(bench) => subscribers::run(bench).await,
        Bench::Queries(bench) => queries::run(bench).await,
        Bench::Mix(bench) => mix::run(bench).await,
    }
}
