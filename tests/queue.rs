//! The job queue's own storage: the embedded queue acknowledges a job by looking it up
//! by id, however many jobs it has finished before (the planner statistics it writes
//! at start-up keep SQLite off the `lock_by` index, which grows with every job a
//! worker ever took), and both queues forget the jobs that finished. Redis runs when
//! `EXECHUB_TEST_REDIS_URL` is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use exechub::domain::values::Priority;
use exechub::scheduler::queue::{Job, JobRunner, Queue};
use sea_orm::sqlx::{self, Row, SqlitePool};

/// apalis-sqlite 1.0's acknowledgement statement (`queries/task/ack.sql`).
const ACK: &str = "WITH j AS (SELECT value ->> 'task_id' AS task_id, value ->> 'attempt' AS attempt, \
    value ->> 'result' AS result, value ->> 'status' AS status FROM json_each(?1)) \
    UPDATE Jobs SET status = j.status, attempts = j.attempt, last_result = j.result, \
    done_at = strftime('%s', 'now') FROM j WHERE Jobs.id = j.task_id AND Jobs.lock_by = ?2";

/// apalis-sqlite 1.0's lock statement (`queries/task/lock.sql`).
const LOCK: &str = "UPDATE Jobs SET status = 'Running', lock_at = strftime('%s', 'now'), lock_by = ?2 \
    WHERE id IN (SELECT value FROM json_each(?1)) AND (status = 'Queued' OR status = 'Pending' \
    OR (status = 'Failed' AND attempts < max_attempts))";

async fn plan(pool: &SqlitePool, statement: &str) -> String {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {statement}"
    )))
    .bind("[]")
    .bind("worker")
    .fetch_all(pool)
    .await
    .expect("query plan")
    .iter()
    .map(|row| row.get::<String, _>("detail"))
    .collect::<Vec<_>>()
    .join("; ")
}

#[tokio::test]
async fn acknowledgements_and_locks_look_jobs_up_by_id() {
    let dir = std::env::temp_dir().join(format!("exechub-queue-{}", uuid::Uuid::now_v7()));
    Queue::open(None, &dir, "test", Duration::from_secs(1))
        .await
        .expect("embedded queue");
    // A second start (as after a restart) keeps the statistics.
    Queue::open(None, &dir, "test", Duration::from_secs(1))
        .await
        .expect("embedded queue, reopened");
    let pool = SqlitePool::connect(&format!("sqlite://{}", dir.join("queue.db").display()))
        .await
        .expect("queue database");
    for statement in [ACK, LOCK] {
        let plan = plan(&pool, statement).await;
        assert!(
            plan.contains("sqlite_autoindex_Jobs_1 (id=?)"),
            "not looked up by id: {plan}"
        );
        assert!(!plan.contains("LIdx"), "walks the lock_by index: {plan}");
    }
    pool.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Counts the jobs it is given.
struct Counting(Arc<AtomicUsize>);

impl JobRunner for Counting {
    async fn run(&self, _job: Job) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs three jobs on a fresh queue, then forgets finished jobs until `left` (given
/// the queue's prefix and data dir) finds none of them kept.
async fn run_and_forget<F, Fut>(redis_url: Option<&str>, left: F)
where
    F: Fn(String, std::path::PathBuf) -> Fut,
    Fut: Future<Output = usize>,
{
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (prefix, dir) = (
        format!("exechub-test-{id}"),
        std::env::temp_dir().join(format!("exechub-queue-{id}")),
    );
    let queue = Queue::open(redis_url, &dir, &prefix, Duration::from_millis(50))
        .await
        .expect("queue");
    let jobs = (0..3)
        .map(|i| {
            let job = Job::Retry {
                execution_id: format!("execution-{i}"),
                priority: Priority::Normal,
            };
            (job, Duration::ZERO)
        })
        .collect();
    queue.push(jobs).await.expect("push");
    let ran = Arc::new(AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    queue.spawn_workers(
        &format!("worker-{id}"),
        4,
        Arc::new(Counting(ran.clone())),
        stop,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while ran.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the jobs never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        left(prefix.clone(), dir.clone()).await > 0,
        "nothing was kept"
    );
    loop {
        // Acknowledgements are written a moment after a job ran.
        queue.forget_finished().await.expect("forget");
        let kept = left(prefix.clone(), dir.clone()).await;
        if kept == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{kept} finished jobs kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_queue_forgets_finished_jobs() {
    run_and_forget(None, |_, dir| async move {
        let url = format!("sqlite://{}", dir.join("queue.db").display());
        let pool = SqlitePool::connect(&url).await.expect("queue database");
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM Jobs")
            .fetch_one(&pool)
            .await
            .expect("count");
        pool.close().await;
        left as usize
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_queue_forgets_finished_jobs() {
    let Ok(url) = std::env::var("EXECHUB_TEST_REDIS_URL") else {
        return;
    };
    run_and_forget(Some(&url), |prefix, _| {
        let url = url.clone();
        async move {
            let mut redis = redis::Client::open(url.as_str())
                .expect("redis url")
                .get_multiplexed_async_connection()
                .await
                .expect("redis");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:*"))
                .query_async(&mut redis)
                .await
                .expect("keys");
            keys.iter().filter(|k| !k.contains(":workers")).count()
        }
    })
    .await;
}
