//! The aging rule: a job or an offer that has waited counts as more urgent, so that
//! a steady stream of urgent work never starves the rest. The priority gate orders
//! its waiting jobs by it, and claimers their offers.

use std::time::Duration;

use super::records::Timestamp;
use super::values::Priority;

/// The level a job or offer counts as: its priority, raised one level per `aging`
/// it has waited since `ready_at`, at most URGENT.
pub fn aged_level(priority: Priority, ready_at: Timestamp, now: Timestamp, aging: Duration) -> i16 {
    let waited = (now - ready_at).num_milliseconds().max(0) as u128;
    let raised = (waited / aging.as_millis().max(1)).min(3) as i16;
    (priority.rank() + raised).min(Priority::Urgent.rank())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, Utc};

    #[test]
    fn waiting_raises_the_level_one_step_per_interval() {
        let now = Utc::now();
        let aging = Duration::from_secs(30);
        let level =
            |waited: i64| aged_level(Priority::Low, now - TimeDelta::seconds(waited), now, aging);
        assert_eq!(
            [level(0), level(29), level(30), level(65), level(1000)],
            [0, 0, 1, 2, 3]
        );
    }
}
