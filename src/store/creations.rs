//! Group commit for new executions: creates that arrive together are saved in one
//! transaction, each with its tags, steps, events and audit row, as changes are
//! (`shared_transactions`). On SQLite, where one writer runs at a time, a
//! transaction per create would leave creates queueing for seconds under load; a
//! burst costs one commit. A create whose idempotency key is taken answers the execution created
//! first. A shared transaction that fails is tried again one create at a time.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseTransaction, EntityTrait};

use super::Store;
use super::entities::*;
use super::mapping::*;
use super::writes::{audit_row, insert_chunked, write_audit, write_parts, write_tags};
use crate::auth::Principal;
use crate::domain::change::Change;
use crate::domain::records::Execution;
use crate::error::{AppError, AppResult};

/// A new execution and who creates it.
pub type Creation = (Principal, Change);

impl Store {
    /// Saves each new execution, all in one transaction; for each, the execution
    /// saved, or the one created first under its idempotency key.
    pub(crate) async fn create_batch(&self, creations: Vec<Creation>) -> Vec<AppResult<Execution>> {
        let saved = match self.recorded(self.save_creations(&creations).await) {
            Ok(saved) => saved.into_iter().map(Ok).collect(),
            Err(error) if creations.len() > 1 && error != AppError::Unavailable => {
                let mut saved = Vec::new();
                for creation in &creations {
                    let alone = self.save_creations(std::slice::from_ref(creation)).await;
                    saved.push(self.recorded(alone).map(|mut saved| saved.remove(0)));
                }
                saved
            }
            Err(error) => creations.iter().map(|_| Err(error.clone())).collect(),
        };
        let mut answers = Vec::new();
        for ((principal, change), saved) in creations.iter().zip(saved) {
            answers.push(match saved {
                Ok(true) => Ok(change.execution.clone()),
                Ok(false) => self.created_first(principal, change).await,
                Err(error) => Err(error),
            });
        }
        answers
    }

    /// One transaction for `creations`; whether each was saved (`false`: its
    /// idempotency key was taken).
    async fn save_creations(&self, creations: &[Creation]) -> AppResult<Vec<bool>> {
        let (_turn, txn) = self.begin_shared_write().await?;
        let mut saved = Vec::new();
        for (principal, change) in creations {
            saved.push(claim_key(&txn, principal, change).await?);
        }
        let fresh: Vec<&Creation> = (creations.iter().zip(&saved))
            .filter(|(_, saved)| **saved)
            .map(|(creation, _)| creation)
            .collect();
        let rows = fresh
            .iter()
            .map(|(_, c)| execution_to_row(&c.execution))
            .collect();
        insert_chunked(&txn, rows, None).await?;
        let executions: Vec<&Execution> = fresh.iter().map(|(_, c)| &c.execution).collect();
        write_tags(&txn, &executions, false).await?;
        let changes: Vec<&Change> = fresh.iter().map(|(_, c)| c).collect();
        write_parts(&txn, &changes).await?;
        let audits = fresh
            .iter()
            .map(|(p, c)| audit_row(p, "createExecution", c));
        write_audit(&txn, audits.collect()).await?;
        txn.commit().await?;
        Ok(saved)
    }

    /// The execution created first under `change`'s idempotency key.
    async fn created_first(&self, principal: &Principal, change: &Change) -> AppResult<Execution> {
        let tenant = principal.tenant.clone().unwrap_or_default();
        let key = change.idempotency_key.as_deref().unwrap_or_default();
        (self.by_idempotency_key(principal, &tenant, key).await?)
            .ok_or_else(|| AppError::Conflict("idempotency key is in use".into()))
    }
}

/// Records `change`'s idempotency key for its new execution; false when another
/// execution holds it already. (No key: nothing to claim.)
async fn claim_key(
    txn: &DatabaseTransaction,
    principal: &Principal,
    change: &Change,
) -> AppResult<bool> {
    let Some(key) = &change.idempotency_key else {
        return Ok(true);
    };
    let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        tenant: Set(principal.tenant.clone().unwrap_or_default()),
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
    .exec_without_returning(txn)
    .await?;
    Ok(inserted == 1)
}
