//! Fair share between the keys of a limit with `share` (e.g. every customer): at
//! most `share` steps of one key are handed to workers at once, queued or running.
//! A step handed out beyond that waits in the database (`waitingOn: "share <key>"`)
//! instead of joining the queue, and when a step of the key finishes (or is taken
//! back) the most deserving waiter of that key is handed out. The queue then holds
//! at most `share` steps of any one key, so one key's backlog of thousands delays
//! another key's single step by at most about `share` starts; a larger `share` on
//! one key (`customer:big`) is its weight.

use std::collections::BTreeMap;

use super::wait::{self, WaitKind};
use super::{Usage, has_room, limit_for};
use crate::domain::change::Change;
use crate::domain::records::{Execution, Step, Timestamp};
use crate::domain::schedule::hands_out;
use crate::domain::status::StepStatus;
use crate::error::AppResult;

/// The keys of `step` whose limit has a share, with it.
fn shared_keys(usage: &Usage, execution: &Execution, step: &Step) -> Vec<(String, u32)> {
    let keys = super::keys_of(execution, step).into_iter();
    keys.filter_map(|key| {
        let share = limit_for(&usage.limits, &key)?.share?;
        Some((key, share))
    })
    .collect()
}

/// Whether `step` may be handed out now: the share of each of its keys not taken
/// (counting `taken`, the shares this change took already, and the steps waiting
/// for one before it, unless it is the waiter woken). The holds to take, or the
/// label it waits on.
fn admit(
    usage: &Usage,
    taken: &mut BTreeMap<String, i64>,
    execution: &Execution,
    step: &Step,
) -> Result<Vec<String>, String> {
    let mut holds = Vec::new();
    for (key, share) in shared_keys(usage, execution, step) {
        // The share's count is kept under its label, which waiters wait on.
        let counted = WaitKind::Share.on(&key);
        if step.schedule.holds.contains(&counted) {
            continue;
        }
        let held = usage.keys.get(&counted).cloned().unwrap_or_default();
        let woken = step.schedule.waiting_on.as_deref() == Some(counted.as_str());
        let in_flight = held.running + taken.get(&counted).copied().unwrap_or(0);
        if !has_room(in_flight, held.waiting, woken, share) {
            return Err(counted);
        }
        holds.push(counted);
    }
    for hold in &holds {
        *taken.entry(hold.clone()).or_default() += 1;
    }
    Ok(holds)
}

/// Holds a share of each key for every step the change hands out to workers, or
/// leaves the step waiting (not queued) when its key's share is taken. Applied to
/// every change, after `schedule::settle`.
pub fn share_out(change: &mut Change, usage: &Usage) {
    if usage.is_idle() || !usage.limits.iter().any(|l| l.share.is_some()) {
        return;
    }
    let handed_out: Vec<Step> = (change.steps.iter())
        .filter(|s| hands_out(change, s))
        .cloned()
        .collect();
    let mut taken = BTreeMap::new();
    for mut step in handed_out {
        match admit(usage, &mut taken, &change.execution, &step) {
            Ok(holds) => step.schedule.holds.extend(holds),
            Err(label) => step.schedule.waiting_on = Some(label),
        }
        change.put_step(step);
    }
}

/// Hands out a step that waited for a share, if its keys' shares allow now (the
/// change is empty otherwise).
pub fn hand_out_waiting(
    execution: &Execution,
    steps: &[Step],
    usage: &Usage,
    step_id: &str,
    actor: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let mut change = Change::new(execution, actor, now);
    let Some(step) = steps.iter().find(|s| s.id == step_id) else {
        return Ok(change);
    };
    let waits_for_share = step.status == StepStatus::Pending
        && (step.schedule.waiting_on.as_deref()).is_some_and(|on| wait::is(WaitKind::Share, on));
    if !waits_for_share {
        return Ok(change);
    }
    if let Ok(holds) = admit(usage, &mut BTreeMap::new(), execution, step) {
        let mut step = step.clone();
        step.schedule.holds.extend(holds);
        step.schedule.waiting_on = None;
        step.schedule.ready_at = Some(now);
        change.put_step(step);
    }
    Ok(change)
}
