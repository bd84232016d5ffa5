//! Fires the schedules that are due, in every process that runs workers: it sleeps
//! until the soonest instant a schedule is due (a second at most, so that a schedule
//! another process created or changed is seen soon), then fires each one due
//! through the service. Processes that fire at once do not fire an instant twice:
//! a fire is fenced (`domain::recurring::firing`).

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::error::AppResult;
use crate::service::Service;
use crate::store::Store;

/// The longest sleep between looks at the schedules.
const LOOK_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// Schedules fired per look, at most.
const BATCH: u64 = 500;

/// Runs until `stopping` is cancelled.
pub async fn run(service: Service, store: Store, stopping: CancellationToken) {
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = stopping.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = match fire_due(&service, &store).await {
            Ok(()) => until_next(&store).await,
            Err(error) => {
                tracing::warn!(?error, "firing schedules failed");
                LOOK_AT_LEAST_EVERY
            }
        };
    }
}

async fn fire_due(service: &Service, store: &Store) -> AppResult<()> {
    for id in store.due_schedules(Utc::now(), BATCH).await? {
        service.fire_schedule(&id).await?;
    }
    Ok(())
}

/// How long until the soonest schedule is due, at most `LOOK_AT_LEAST_EVERY`.
async fn until_next(store: &Store) -> Duration {
    match store.next_schedule_fire().await {
        Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default(),
        Ok(None) => LOOK_AT_LEAST_EVERY,
        Err(error) => {
            tracing::warn!(?error, "reading when schedules are due failed");
            LOOK_AT_LEAST_EVERY
        }
    }
    .min(LOOK_AT_LEAST_EVERY)
}
