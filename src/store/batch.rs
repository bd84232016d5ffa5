//! Group commit: many rules, over one or many executions, applied and saved in one
//! transaction, so that a burst of scheduler changes (steps starting, steps
//! finishing) costs one commit instead of one each. The rules of one execution run
//! in order, each on the state the previous one left, and are saved as one write
//! with one EXECUTION_PROGRESS event (`coalesce_progress`); the scheduler's
//! changes among them share one audit row, a client's command has its own.
//! Executions are locked in id order, so two batches cannot deadlock.

use std::collections::BTreeMap;

use super::Store;
use super::entities::audit;
use super::snapshots::{Snapshot, lock_snapshots, settled};
use super::writes::{actions_audit_row, save_all, write_audit};
use crate::auth::Principal;
use crate::domain::change::{Change, coalesce_progress};
use crate::domain::records::Execution;
use crate::error::{AppError, AppResult};

/// A rule as `Store::apply` takes it, boxed so that rules from many callers batch.
pub type Rule = Box<dyn FnOnce(&Snapshot) -> AppResult<Change> + Send>;

/// A rule that applied: its place in the batch, who applied it, what it is, its change.
struct Applied {
    index: usize,
    principal: Principal,
    action: &'static str,
    change: Change,
}

/// One rule of a batch: who applies it and what it is (for the audit log), and the
/// execution it changes.
pub struct BatchedRule {
    pub principal: Principal,
    pub action: &'static str,
    pub execution_id: String,
    pub rule: Rule,
}

impl Store {
    /// Applies each rule as `apply` would (as its own principal), all in one
    /// transaction. `Err` is a failed transaction (nothing was saved); otherwise each
    /// rule's own result, in order.
    pub async fn apply_batch(&self, rules: Vec<BatchedRule>) -> AppResult<Vec<AppResult<Change>>> {
        let mut results: Vec<Option<AppResult<Change>>> = rules.iter().map(|_| None).collect();
        let mut by_execution: BTreeMap<String, Vec<(usize, BatchedRule)>> = BTreeMap::new();
        for (index, batched) in rules.into_iter().enumerate() {
            let rules = by_execution.entry(batched.execution_id.clone());
            rules.or_default().push((index, batched));
        }
        let (_turn, txn) = self.begin_write().await?;
        let ids: Vec<&str> = by_execution.keys().map(String::as_str).collect();
        let mut snapshots = lock_snapshots(&txn, &Principal::scheduler(), &ids, false).await?;
        let mut audits = Vec::new();
        let mut saves = Vec::new();
        for (execution_id, rules) in by_execution {
            let Some(snapshot) = snapshots.get_mut(&execution_id) else {
                for (index, _) in rules {
                    results[index] = Some(Err(AppError::no_execution(&execution_id)));
                }
                continue;
            };
            let before = snapshot.execution.clone();
            let applied = run_rules(snapshot, rules, &mut results);
            audits.extend(audit_rows(&applied));
            let changes = applied.iter().map(|a| a.change.clone());
            if let Some(merged) = changes.reduce(|mut merged, later| {
                merged.absorb(later);
                merged
            }) {
                saves.push((before, merged));
            }
            for Applied { index, change, .. } in applied {
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

/// Runs one execution's rules in order, each on the state the one before left and as
/// its principal (`NOT_FOUND` for one that may not see the execution). Returns those
/// that applied, their progress coalesced; the others' errors go to `results`.
fn run_rules(
    snapshot: &mut Snapshot,
    rules: Vec<(usize, BatchedRule)>,
    results: &mut [Option<AppResult<Change>>],
) -> Vec<Applied> {
    let last_sequence = snapshot.execution.last_sequence;
    let mut applied = Vec::new();
    for (index, batched) in rules {
        let execution = &snapshot.execution;
        let owners = (
            execution.customer_id.as_deref(),
            execution.provider_id.as_deref(),
        );
        if !batched.principal.sees(owners.0, owners.1) {
            results[index] = Some(Err(AppError::no_execution(&execution.id)));
            continue;
        }
        match settled(snapshot, batched.rule) {
            Ok(change) => {
                snapshot.advance(&change);
                applied.push(Applied {
                    index,
                    principal: batched.principal,
                    action: batched.action,
                    change,
                });
            }
            Err(error) => results[index] = Some(Err(error)),
        }
    }
    let mut changes: Vec<&mut Change> = applied.iter_mut().map(|a| &mut a.change).collect();
    coalesce_progress(&mut changes, last_sequence);
    applied
}

/// The audit rows of one execution's rules that applied: the scheduler's consecutive
/// changes share a row; a client's command has a row of its own.
fn audit_rows(applied: &[Applied]) -> Vec<audit::ActiveModel> {
    let scheduler = Principal::scheduler();
    let folded = |a: &Applied, b: &Applied| a.principal == scheduler && b.principal == scheduler;
    (applied.chunk_by(folded))
        .map(|run| {
            let actions: Vec<&str> = run.iter().map(|a| a.action).collect();
            let changes: Vec<&Change> = run.iter().map(|a| &a.change).collect();
            actions_audit_row(&run[0].principal, &actions, &changes)
        })
        .collect()
}
