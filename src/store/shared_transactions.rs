//! Group commit: many rules, over one or many executions, applied and saved in one
//! transaction, so that a burst of scheduler changes (steps starting, steps
//! finishing) costs one commit instead of one each. The rules of one execution run
//! in order, each on the state the previous one left, and are saved as one write
//! with one EXECUTION_PROGRESS event (`coalesce_progress`); the scheduler's
//! changes among them share one audit row, a client's command has its own.
//! Executions are locked in id order, so two batches cannot deadlock. A shared
//! transaction that fails is tried again one execution at a time, so that one
//! write the database refuses fails only the rules that made it.

use std::collections::BTreeMap;

use sea_orm::DatabaseTransaction;

use super::Store;
use super::entities::audit;
use super::limit_usage::read_usage;
use super::snapshots::lock_snapshots;
use super::writes::{actions_audit_row, save_all, write_audit};
use crate::auth::Principal;
use crate::domain::change::{Change, audit_runs, coalesce_progress};
use crate::domain::limits::Usage;
use crate::domain::records::Execution;
use crate::domain::snapshot::Snapshot;
use crate::error::{AppError, AppResult};

/// A rule as `Store::apply` takes it, boxed so that rules from many callers batch.
/// Its change is saved as it is: the service settles it first.
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

/// One execution's part of a batch: the state its rules started from, their
/// change merged into one write, their audit rows, and which rules they were.
struct Planned {
    before: Execution,
    merged: Change,
    audits: Vec<audit::ActiveModel>,
    applied: Vec<(usize, Change)>,
}

impl Store {
    /// Applies each rule as `apply` would (as its own principal), all in one
    /// transaction, and answers each rule's own result, in order. When the shared
    /// transaction fails, each execution's write is tried again alone, so that one
    /// write the database refuses fails only its own rules.
    pub(crate) async fn apply_batch(&self, rules: Vec<BatchedRule>) -> Vec<AppResult<Change>> {
        let mut results: Vec<Option<AppResult<Change>>> = rules.iter().map(|_| None).collect();
        let mut by_execution: BTreeMap<String, Vec<(usize, BatchedRule)>> = BTreeMap::new();
        for (index, batched) in rules.into_iter().enumerate() {
            let rules = by_execution.entry(batched.execution_id.clone());
            rules.or_default().push((index, batched));
        }
        let everyone: Vec<usize> = by_execution.values().flatten().map(|(i, _)| *i).collect();
        let (turn, txn) = match self.begin_shared_write().await {
            Ok(begun) => begun,
            Err(error) => return everyone.iter().map(|_| Err(error.clone())).collect(),
        };
        let ids: Vec<&str> = by_execution.keys().map(String::as_str).collect();
        let locked = match lock_snapshots(&txn, &Principal::scheduler(), &ids, false).await {
            Ok(snapshots) => read_usage(&txn, self.limits(), &snapshots)
                .await
                .map(|usage| (snapshots, usage)),
            Err(error) => Err(error),
        };
        let planned = match locked {
            Ok((mut snapshots, usage)) => plan(&mut snapshots, usage, by_execution, &mut results),
            Err(error) => {
                let error = self.recorded::<()>(Err(error)).unwrap_err();
                return everyone.iter().map(|_| Err(error.clone())).collect();
            }
        };
        let saved = self.recorded(save_and_commit(txn, &planned).await);
        drop(turn);
        match saved {
            Ok(()) => {
                for planned in planned {
                    settle_results(&mut results, planned.applied, Ok(()));
                }
            }
            // A full disk refuses every write alike: trying them one by one would
            // only queue more failures behind the write lock.
            Err(error) if planned.len() > 1 && error != AppError::Unavailable => {
                tracing::warn!(
                    ?error,
                    "a shared transaction failed: its writes go one by one"
                );
                for planned in planned {
                    let alone = self.recorded(self.save_alone(&planned).await);
                    settle_results(&mut results, planned.applied, alone);
                }
            }
            Err(error) => {
                for planned in planned {
                    settle_results(&mut results, planned.applied, Err(error.clone()));
                }
            }
        }
        results
            .into_iter()
            .map(|result| result.expect("every rule has a result"))
            .collect()
    }

    /// One execution's write in a transaction of its own, if the execution is still
    /// as its rules saw it (`CONFLICT` otherwise).
    async fn save_alone(&self, planned: &Planned) -> AppResult<()> {
        let (_turn, txn) = self.begin_shared_write().await?;
        let id = planned.before.id.as_str();
        let snapshots = lock_snapshots(&txn, &Principal::scheduler(), &[id], false).await?;
        if snapshots.get(id).map(|s| &s.execution) != Some(&planned.before) {
            return Err(AppError::Conflict(format!(
                "execution `{id}` changed meanwhile"
            )));
        }
        save_and_commit(txn, std::slice::from_ref(planned)).await
    }
}

/// Runs each execution's rules on its snapshot; rules that could not run get their
/// error in `results`.
fn plan(
    snapshots: &mut BTreeMap<String, Snapshot>,
    mut usage: Usage,
    by_execution: BTreeMap<String, Vec<(usize, BatchedRule)>>,
    results: &mut [Option<AppResult<Change>>],
) -> Vec<Planned> {
    let mut planned = Vec::new();
    for (execution_id, rules) in by_execution {
        let Some(snapshot) = snapshots.get_mut(&execution_id) else {
            for (index, _) in rules {
                results[index] = Some(Err(AppError::no_execution(&execution_id)));
            }
            continue;
        };
        let before = snapshot.execution.clone();
        // What the keys hold passes from one execution's rules to the next.
        snapshot.usage = std::mem::take(&mut usage);
        let applied = run_rules(snapshot, rules, results);
        usage = std::mem::take(&mut snapshot.usage);
        let audits = audit_rows(&applied);
        let changes = applied.iter().map(|a| a.change.clone());
        if let Some(merged) = changes.reduce(|mut merged, later| {
            merged.absorb(later);
            merged
        }) {
            let applied = applied.into_iter().map(|a| (a.index, a.change)).collect();
            planned.push(Planned {
                before,
                merged,
                audits,
                applied,
            });
        }
    }
    planned
}

/// Writes the planned changes with their audit rows and commits.
async fn save_and_commit(txn: DatabaseTransaction, planned: &[Planned]) -> AppResult<()> {
    let saves: Vec<(&Execution, &Change)> =
        planned.iter().map(|p| (&p.before, &p.merged)).collect();
    save_all(&txn, &saves).await?;
    write_audit(
        &txn,
        planned.iter().flat_map(|p| p.audits.clone()).collect(),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Each applied rule's result: its change once its write committed, or the error.
fn settle_results(
    results: &mut [Option<AppResult<Change>>],
    applied: Vec<(usize, Change)>,
    saved: AppResult<()>,
) {
    for (index, change) in applied {
        results[index] = Some(saved.clone().map(|()| change));
    }
}

/// Runs one execution's rules in order, each on the state the one before left. Returns those
/// that applied, their progress coalesced; the others' errors go to `results`.
fn run_rules(
    snapshot: &mut Snapshot,
    rules: Vec<(usize, BatchedRule)>,
    results: &mut [Option<AppResult<Change>>],
) -> Vec<Applied> {
    let last_sequence = snapshot.execution.last_sequence;
    let mut applied = Vec::new();
    for (index, batched) in rules {
        match (batched.rule)(snapshot) {
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

/// The audit rows of one execution's rules that applied (`audit_runs`).
fn audit_rows(applied: &[Applied]) -> Vec<audit::ActiveModel> {
    let scheduler = Principal::scheduler();
    (audit_runs(applied, |a| a.principal == scheduler))
        .map(|run| {
            let actions: Vec<&str> = run.iter().map(|a| a.action).collect();
            let changes: Vec<&Change> = run.iter().map(|a| &a.change).collect();
            actions_audit_row(&run[0].principal, &actions, &changes)
        })
        .collect()
}
