//! Applying a command to an execution: one transaction that locks and reads it
//! (`snapshots`), lets the rule compute the change, settles it with the scheduler's
//! rule (`schedule::settle`, so steps are handed out in the same transaction that
//! made them ready) and writes it with its events and the audit row (`writes`) — or
//! nothing. Creating an execution is its own transaction too.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::Store;
use super::entities::*;
use super::mapping::*;
pub use super::snapshots::Snapshot;
use super::snapshots::{lock_snapshots, settled};
use super::writes::{audit_row, save_all, write_audit, write_parts, write_tags};
use crate::auth::Principal;
use crate::domain::change::Change;
use crate::domain::records::Execution;
use crate::error::{AppError, AppResult};

impl Store {
    /// Locks the execution the principal may see, lets `rule` compute the change from
    /// its current state, and saves it, all in one transaction. `NOT_FOUND` when the
    /// execution does not exist or is invisible to the principal.
    pub async fn apply<F>(
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
            let snapshot = lock_snapshots(&txn, principal, &[execution_id], with_webhooks)
                .await?
                .into_values()
                .next()
                .ok_or_else(|| AppError::no_execution(execution_id))?;
            let change = settled(&snapshot, rule)?;
            save_all(&txn, &[(&snapshot.execution, &change)]).await?;
            write_audit(&txn, vec![audit_row(principal, action, &change)]).await?;
            txn.commit().await?;
            Ok(change)
        };
        self.recorded(applied.await)
    }

    /// Saves a new execution (with its idempotency key, if any). When the key is
    /// already taken, returns the execution created first instead.
    pub async fn create(&self, principal: &Principal, change: &Change) -> AppResult<Execution> {
        let tenant = principal.tenant.clone().unwrap_or_default();
        if let Some(key) = &change.idempotency_key
            && let Some(existing) = self.by_idempotency_key(principal, &tenant, key).await?
        {
            return Ok(existing);
        }
        let created = async {
            let (_turn, txn) = self.begin_write().await?;
            if let Some(key) = &change.idempotency_key {
                let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
                    tenant: Set(tenant.clone()),
                    key: Set(key.clone()),
                    execution_id: Set(change.execution.id.clone()),
                    created_at: Set(to_ms(change.now)),
                })
                .on_conflict(
                    OnConflict::columns([
                        idempotency_key::Column::Tenant,
                        idempotency_key::Column::Key,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
                if inserted == 0 {
                    txn.rollback().await?;
                    return self
                        .by_idempotency_key(principal, &tenant, key)
                        .await?
                        .ok_or_else(|| AppError::Conflict("idempotency key is in use".into()));
                }
            }
            execution::Entity::insert(execution_to_row(&change.execution))
                .exec_without_returning(&txn)
                .await?;
            write_tags(&txn, &[&change.execution], false).await?;
            write_parts(&txn, &[change]).await?;
            write_audit(&txn, vec![audit_row(principal, "createExecution", change)]).await?;
            txn.commit().await?;
            Ok(change.execution.clone())
        };
        self.recorded(created.await)
    }

    async fn by_idempotency_key(
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
