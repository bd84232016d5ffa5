//! Writing computed changes inside the transaction that read their snapshots: the
//! execution rows, then each kind of part (steps, logs, checkpoints, webhooks,
//! events) as one multi-row statement for all changes together, then the audit rows.
//! The rows were locked when read, so the writes need no guard of their own.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, Iterable, QueryFilter,
};
use serde_json::json;

use super::entities::*;
use super::mapping::*;
use crate::auth::Principal;
use crate::domain::change::Change;
use crate::domain::records::{Execution, new_id};
use crate::domain::webhooks;
use crate::error::AppResult;

/// Rows per multi-row INSERT, well inside SQLite's and Postgres' parameter limits.
const CHUNK: usize = 200;

/// Saves changes of existing executions, each with the execution as it was read
/// (`before`). The audit rows are the caller's (`write_audit`).
pub(super) async fn save_all(
    txn: &DatabaseTransaction,
    changes: &[(&Execution, &Change)],
) -> AppResult<()> {
    let rows: Vec<_> = changes
        .iter()
        .map(|(_, change)| execution_to_row(&change.execution))
        .collect();
    let upsert = OnConflict::column(execution::Column::Id)
        .update_columns(execution::Column::iter().filter(|c| !matches!(c, execution::Column::Id)))
        .to_owned();
    insert_chunked(txn, rows, Some(upsert)).await?;
    for (before, change) in changes {
        if before.tags != change.execution.tags {
            write_tags(txn, &[&change.execution], true).await?;
        }
        if !change.webhooks_removed.is_empty() {
            webhook::Entity::delete_many()
                .filter(webhook::Column::ExecutionId.eq(&change.execution.id))
                .filter(webhook::Column::Id.is_in(change.webhooks_removed.clone()))
                .exec(txn)
                .await?;
        }
    }
    let changes: Vec<&Change> = changes.iter().map(|(_, change)| *change).collect();
    super::limit_usage::write_usage(txn, &changes).await?;
    write_parts(txn, &changes).await
}

/// The executions' tags (after deleting the old ones when `replace`).
pub(super) async fn write_tags(
    txn: &DatabaseTransaction,
    executions: &[&Execution],
    replace: bool,
) -> AppResult<()> {
    if replace {
        execution_tag::Entity::delete_many()
            .filter(
                execution_tag::Column::ExecutionId.is_in(executions.iter().map(|e| e.id.as_str())),
            )
            .exec(txn)
            .await?;
    }
    let rows = executions
        .iter()
        .flat_map(|e| {
            e.tags.iter().map(|tag| execution_tag::ActiveModel {
                execution_id: Set(e.id.clone()),
                tag: Set(tag.clone()),
            })
        })
        .collect();
    insert_chunked(txn, rows, None).await
}

/// Inserts `rows` in multi-row statements of at most `CHUNK` rows.
pub(super) async fn insert_chunked<M>(
    txn: &DatabaseTransaction,
    rows: Vec<M>,
    on_conflict: Option<OnConflict>,
) -> AppResult<()>
where
    M: sea_orm::ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut insert = M::Entity::insert_many(rows.by_ref().take(CHUNK));
        if let Some(on_conflict) = &on_conflict {
            insert = insert.on_conflict(on_conflict.clone());
        }
        insert.exec_without_returning(txn).await?;
    }
    Ok(())
}

/// Everything of the changes besides the execution rows and the audit rows.
pub(super) async fn write_parts(txn: &DatabaseTransaction, changes: &[&Change]) -> AppResult<()> {
    let steps = changes
        .iter()
        .flat_map(|c| c.steps.iter().map(|s| step_to_row(&c.execution.id, s)))
        .collect();
    let upsert = OnConflict::columns([step::Column::ExecutionId, step::Column::StepId])
        .update_columns(
            step::Column::iter()
                .filter(|c| !matches!(c, step::Column::ExecutionId | step::Column::StepId)),
        )
        .to_owned();
    insert_chunked(txn, steps, Some(upsert)).await?;
    let logs = changes
        .iter()
        .flat_map(|c| c.logs.iter().map(|l| log_to_row(&c.execution.id, l)))
        .collect();
    insert_chunked(txn, logs, None).await?;
    let checkpoints = changes
        .iter()
        .flat_map(|c| {
            c.checkpoints
                .iter()
                .map(|k| checkpoint_to_row(&c.execution.id, k))
        })
        .collect();
    insert_chunked(txn, checkpoints, None).await?;
    let webhooks = changes
        .iter()
        .flat_map(|c| c.webhooks_added.iter().map(webhook_to_row))
        .collect();
    insert_chunked(txn, webhooks, None).await?;
    // The outbox, so that no wanted event goes undelivered should this process die
    // before its delivery is queued (the reconciler queues what is left).
    let outbox = changes
        .iter()
        .flat_map(|c| {
            webhooks::wanted(c).map(|e| webhook_outbox::ActiveModel {
                execution_id: Set(e.execution_id.clone()),
                sequence: Set(e.sequence),
                created_at: Set(to_ms(e.timestamp)),
            })
        })
        .collect();
    insert_chunked(txn, outbox, None).await?;
    let events = changes
        .iter()
        .flat_map(|c| c.events.iter().map(event_to_row))
        .collect();
    insert_chunked(txn, events, None).await
}

/// Who did what: one audit row per applied command.
pub(super) fn audit_row(
    principal: &Principal,
    action: &str,
    change: &Change,
) -> audit::ActiveModel {
    actions_audit_row(principal, &[action], &[change])
}

/// One audit row for commands one principal applied to one execution in one
/// transaction, one after the other (a shared transaction folds the scheduler's):
/// the distinct actions in order (`beginStep,completeStep`), how many there were, the
/// range of their events and the status they left.
pub(super) fn actions_audit_row(
    principal: &Principal,
    actions: &[&str],
    changes: &[&Change],
) -> audit::ActiveModel {
    let mut distinct: Vec<&str> = Vec::new();
    for action in actions {
        if !distinct.contains(action) {
            distinct.push(action);
        }
    }
    let events = || changes.iter().flat_map(|change| &change.events);
    let sequences = events().next().zip(events().last());
    let last = changes.last().expect("a command at least");
    let mut detail = json!({
        "status": last.execution.status.as_str(),
        "sequences": sequences.map(|(a, b)| [a.sequence, b.sequence]),
    });
    if actions.len() > 1 {
        detail["commands"] = json!(actions.len());
    }
    audit::ActiveModel {
        id: Set(new_id()),
        at: Set(to_ms(last.now)),
        subject: Set(principal.subject.clone()),
        role: Set(principal.role.as_str().to_owned()),
        tenant: Set(principal.tenant.clone()),
        action: Set(distinct.join(",")),
        execution_id: Set(Some(last.execution.id.clone())),
        detail: Set(Some(detail)),
    }
}

pub(super) async fn write_audit(
    txn: &DatabaseTransaction,
    rows: Vec<audit::ActiveModel>,
) -> AppResult<()> {
    insert_chunked(txn, rows, None).await
}
