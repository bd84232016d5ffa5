//! The steps that jobs delivered by the queue start from: read for all jobs
//! delivered together in one statement, instead of one read a job.

use crate::batcher::Batcher;
use crate::domain::records::Step;
use crate::store::Store;

/// Keys (execution, step) per read at most.
const MAX_BATCH: usize = 256;

pub type StepReader = Batcher<(String, String), Option<Step>>;

/// Reads steps by key; a failed read answers `None`, as a missing step does.
pub fn start(store: Store) -> StepReader {
    Batcher::start(MAX_BATCH, move |keys: Vec<(String, String)>| {
        let store = store.clone();
        async move {
            let mut found = match store.steps_by_key(&keys).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::debug!(?error, "reading steps failed");
                    Default::default()
                }
            };
            keys.iter().map(|key| found.remove(key)).collect()
        }
    })
}
