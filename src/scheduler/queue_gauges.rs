//! The autoscaling signal: every maintenance tick, Prometheus gauges of the work
//! waiting per priority level (built-in steps handed out and not started, and how
//! long the oldest has waited) and per limited key (steps running and waiting, and
//! the oldest wait). A key no longer busy is reported once more, at zero, and then
//! left out, so that many customers' keys do not pile up.

use std::collections::HashSet;

use chrono::Utc;

use crate::domain::records::Timestamp;
use crate::error::AppResult;
use crate::store::Store;

/// The keys reported busy at the last tick.
#[derive(Default)]
pub(super) struct QueueGauges {
    busy: HashSet<String>,
}

/// The gauges' help lines (the recorder keeps the first description of each).
fn describe() {
    let gauges = [
        (
            "exechub_queue_depth",
            "built-in steps handed out and not started, per priority level",
        ),
        (
            "exechub_queue_oldest_wait_seconds",
            "how long the oldest of them has waited",
        ),
        (
            "exechub_limit_running",
            "steps and executions holding a limited key's slots",
        ),
        (
            "exechub_limit_waiting",
            "steps and executions waiting on a limited key",
        ),
        (
            "exechub_limit_oldest_wait_seconds",
            "how long the oldest wait on a key lasts",
        ),
    ];
    for (name, help) in gauges {
        metrics::describe_gauge!(name, help);
    }
}

fn age_seconds(since: Option<Timestamp>) -> f64 {
    since.map_or(0.0, |since| {
        ((Utc::now() - since).num_milliseconds().max(0) as f64) / 1e3
    })
}

impl QueueGauges {
    pub(super) async fn record(&mut self, store: &Store) -> AppResult<()> {
        describe();
        let depths = store.queue_depths().await?;
        for priority in crate::domain::values::Priority::ALL {
            let level = priority.as_str();
            let found = depths.iter().find(|(p, ..)| p == priority);
            let (depth, oldest) = found.map_or((0, None), |(_, depth, oldest)| (*depth, *oldest));
            metrics::gauge!("exechub_queue_depth", "priority" => level).set(depth as f64);
            metrics::gauge!("exechub_queue_oldest_wait_seconds", "priority" => level)
                .set(age_seconds(oldest));
        }
        let mut busy = HashSet::new();
        for state in store.key_states().await? {
            let usage = &state.usage;
            let waiting = state.waiting_steps + usage.executions_waiting;
            let running = usage.running + usage.executions;
            if waiting == 0 && running == 0 && !self.busy.contains(&state.key) {
                continue;
            }
            let key = state.key.clone();
            metrics::gauge!("exechub_limit_running", "key" => key.clone()).set(running as f64);
            metrics::gauge!("exechub_limit_waiting", "key" => key.clone()).set(waiting as f64);
            metrics::gauge!("exechub_limit_oldest_wait_seconds", "key" => key.clone())
                .set(age_seconds(state.oldest_waiting_since));
            if waiting > 0 || running > 0 {
                busy.insert(key);
            }
        }
        self.busy = busy;
        Ok(())
    }
}
