//! The embedded queue acknowledges a job by looking it up by id, however many jobs it
//! has finished before: the planner statistics it writes at start-up keep SQLite off
//! the `lock_by` index, which grows with every job a worker ever took.

use std::time::Duration;

use exechub::scheduler::queue::Queue;
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
