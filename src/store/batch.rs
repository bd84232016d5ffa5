//! Group commit: many rules, over one or many executions, applied and saved in one
//! transaction, so that a burst of scheduler changes (steps starting, steps
//! finishing) costs one commit instead of one each. The rules of one execution run
//! in order, each on the state the previous one left, and are saved as one write
//! with one audit row and one EXECUTION_PROGRESS event (`coalesce_progress`). Executions are locked in id order, so two batches
//! cannot deadlock.

use std::collections::BTreeMap;

use super::Store;
use super::snapshots::{Snapshot, lock_snapshots, settled};
use super::writes::{actions_audit_row, save_all, write_audit};
use crate::auth::Principal;
use crate::domain::change::{Change, coalesce_progress};
use crate::domain::records::Execution;
use crate::error::{AppError, AppResult};

/// A rule as `Store::apply` takes it, boxed so that rules from many callers batch.
pub type Rule = Box<dyn FnOnce(&Snapshot) -> AppResult<Change> + Send>;

/// One rule of a batch: what it is (for the audit log) and the execution it changes.
pub struct BatchedRule {
    pub action: &'static str,
    pub execution_id: String,
    pub rule: Rule,
}

impl Store {
    /// Applies each rule as `apply` would, all in one transaction. `Err` is a failed
    /// transaction (nothing was saved); otherwise each rule's own result, in order.
    pub async fn apply_batch(
        &self,
        principal: &Principal,
        rules: Vec<BatchedRule>,
    ) -> AppResult<Vec<AppResult<Change>>> {
        let mut results: Vec<Option<AppResult<Change>>> = rules.iter().map(|_| None).collect();
        let mut by_execution: BTreeMap<String, Vec<(usize, &'static str, Rule)>> = BTreeMap::new();
        for (index, batched) in rules.into_iter().enumerate() {
            by_execution.entry(batched.execution_id).or_default().push((
                index,
                batched.action,
                batched.rule,
            ));
        }
        let (_turn, txn) = self.begin_write().await?;
        let ids: Vec<&str> = by_execution.keys().map(String::as_str).collect();
        let mut snapshots = lock_snapshots(&txn, principal, &ids, false).await?;
        let mut audits = Vec::new();
        let mut saves = Vec::new();
        for (execution_id, rules) in by_execution {
            let Some(snapshot) = snapshots.get_mut(&execution_id) else {
                let missing = AppError::not_found(format!("execution `{execution_id}`"));
                for (index, _, _) in rules {
                    results[index] = Some(Err(missing.clone()));
                }
                continue;
            };
            let before = snapshot.execution.clone();
            let mut applied = Vec::new();
            for (index, action, rule) in rules {
                match settled(snapshot, rule) {
                    Ok(change) => {
                        snapshot.advance(&change);
                        applied.push((index, action, change));
                    }
                    Err(error) => results[index] = Some(Err(error)),
                }
            }
            let mut changes: Vec<&mut Change> = applied.iter_mut().map(|(_, _, c)| c).collect();
            coalesce_progress(&mut changes, before.last_sequence);
            let actions: Vec<&str> = applied.iter().map(|(_, action, _)| *action).collect();
            let merged =
                applied
                    .iter()
                    .map(|(_, _, change)| change.clone())
                    .reduce(|mut merged, later| {
                        merged.absorb(later);
                        merged
                    });
            if let Some(merged) = merged {
                audits.push(actions_audit_row(principal, &actions, &merged));
                saves.push((before, merged));
            }
            for (index, _, change) in applied {
                results[index] = Some(Ok(change));
            }
        }
        let saves: Vec<(&Execution, &Change)> = saves.iter().map(|(b, c)| (b, c)).collect();
        save_all(&txn, &saves).await?;
        write_audit(&txn, audits).await?;
        txn.commit().await?;
        Ok(results
            .into_iter()
            .map(|result| result.expect("every rule ran"))
            .collect())
    }
}
