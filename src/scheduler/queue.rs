//! The job queue: apalis storages, one queue per priority level, on Redis when
//! configured and otherwise embedded in an SQLite file of its own in the data dir (so
//! the queue's relaxed pragmas never touch the application database). Workers take
//! jobs from every level and meet at the priority gate; every job is acknowledged,
//! because retries are our own delayed jobs, and forgotten once finished.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis::prelude::*;
use apalis_core::backend::Vacuum;
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteStorage};
use futures::channel::mpsc;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::domain::schedule::StepJob;
use crate::domain::values::Priority;

/// What a queued job asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Job {
    /// Run one attempt of a step.
    Step(StepJob),
    /// A failed execution's retry is due.
    Retry {
        execution_id: String,
        priority: Priority,
    },
    /// An execution created to start later is due to start.
    Start {
        execution_id: String,
        priority: Priority,
    },
    /// Deliver an event to the execution's webhooks that want it, or, retrying, attempt
    /// `attempt` to the one `webhook_id` names.
    Webhook {
        execution_id: String,
        sequence: i64,
        webhook_id: Option<String>,
        attempt: i32,
    },
}

impl Job {
    pub fn priority(&self) -> Priority {
        match self {
            Job::Step(step) => step.priority,
            Job::Retry { priority, .. } | Job::Start { priority, .. } => *priority,
            Job::Webhook { .. } => Priority::High,
        }
    }
}

/// Runs one job; the queue acknowledges it whatever happens.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, job: Job) -> impl Future<Output = ()> + Send;
}

#[derive(Clone)]
enum Storages {
    Embedded(Vec<SqliteStorage<Job>>),
    Redis(Vec<RedisStorage<Job>>),
}

/// Per worker of this process: its level and the channel that wakes it.
type Wakers = Vec<(usize, mpsc::UnboundedSender<()>)>;

#[derive(Clone)]
pub struct Queue {
    storages: Storages,
    /// Wakes this process's idle workers of a level when it pushes a job there;
    /// other processes find it at their next poll.
    wake: Arc<Mutex<Wakers>>,
    poll_interval: Duration,
}

/// apalis workers' heartbeat. Besides keeping the worker registered, the heartbeat
/// is what revives a worker whose fetch loop stopped being woken: we saw an idle
/// worker on Redis sleep a whole default interval (30 s) with jobs waiting, under
/// load. Two seconds bounds that stall; the cost is one small script per level
/// every two seconds.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// apalis-sqlite acknowledges jobs with `UPDATE Jobs … FROM json_each(ids) WHERE id = …
/// AND lock_by = ?`. Without statistics, SQLite walks the `lock_by` index (every job
/// the worker ever took) and parses the id list once per row: an acknowledgement
/// slows down with the queue's history (58 ms with 5,000 finished jobs). Statistics
/// that mark `lock_by` and `status` as unselective make the planner look the ids up
/// by primary key instead (under 1 ms). They are written after apalis' own `ANALYZE`
/// and loaded at once (`ANALYZE sqlite_schema`).
const PLANNER_STATISTICS: &str = "
    ANALYZE;
    DELETE FROM sqlite_stat1 WHERE tbl = 'Jobs' AND idx IN ('LIdx', 'idx_jobs_status_run_at');
    INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
        ('Jobs', 'LIdx', '100000 100000'),
        ('Jobs', 'idx_jobs_status_run_at', '100000 25000 1');
    ANALYZE sqlite_schema;
";

/// The embedded queue's finished jobs: done, killed, or failed for good.
const FORGET_FINISHED: &str = "DELETE FROM Jobs WHERE status IN ('Done', 'Killed') \
    OR (status = 'Failed' AND attempts >= max_attempts)";

fn level_name(prefix: &str, priority: Priority) -> String {
    format!("{prefix}:steps:{}", priority.as_str().to_lowercase())
}

/// A priority level's Redis queue. apalis-redis by default also "locks" every job
/// it delivered: a script that removes the job from the level's waiting list
/// (`LREM`, a scan of the whole list, although fetching already removed it) and
/// marks it running, per job. A delivered job already sits in its worker's in-flight
/// set, which is what recovers it when the worker dies, and the step's own lease is
/// what fences it; so jobs are not locked. Nor does apalis publish its task events:
/// nothing here listens to them.
fn redis_config(prefix: &str, priority: Priority) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(level_name(prefix, priority))
        .heartbeat_interval(HEARTBEAT)
        .batch_size(16)
        .lock_tasks(false)
        .emit_events(false)
}

impl Queue {
    /// Opens the Redis queue at `redis_url`, or the embedded one in `data_dir`.
    /// `prefix` namespaces the queues, so that deployments can share one Redis.
    pub async fn open(
        redis_url: Option<&str>,
        data_dir: &Path,
        prefix: &str,
        poll_interval: Duration,
    ) -> anyhow::Result<Self> {
        let storages = match redis_url {
            Some(url) => {
                let connection = apalis_redis::connect(url).await?;
                Storages::Redis(
                    Priority::ALL
                        .iter()
                        .map(|p| {
                            RedisStorage::new(connection.clone())
                                .with_config(redis_config(prefix, *p))
                        })
                        .collect(),
                )
            }
            None => {
                std::fs::create_dir_all(data_dir)?;
                let options = SqliteConnectOptions::new()
                    .filename(data_dir.join("queue.db"))
                    .create_if_missing(true);
                // One connection: SQLite has one writer anyway, and writers that
                // wait on each other sleep in the busy handler (seconds under load).
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await?;
                SqliteStorage::setup(&pool).await?;
                sea_orm::sqlx::raw_sql(PLANNER_STATISTICS)
                    .execute(&pool)
                    .await?;
                Storages::Embedded(
                    Priority::ALL
                        .iter()
                        .map(|p| {
                            let config = apalis_sqlite::Config::default()
                                .queue(level_name(prefix, *p))
                                .heartbeat_interval(HEARTBEAT)
                                .batch_size(16);
                            SqliteStorage::new(&pool).with_config(config)
                        })
                        .collect::<Vec<_>>(),
                )
            }
        };
        Ok(Queue {
            storages,
            wake: Arc::new(Default::default()),
            poll_interval,
        })
    }

    pub fn is_redis(&self) -> bool {
        matches!(self.storages, Storages::Redis(_))
    }

    /// `push`, a failure logged: the reconciler queues again what was lost, as it
    /// does when a process dies before its jobs are queued.
    pub async fn push_or_warn(&self, jobs: Vec<(Job, Duration)>) {
        if jobs.is_empty() {
            return;
        }
        let count = jobs.len();
        if let Err(error) = self.push(jobs).await {
            tracing::warn!(?error, count, "could not queue jobs; the reconciler will");
        }
    }

    /// Queues each job on its priority's level, to run after its delay: the jobs of
    /// a level go in one write (one transaction, or one Redis pipeline).
    pub async fn push(&self, jobs: Vec<(Job, Duration)>) -> anyhow::Result<()> {
        let mut by_level: Vec<Vec<_>> = Priority::ALL.iter().map(|_| Vec::new()).collect();
        for (job, delay) in jobs {
            let level = job.priority().rank() as usize;
            let task = TaskBuilder::new(job)
                .run_after(delay)
                .max_attempts(1)
                .build();
            by_level[level].push(task);
        }
        for (level, tasks) in by_level.into_iter().enumerate() {
            if tasks.is_empty() {
                continue;
            }
            let tasks = futures::stream::iter(tasks);
            match &self.storages {
                Storages::Embedded(storages) => storages[level].clone().push_all(tasks).await?,
                Storages::Redis(storages) => storages[level].clone().push_all(tasks).await?,
            }
            self.wake(level);
        }
        Ok(())
    }

    /// Forgets the jobs that finished: the steps table is their record, and apalis
    /// keeps every job it ran otherwise (a row of the embedded queue's table; on Redis
    /// a hash per job and an entry in the level's done set).
    pub async fn forget_finished(&self) -> anyhow::Result<()> {
        match &self.storages {
            // One table holds every level. Not apalis' `vacuum`: it also rewrites the
            // whole file (`VACUUM`), 190 ms with 100,000 jobs waiting, on the queue's
            // only connection; the delete alone takes 9 ms and SQLite reuses the pages.
            Storages::Embedded(storages) => {
                sea_orm::sqlx::query(FORGET_FINISHED)
                    .execute(storages[0].pool())
                    .await?;
            }
            Storages::Redis(storages) => {
                for storage in storages {
                    let mut storage = storage.clone();
                    storage.vacuum().await?;
                    // Only apalis' statistics read the done set.
                    let done = storage.get_config().done_jobs_set();
                    redis::cmd("DEL")
                        .arg(done)
                        .exec_async(storage.get_connection())
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Wakes this process's idle workers of `level`.
    fn wake(&self, level: usize) {
        let mut wake = self.wake.lock().expect("wake lock");
        wake.retain(|(_, sender)| !sender.is_closed());
        for (_, sender) in wake.iter().filter(|(l, _)| *l == level) {
            let _ = sender.unbounded_send(());
        }
    }

    /// Starts one apalis worker per level, each taking up to `lookahead` jobs at a
    /// time, all handing their jobs to `runner`, until `stop`. `name` must be unique
    /// per process. A worker that stops by itself (e.g. Redis lost its registration)
    /// is started again under a fresh name.
    pub fn spawn_workers<R: JobRunner>(
        &self,
        name: &str,
        lookahead: usize,
        runner: Arc<R>,
        stop: CancellationToken,
    ) {
        for priority in Priority::ALL.iter().copied() {
            let queue = self.clone();
            let runner = runner.clone();
            let name = format!("{name}-{}", priority.as_str().to_lowercase());
            let stop = stop.clone();
            tokio::spawn(async move {
                for generation in 0u64.. {
                    let worker_name = format!("{name}-{generation}");
                    let mut worker = queue.start_worker(
                        priority,
                        worker_name.clone(),
                        lookahead,
                        runner.clone(),
                    );
                    let outcome = tokio::select! {
                        outcome = &mut worker => outcome,
                        _ = stop.cancelled() => {
                            worker.abort();
                            return;
                        }
                    };
                    tracing::warn!(worker = %worker_name, ?outcome, "queue worker stopped; restarting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
        }
    }

    /// Starts one apalis worker on `priority`'s queue; the handle ends when it stops.
    fn start_worker<R: JobRunner>(
        &self,
        priority: Priority,
        worker_name: String,
        lookahead: usize,
        runner: Arc<R>,
    ) -> tokio::task::JoinHandle<Result<(), WorkerError>> {
        let level = priority.rank() as usize;
        let (sender, woken) = mpsc::unbounded();
        self.wake.lock().expect("wake lock").push((level, sender));
        let strategy = Strategy::new().stream(woken).interval(self.poll_interval);
        let handle = move |job: Job| {
            let runner = runner.clone();
            async move {
                runner.run(job).await;
                Ok::<(), BoxDynError>(())
            }
        };
        match &self.storages {
            Storages::Embedded(storages) => {
                let worker = WorkerBuilder::new(worker_name)
                    .backend(storages[level].clone().poll_with_strategy(strategy))
                    .concurrency(lookahead)
                    .build(handle);
                tokio::spawn(worker.run())
            }
            Storages::Redis(storages) => {
                let worker = WorkerBuilder::new(worker_name)
                    .backend(storages[level].clone().poll_with_strategy(strategy))
                    .concurrency(lookahead)
                    .build(handle);
                tokio::spawn(worker.run())
            }
        }
    }
}
