//! How the scheduler changes an execution: its rules go through the service as
//! every change does, as the scheduler's principal, in the next shared transaction
//! of the execution's lane.

use chrono::TimeDelta;

use super::Scheduler;
use crate::auth::{Permission, Principal};
use crate::domain::change::Change;
use crate::domain::records::Timestamp;
use crate::domain::snapshot::Snapshot;
use crate::error::AppResult;

impl Scheduler {
    /// Applies a scheduler rule as the scheduler, in the next shared transaction;
    /// the change once committed (and dispatched).
    pub(super) async fn apply<F>(
        &self,
        action: &'static str,
        execution_id: &str,
        rule: F,
    ) -> AppResult<Change>
    where
        F: FnOnce(&Snapshot, Timestamp) -> AppResult<Change> + Send + 'static,
    {
        self.submit(action, execution_id, rule).await
    }

    /// As `apply`, but the rule is queued before this returns, so that rules
    /// submitted one after the other apply in that order.
    pub(super) fn submit<F>(
        &self,
        action: &'static str,
        execution_id: &str,
        rule: F,
    ) -> impl Future<Output = AppResult<Change>> + Send + 'static
    where
        F: FnOnce(&Snapshot, Timestamp) -> AppResult<Change> + Send + 'static,
    {
        let rule = move |snapshot: &Snapshot, _: &str, now| rule(snapshot, now);
        let (by, permission) = (Principal::scheduler(), Permission::Manage);
        (self.0.service).submit(by, permission, action, execution_id, rule)
    }

    pub(super) fn lease_until(&self, now: Timestamp) -> Timestamp {
        now + self.lease_delta()
    }

    pub(super) fn lease_delta(&self) -> TimeDelta {
        TimeDelta::from_std(self.0.config.lease).unwrap_or_default()
    }
}
