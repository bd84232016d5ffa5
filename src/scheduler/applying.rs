//! How the scheduler changes an execution: a rule applied in the next shared
//! transaction of the execution's commit lane (`commits`), as the scheduler or as a
//! client, and the change dispatched once committed.

use chrono::TimeDelta;

use super::Scheduler;
use crate::auth::Principal;
use crate::clock;
use crate::domain::change::Change;
use crate::domain::records::{Execution, Timestamp};
use crate::error::AppResult;
use crate::store::batch::{BatchedRule, Rule};
use crate::store::changes::Snapshot;

impl Scheduler {
    /// Applies a scheduler rule as the scheduler, in the next shared transaction, and
    /// dispatches its change.
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
        let rule = Box::new(move |snapshot: &Snapshot| rule(snapshot, clock::now()));
        self.apply_as(Principal::scheduler(), action, execution_id, rule)
    }

    /// Applies a client's command (a rule as `principal`) in the next shared
    /// transaction, and dispatches its change. `NOT_FOUND` when the execution does
    /// not exist or is invisible to the principal. The rule is queued before this
    /// returns.
    pub fn apply_as(
        &self,
        principal: Principal,
        action: &'static str,
        execution_id: &str,
        rule: Rule,
    ) -> impl Future<Output = AppResult<Change>> + Send + 'static {
        let committed = self.0.committer.submit(BatchedRule {
            principal,
            action,
            execution_id: execution_id.to_owned(),
            rule,
        });
        let scheduler = self.clone();
        async move {
            let change = committed.await?;
            scheduler.dispatch(&change);
            Ok(change)
        }
    }

    /// Saves a new execution in the next shared transaction of creates, and
    /// dispatches it (unless its idempotency key named one created before).
    pub async fn create(&self, principal: Principal, change: Change) -> AppResult<Execution> {
        let execution = (self.0.committer)
            .create((principal, change.clone()))
            .await?;
        if execution.id == change.execution.id {
            self.dispatch(&change);
        }
        Ok(execution)
    }

    pub(super) fn lease_until(&self, now: Timestamp) -> Timestamp {
        now + self.lease_delta()
    }

    pub(super) fn lease_delta(&self) -> TimeDelta {
        TimeDelta::from_std(self.0.config.lease).unwrap_or_default()
    }
}
