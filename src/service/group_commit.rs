//! Group commit, the service's way of saving: a change waits while the
//! transaction in flight commits, then goes with everything else that arrived
//! meanwhile in the next one (`Store::apply_batch`). Under load, many step starts,
//! completions and clients' commands share one commit; when idle, a change commits at once. On
//! Postgres several lanes commit side by side; an execution always takes the same
//! lane, so its changes keep their order and lanes never wait on each other's locks.
//! New executions are saved the same way, in lanes of their own.

use super::batcher::Batcher;
use crate::domain::change::Change;
use crate::domain::records::Execution;
use crate::error::{AppError, AppResult};
use crate::store::Store;
use crate::store::creations::Creation;
use crate::store::shared_transactions::BatchedRule;

#[derive(Clone)]
pub struct Committer {
    lanes: Vec<Batcher<BatchedRule, AppResult<Change>>>,
    /// New executions, saved together as they arrive (`Store::create_batch`), in
    /// as many lanes as changes.
    creations: Vec<Batcher<Creation, AppResult<Execution>>>,
}

impl Committer {
    pub fn start(store: Store) -> Self {
        let lanes = (0..store.write_lanes())
            .map(|_| {
                let store = store.clone();
                Batcher::start(store.max_batch(), move |rules| commit(store.clone(), rules))
            })
            .collect();
        let creations = (0..store.write_lanes())
            .map(|_| {
                let store = store.clone();
                Batcher::start(store.max_batch(), move |creations| {
                    let store = store.clone();
                    async move { store.create_batch(creations).await }
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
                "the scheduler's committer stopped".into(),
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
                    "the scheduler's committer stopped".into(),
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

/// One shared transaction (`Store::apply_batch`): each rule's own result.
async fn commit(store: Store, rules: Vec<BatchedRule>) -> Vec<AppResult<Change>> {
    let count = rules.len();
    metrics::histogram!("exechub_commit_batch_size").record(count as f64);
    // On a task of its own: a panicking rule fails its batch, not the lane.
    let started = std::time::Instant::now();
    let committed = tokio::spawn(async move { store.apply_batch(rules).await }).await;
    metrics::histogram!("exechub_commit_seconds").record(started.elapsed().as_secs_f64());
    match committed {
        Ok(results) => results,
        Err(panic) => {
            tracing::error!(%panic, count, "a batch of scheduler changes panicked");
            vec![Err(AppError::Internal("the change failed".into())); count]
        }
    }
}
