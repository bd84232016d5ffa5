//! Saving a domain `Change`: one transaction that first locks the execution row
//! (a no-op UPDATE, so SQLite takes its write lock and Postgres its row lock before
//! anything is read), reads the current state, lets the rule compute the change, then
//! updates the row guarded by the status and sequence it was computed from and writes
//! its steps, logs, checkpoints, webhooks, events and the audit row — or nothing.
//! Concurrent writers to one execution queue on the lock instead of retrying. Every
//! change is settled by the scheduler's rule (`schedule::settle`) before it is saved,
//! so steps are handed out in the same transaction that made them ready.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait,
};
use serde_json::json;

use super::Store;
use super::entities::*;
use super::mapping::*;
use super::reads::{execution_on, steps_on, webhooks_on};
use crate::auth::Principal;
use crate::domain::change::Change;
use crate::domain::records::{Execution, Step, Webhook, new_id};
use crate::domain::schedule;
use crate::error::{AppError, AppResult};

/// What a rule sees: the execution with its steps, and its webhooks when asked for.
pub struct Snapshot {
    pub execution: Execution,
    pub steps: Vec<Step>,
    /// Loaded only with `apply(.., with_webhooks: true, ..)`; empty otherwise.
    pub webhooks: Vec<Webhook>,
}

/// Rows per multi-row INSERT, well inside SQLite's and Postgres' parameter limits.
const CHUNK: usize = 200;

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
        let txn = self.db.begin().await?;
        let snapshot = lock_snapshot(&txn, principal, execution_id, with_webhooks)
            .await?
            .ok_or_else(|| AppError::not_found(format!("execution `{execution_id}`")))?;
        let change = settled(&snapshot, rule)?;
        save(&txn, &snapshot.execution, &change).await?;
        write_audit(&txn, vec![audit_row(principal, action, &change)]).await?;
        txn.commit().await?;
        Ok(change)
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
        let txn = self.db.begin().await?;
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
        write_tags(&txn, &change.execution, false).await?;
        write_parts(&txn, change).await?;
        write_audit(&txn, vec![audit_row(principal, "createExecution", change)]).await?;
        txn.commit().await?;
        Ok(change.execution.clone())
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

impl Snapshot {
    /// The state `change` leaves: what the next rule of a batch sees. (Webhooks are
    /// not loaded for batches, so they are not followed.)
    pub(super) fn advance(&mut self, change: &Change) {
        self.execution = change.execution.clone();
        for step in &change.steps {
            match self.steps.iter_mut().find(|s| s.id == step.id) {
                Some(current) => *current = step.clone(),
                None => self.steps.push(step.clone()),
            }
        }
    }
}

/// Locks the execution row (see the module comment) and reads the execution the
/// principal may see, with its steps and, when asked, its webhooks. `None` when it
/// does not exist or is invisible to the principal.
pub(super) async fn lock_snapshot(
    txn: &DatabaseTransaction,
    principal: &Principal,
    execution_id: &str,
    with_webhooks: bool,
) -> AppResult<Option<Snapshot>> {
    let locked = execution::Entity::update_many()
        .col_expr(
            execution::Column::LastSequence,
            Expr::col(execution::Column::LastSequence),
        )
        .filter(execution::Column::Id.eq(execution_id))
        .exec(txn)
        .await?;
    if locked.rows_affected == 0 {
        return Ok(None);
    }
    let Some(execution) = execution_on(txn, principal, execution_id).await? else {
        return Ok(None);
    };
    Ok(Some(Snapshot {
        steps: steps_on(txn, execution_id).await?,
        webhooks: if with_webhooks {
            webhooks_on(txn, execution_id).await?
        } else {
            Vec::new()
        },
        execution,
    }))
}

/// The rule's change, settled by the scheduler's rule against the same snapshot.
pub(super) fn settled<F>(snapshot: &Snapshot, rule: F) -> AppResult<Change>
where
    F: FnOnce(&Snapshot) -> AppResult<Change>,
{
    let mut change = rule(snapshot)?;
    schedule::settle(&mut change, &snapshot.execution, &snapshot.steps);
    Ok(change)
}

/// Writes a computed change inside the transaction that read its snapshot (`before`
/// is the execution as read); the audit rows are the caller's.
pub(super) async fn save(
    txn: &DatabaseTransaction,
    before: &Execution,
    change: &Change,
) -> AppResult<()> {
    let updated = execution::Entity::update_many()
        .set(execution_to_row(&change.execution))
        .filter(execution::Column::Id.eq(&change.execution.id))
        .filter(execution::Column::Status.eq(change.expected_status.as_str()))
        .filter(execution::Column::LastSequence.eq(change.expected_sequence))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(AppError::Conflict(
            "the execution changed while this request was applied".into(),
        ));
    }
    if before.tags != change.execution.tags {
        write_tags(txn, &change.execution, true).await?;
    }
    if !change.webhooks_removed.is_empty() {
        webhook::Entity::delete_many()
            .filter(webhook::Column::ExecutionId.eq(&change.execution.id))
            .filter(webhook::Column::Id.is_in(change.webhooks_removed.clone()))
            .exec(txn)
            .await?;
    }
    write_parts(txn, change).await
}

async fn write_tags(
    txn: &DatabaseTransaction,
    execution: &Execution,
    replace: bool,
) -> AppResult<()> {
    if replace {
        execution_tag::Entity::delete_many()
            .filter(execution_tag::Column::ExecutionId.eq(&execution.id))
            .exec(txn)
            .await?;
    }
    if !execution.tags.is_empty() {
        execution_tag::Entity::insert_many(execution.tags.iter().map(|tag| {
            execution_tag::ActiveModel {
                execution_id: Set(execution.id.clone()),
                tag: Set(tag.clone()),
            }
        }))
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

/// Everything of a change besides the execution row itself and the audit rows.
async fn write_parts(txn: &DatabaseTransaction, change: &Change) -> AppResult<()> {
    let id = change.execution.id.as_str();
    for chunk in change.steps.chunks(CHUNK) {
        step::Entity::insert_many(chunk.iter().map(|s| step_to_row(id, s)))
            .on_conflict(
                OnConflict::columns([step::Column::ExecutionId, step::Column::StepId])
                    .update_columns([
                        step::Column::Idx,
                        step::Column::Name,
                        step::Column::Status,
                        step::Column::DependsOn,
                        step::Column::HandlerKind,
                        step::Column::HandlerConfig,
                        step::Column::Assignee,
                        step::Column::Input,
                        step::Column::Output,
                        step::Column::Error,
                        step::Column::StartedAt,
                        step::Column::CompletedAt,
                        step::Column::DurationMs,
                        step::Column::TimeoutMs,
                        step::Column::Retries,
                        step::Column::Attempt,
                        step::Column::ReadyAt,
                        step::Column::LeaseExpiresAt,
                        step::Column::LeaseOwner,
                        step::Column::Metadata,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    for chunk in change.logs.chunks(CHUNK) {
        log::Entity::insert_many(chunk.iter().map(|l| log_to_row(id, l)))
            .exec_without_returning(txn)
            .await?;
    }
    if !change.checkpoints.is_empty() {
        checkpoint::Entity::insert_many(
            change.checkpoints.iter().map(|c| checkpoint_to_row(id, c)),
        )
        .exec_without_returning(txn)
        .await?;
    }
    if !change.webhooks_added.is_empty() {
        webhook::Entity::insert_many(change.webhooks_added.iter().map(webhook_to_row))
            .exec_without_returning(txn)
            .await?;
    }
    for chunk in change.events.chunks(CHUNK) {
        event::Entity::insert_many(chunk.iter().map(event_to_row))
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Who did what: one audit row per applied command.
pub(super) fn audit_row(
    principal: &Principal,
    action: &str,
    change: &Change,
) -> audit::ActiveModel {
    let sequences = change.events.first().zip(change.events.last());
    audit::ActiveModel {
        id: Set(new_id()),
        at: Set(to_ms(change.now)),
        subject: Set(principal.subject.clone()),
        role: Set(principal.role.as_str().to_owned()),
        tenant: Set(principal.tenant.clone()),
        action: Set(action.to_owned()),
        execution_id: Set(Some(change.execution.id.clone())),
        detail: Set(Some(json!({
            "status": change.execution.status.as_str(),
            "sequences": sequences.map(|(a, b)| [a.sequence, b.sequence]),
        }))),
    }
}

pub(super) async fn write_audit(
    txn: &DatabaseTransaction,
    rows: Vec<audit::ActiveModel>,
) -> AppResult<()> {
    for chunk in rows.chunks(CHUNK) {
        audit::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}
