//! When a schedule fires and what a fire does. A fire is two writes: the claim
//! (`fire`: the instant is taken as `pending_fire`, the next one set, what was
//! missed or skipped counted), fenced by the schedule's version so that one process
//! of many makes it; then the execution, created under a key of that instant, and
//! the claim settled (`fired`). A process that dies between the two leaves the
//! claim pending, and the next firing of any process creates the execution under
//! the same key: each instant creates one execution, never two.

use super::{Cadence, Overlap, Schedule};
use crate::domain::records::Timestamp;

/// Instants a late schedule counts as missed at most in one firing; a schedule
/// idle for longer is counted up to this.
const COUNTED_AT_MOST: i64 = 10_000;

/// A claim: the schedule as it becomes, and the execution to cancel first
/// (`CANCEL_PREVIOUS`).
#[derive(Debug, PartialEq)]
pub struct Fire {
    pub schedule: Schedule,
    pub cancel: Option<String>,
}

/// What the schedule does at `now`, when its last execution `still_runs`: nothing
/// (`None`) unless an instant is due, or an instant held back may go now. Of the
/// instants due, only the latest fires, and only if it is within the catch-up
/// window; the others are counted as skipped.
pub fn fire(
    schedule: &Schedule,
    cadence: &Cadence,
    still_runs: bool,
    now: Timestamp,
) -> Option<Fire> {
    if schedule.paused || schedule.pending_fire.is_some() {
        return None;
    }
    let mut next = schedule.clone();
    let mut running = still_runs;
    let mut cancel = None;
    let mut changed = false;
    if let (Some(held), false) = (schedule.buffered_fire, still_runs) {
        next.pending_fire = Some(held);
        next.buffered_fire = None;
        running = true;
        changed = true;
    }
    if let Some(first) = schedule.next_fire_at.filter(|at| *at <= now) {
        let (latest, due) = latest_due(cadence, first, now);
        let on_time = (now - latest).num_milliseconds() <= schedule.catch_up_window_ms;
        next.skipped += due - i64::from(on_time);
        if on_time {
            match (running, schedule.overlap) {
                (false, _) | (true, Overlap::Allow) if next.pending_fire.is_none() => {
                    next.pending_fire = Some(latest)
                }
                (true, Overlap::BufferOne) if next.buffered_fire.is_none() => {
                    next.buffered_fire = Some(latest)
                }
                (true, Overlap::CancelPrevious) if next.pending_fire.is_none() => {
                    cancel = schedule.last_execution_id.clone();
                    next.pending_fire = Some(latest);
                }
                _ => next.skipped += 1,
            }
        }
        next.next_fire_at = cadence.next_after(now.max(latest));
        changed = true;
    }
    changed.then(|| {
        next.version += 1;
        next.updated_at = now;
        Fire {
            schedule: next,
            cancel,
        }
    })
}

/// The latest instant due at `now`, from `first`, and how many were due.
fn latest_due(cadence: &Cadence, first: Timestamp, now: Timestamp) -> (Timestamp, i64) {
    let (mut latest, mut due) = (first, 1);
    while due < COUNTED_AT_MOST {
        match cadence.next_after(latest) {
            Some(at) if at <= now => (latest, due) = (at, due + 1),
            _ => break,
        }
    }
    (latest, due)
}

/// The claim of `at` settled: its execution `execution_id` created.
pub fn fired(schedule: &Schedule, at: Timestamp, execution_id: &str, now: Timestamp) -> Schedule {
    Schedule {
        pending_fire: None,
        last_fire_at: Some(at),
        last_execution_id: Some(execution_id.to_owned()),
        fires: schedule.fires + 1,
        version: schedule.version + 1,
        updated_at: now,
        ..schedule.clone()
    }
}

/// The claim dropped: its execution could not be made (its template no longer
/// passes, e.g. a step kind no worker runs any more); counted as skipped.
pub fn dropped(schedule: &Schedule, now: Timestamp) -> Schedule {
    Schedule {
        pending_fire: None,
        skipped: schedule.skipped + 1,
        version: schedule.version + 1,
        updated_at: now,
        ..schedule.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ScheduleInput, define};
    use super::*;
    use crate::domain::testing::input;
    use chrono::{DateTime, TimeDelta, Utc};
    use serde_json::json;

    fn at(text: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A schedule with a catch-up window of 40 s.
    fn schedule(cron: &str, timezone: &str, overlap: &str, now: Timestamp) -> Schedule {
        let template = json!({ "orderId": "o", "serviceId": "s" });
        let input: ScheduleInput = input(json!({ "cron": cron, "timezone": timezone,
            "overlap": overlap, "catchUpWindowMs": 40_000, "template": template }));
        define(input, template, None, None, "t", now).expect("defined")
    }

    #[test]
    fn a_daily_time_in_a_spring_forward_gap_fires_once_that_day() {
        let cadence = Cadence::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fires = cadence.upcoming(at("2027-03-27T00:00:00Z"), 3);
        // 02:30 CET; on the 28th 02:30 does not exist: the first instant after
        // the gap, 03:00 CEST; then 02:30 CEST.
        let expected = [
            "2027-03-27T01:30:00Z",
            "2027-03-28T01:00:00Z",
            "2027-03-29T00:30:00Z",
        ];
        assert_eq!(fires, expected.map(at));
    }

    #[test]
    fn a_daily_time_in_a_fall_back_overlap_fires_once_that_day() {
        let cadence = Cadence::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fires = cadence.upcoming(at("2027-10-30T12:00:00Z"), 2);
        let expected = ["2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"];
        assert_eq!(fires, expected.map(at));
    }

    #[test]
    fn bad_expressions_and_zones_name_their_field() {
        for (cron, zone, field) in [
            ("not cron", "UTC", "input.cron"),
            ("0 0 30 2 *", "UTC", "input.cron"),
            ("0 9 * * MON-FRI", "Mars/Olympus", "input.timezone"),
        ] {
            let refused = Cadence::parse(cron, zone).map(|_| ());
            assert!(
                matches!(&refused, Err(crate::error::AppError::BadInput { field: f, .. }) if f == field),
                "{cron} {zone}: {refused:?}"
            );
        }
    }

    #[test]
    fn only_the_latest_instant_within_the_window_fires_and_the_rest_are_counted() {
        let t0 = at("2027-01-01T00:00:00Z");
        let s = schedule("* * * * *", "UTC", "SKIP", t0);
        let cadence = Cadence::of(&s).unwrap();
        assert_eq!(s.next_fire_at, Some(at("2027-01-01T00:01:00Z")));
        assert!(fire(&s, &cadence, false, t0 + TimeDelta::seconds(59)).is_none());
        // Down for ten minutes, back 30 s after the tenth instant: it fires once.
        let back = at("2027-01-01T00:10:30Z");
        let claim = fire(&s, &cadence, false, back).expect("due").schedule;
        assert_eq!(claim.pending_fire, Some(at("2027-01-01T00:10:00Z")));
        assert_eq!(claim.skipped, 9);
        assert_eq!(claim.next_fire_at, Some(at("2027-01-01T00:11:00Z")));
        assert_eq!(claim.version, s.version + 1);
        assert!(
            fire(&claim, &cadence, false, back).is_none(),
            "pending first"
        );
        let settled = fired(&claim, at("2027-01-01T00:10:00Z"), "e1", back);
        assert_eq!((settled.fires, settled.pending_fire), (1, None));
        // Back after the window: nothing fires, every instant is counted.
        let late = fire(&settled, &cadence, false, at("2027-01-01T00:15:45Z")).unwrap();
        assert_eq!(late.schedule.pending_fire, None);
        assert_eq!(late.schedule.skipped, 9 + 5);
    }

    #[test]
    fn overlap_policies_while_the_last_execution_runs() {
        let t0 = at("2027-01-01T00:00:00Z");
        let due = at("2027-01-01T00:01:00Z");
        for (overlap, pending, buffered, cancel, skipped) in [
            ("SKIP", None, None, None, 1),
            ("ALLOW", Some(due), None, None, 0),
            ("BUFFER_ONE", None, Some(due), None, 0),
            ("CANCEL_PREVIOUS", Some(due), None, Some("e0".to_owned()), 0),
        ] {
            let mut s = schedule("* * * * *", "UTC", overlap, t0);
            s.last_execution_id = Some("e0".into());
            let cadence = Cadence::of(&s).unwrap();
            let claim = fire(&s, &cadence, true, due).expect(overlap);
            assert_eq!(claim.schedule.pending_fire, pending, "{overlap}");
            assert_eq!(claim.schedule.buffered_fire, buffered, "{overlap}");
            assert_eq!(claim.cancel, cancel, "{overlap}");
            assert_eq!(claim.schedule.skipped, skipped, "{overlap}");
        }
    }

    #[test]
    fn a_buffered_instant_fires_once_the_last_execution_settles() {
        let t0 = at("2027-01-01T00:00:00Z");
        let s = schedule("* * * * *", "UTC", "BUFFER_ONE", t0);
        let cadence = Cadence::of(&s).unwrap();
        let first = at("2027-01-01T00:01:00Z");
        let held = fire(&s, &cadence, true, first).unwrap().schedule;
        // A second instant while it still runs is skipped: one is held at most.
        let second = at("2027-01-01T00:02:00Z");
        let still = fire(&held, &cadence, true, second).unwrap().schedule;
        assert_eq!((still.buffered_fire, still.skipped), (Some(first), 1));
        let settled = second + TimeDelta::seconds(5);
        let goes = fire(&still, &cadence, false, settled).unwrap().schedule;
        assert_eq!((goes.pending_fire, goes.buffered_fire), (Some(first), None));
    }
}
