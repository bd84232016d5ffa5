//! A command in a transaction of its own: one transaction that locks and reads the
//! execution (`snapshots`), lets the rule compute the change and writes it with its
//! events and the audit row (`writes`) — or nothing. Shared transactions are in
//! `shared_transactions`, new executions in `creations`.

use sea_orm::EntityTrait;

use super::Store;
use super::entities::*;
use super::limit_usage::read_usage;
use super::snapshots::lock_snapshots;
use super::writes::{audit_row, save_all, write_audit};
use crate::auth::Principal;
use crate::domain::change::Change;
use crate::domain::records::Execution;
use crate::domain::snapshot::Snapshot;
use crate::error::{AppError, AppResult};

impl Store {
    /// Locks the execution the principal may see, lets `rule` compute the change from
    /// its current state, and saves it, all in one transaction. `NOT_FOUND` when the
    /// execution does not exist or is invisible to the principal.
    pub(crate) async fn apply<F>(
        &self,
        principal: &Principal,
        action: &str,
        execution_id: &str,
        with_webhooks: bool,
        rule: F,
    ) -> AppResult<Change>
    where
        F: FnOnce(&Snapshot) -> AppResult<Change>,
    {
        let applied = async {
            let (_turn, txn) = self.begin_write().await?;
            let snapshots = lock_snapshots(&txn, principal, &[execution_id], with_webhooks).await?;
            let usage = read_usage(&txn, self.limits(), &snapshots).await?;
            let mut snapshot = (snapshots.into_values().next())
                .ok_or_else(|| AppError::no_execution(execution_id))?;
            snapshot.usage = usage;
            let change = rule(&snapshot)?;
            save_all(&txn, &[(&snapshot.execution, &change)]).await?;
            write_audit(&txn, vec![audit_row(principal, action, &change)]).await?;
            txn.commit().await?;
            Ok(change)
        };
        self.recorded(applied.await)
    }

    pub(super) async fn by_idempotency_key(
        &self,
        principal: &Principal,
        tenant: &str,
        key: &str,
    ) -> AppResult<Option<Execution>> {
        let found = idempotency_key::Entity::find_by_id((tenant.to_owned(), key.to_owned()))
            .one(&self.db)
            .await?;
        match found {
            Some(row) => self.execution(principal, &row.execution_id).await,
            None => Ok(None),
        }
    }
}
