//! Group commit, the service's way of saving: a change waits while the
//! transaction in flight commits, then goes with everything else that arrived
//! meanwhile in the next one (`Store::apply_batch`). Under load, many step starts,
//! completions and clients' commands share one commit; when idle, a change commits at once. On
//! Postgres several lanes commit side by side; an execution always takes the same
//! lane, so its changes keep their order and lanes never wait on each other's locks.
//! New executions are saved the same way, in lanes of their own.

use std::sync::Arc;

use crate::batcher::Batcher;
use crate::domain::change::Change;
use crate::domain::records::Execution;
use crate::error::{AppError, AppResult};
use crate::store::Store;
use crate::store::creations::Creation;
use crate::store::shared_transactions::BatchedRule;

/// What follows each commit (`Service::committed`), called by the lane itself, so
/// that a change once committed is published and queued even when whoever asked
/// for it stopped waiting (a request past its timeout, a client gone).
pub type Committed = Arc<dyn Fn(&Change) + Send + Sync>;

#[derive(Clone)]
pub struct Committer {
    lanes: Vec<Batcher<BatchedRule, AppResult<Change>>>,
    /// New executions, saved together as they arrive (`Store::create_batch`), in
    /// as many lanes as changes.
    creations: Vec<Batcher<Creation, AppResult<Execution>>>,
}

impl Committer {
    pub fn start(store: Store, committed: Committed) -> Self {
        let lanes = (0..store.write_lanes())
            .map(|_| {
                let (store, committed) = (store.clone(), committed.clone());
                Batcher::start(store.max_batch(), move |rules| {
                    commit(store.clone(), rules, committed.clone())
                })
            })
            .collect();
        let creations = (0..store.write_lanes())
            .map(|_| {
                let (store, committed) = (store.clone(), committed.clone());
                Batcher::start(store.max_batch(), move |creations| {
                    create(store.clone(), creations, committed.clone())
                })
            })
            .collect();
        Committer { lanes, creations }
    }

    /// Queues a new execution for the next shared transaction of creates; the
    /// execution saved (or the one created first under its idempotency key).
    pub async fn create(&self, creation: Creation) -> AppResult<Execution> {
        // Creates under one idempotency key share a lane, so they never wait on each
        // other's key across lanes.
        let change = &creation.1;
        let key = change
            .idempotency_key
            .as_ref()
            .unwrap_or(&change.execution.id);
        let lane = hash(key) % self.creations.len();
        (self.creations[lane].call(creation).await).unwrap_or_else(|| {
            Err(AppError::Internal(
                "the service's group commit stopped".into(),
            ))
        })
    }

    /// Queues `rule` for the next batch at once (so rules submitted one after the
    /// other apply in that order) and returns its change once committed.
    pub fn submit(&self, rule: BatchedRule) -> impl Future<Output = AppResult<Change>> + use<> {
        let lane = hash(&rule.execution_id) % self.lanes.len();
        let committed = self.lanes[lane].call(rule);
        async move {
            committed.await.unwrap_or_else(|| {
                Err(AppError::Internal(
                    "the service's group commit stopped".into(),
                ))
            })
        }
    }
}

fn hash(key: &str) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(key, &mut hasher);
    std::hash::Hasher::finish(&hasher) as usize
}

/// One shared transaction of creates (`Store::create_batch`): each create's own
/// result; a new execution is followed up, one its idempotency key named is not.
async fn create(
    store: Store,
    creations: Vec<Creation>,
    committed: Committed,
) -> Vec<AppResult<Execution>> {
    let changes: Vec<Change> = creations.iter().map(|(_, change)| change.clone()).collect();
    let results = store.create_batch(creations).await;
    for (change, result) in changes.iter().zip(&results) {
        if result
            .as_ref()
            .is_ok_and(|saved| saved.id == change.execution.id)
        {
            committed(change);
        }
    }
    results
}

/// One shared transaction (`Store::apply_batch`): each rule's own result, each
/// change that committed followed up.
async fn commit(
    store: Store,
    rules: Vec<BatchedRule>,
    committed: Committed,
) -> Vec<AppResult<Change>> {
    let count = rules.len();
    metrics::histogram!("exechub_commit_batch_size").record(count as f64);
    // On a task of its own: a panicking rule fails its batch, not the lane.
    let started = std::time::Instant::now();
    let results = tokio::spawn(async move { store.apply_batch(rules).await }).await;
    metrics::histogram!("exechub_commit_seconds").record(started.elapsed().as_secs_f64());
    match results {
        Ok(results) => {
            for change in results.iter().flatten() {
                committed(change);
            }
            results
        }
        Err(panic) => {
            tracing::error!(%panic, count, "a shared transaction panicked");
            vec![Err(AppError::Internal("the change failed".into())); count]
        }
    }
}
