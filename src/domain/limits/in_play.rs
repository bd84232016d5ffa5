//! Which keys a transaction must read (and lock) before its rules run: those a
//! change to these executions may move.

use std::collections::BTreeSet;

use super::tenant_budget::budget_keys;
use super::wait::WaitKind;
use super::{Usage, execution_keys, limit_for};
use crate::domain::snapshot::Snapshot;
use crate::domain::status::ExecutionStatus;

/// The keys of these snapshots in play: of the unfinished steps with a limit (they
/// may start, a failed one when retried, or pause their rate keys on a Retry-After),
/// their shares' keys, and of a QUEUED execution (it may start); what steps and
/// executions hold (they may give it back); and the keys with a budget (what is
/// spent counts against them).
pub fn keys_in_play<'a>(
    usage: &Usage,
    snapshots: impl Iterator<Item = &'a Snapshot>,
) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for snapshot in snapshots {
        let execution = &snapshot.execution;
        keys.extend(execution.holds.iter().cloned());
        keys.extend(
            budget_keys(usage, execution)
                .into_iter()
                .map(|(key, _)| key),
        );
        if execution.status == ExecutionStatus::Queued {
            let limited = execution_keys(execution).into_iter();
            keys.extend(limited.filter(|key| limit_for(&usage.limits, key).is_some()));
        }
        for step in snapshot.steps.iter().filter(|s| !s.status.is_done()) {
            for (key, limit) in usage.limited_keys(execution, step) {
                if limit.share.is_some() {
                    keys.insert(WaitKind::Share.on(&key));
                }
                keys.insert(key);
            }
            keys.extend(step.schedule.holds.iter().cloned());
        }
    }
    keys
}
