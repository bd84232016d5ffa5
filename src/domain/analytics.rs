//! Analytics over execution history: the dimensions and buckets a client may group
//! by, and the shapes of the answers. `store::analytics` computes them in SQL.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};

use super::status::ExecutionStatus;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum StatsDimension {
    Status,
    Service,
    Priority,
    AssigneeType,
    AssigneeId,
    AssigneeModel,
    ErrorCode,
    Tag,
    Environment,
    Customer,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TimeBucket {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct StatsKey {
    pub dimension: StatsDimension,
    pub value: Option<String>,
}

#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct DurationStats {
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub min_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct StatusCount {
    pub status: ExecutionStatus,
    pub count: i64,
}

#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct ExecutionStats {
    /// One per groupBy dimension, in order.
    pub keys: Vec<StatsKey>,
    /// Set when a bucket was asked for.
    pub bucket_start: Option<DateTime<Utc>>,
    pub total: i64,
    pub by_status: Vec<StatusCount>,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Queued, starting, running, paused, retry.
    pub active: i64,
    /// completed / (completed + failed + cancelled); null when none finished.
    pub success_rate: Option<f64>,
    pub duration: DurationStats,
    pub total_cost: f64,
    pub avg_cost: Option<f64>,
    pub total_tokens: i64,
    pub total_api_calls: i64,
    pub total_retries: i64,
}

#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct ErrorCount {
    pub code: String,
    pub count: i64,
    pub recoverable: i64,
    pub last_seen_at: DateTime<Utc>,
    pub sample_message: String,
}

#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct StepStats {
    pub step_name: String,
    pub total: i64,
    pub failed: i64,
    pub avg_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<f64>,
}

/// Linear interpolation between the two ranks around percentile `percent` of `n`
/// sorted values (Postgres' `percentile_cont`): `lower` is the value at 0-based rank
/// ⌊(n−1)·p⌋, `upper` the next one.
pub fn interpolate(n: i64, percent: i64, lower: Option<i64>, upper: Option<i64>) -> Option<f64> {
    let lower = lower? as f64;
    let fraction = ((n - 1) * percent % 100) as f64 / 100.0;
    Some(match upper {
        Some(upper) if fraction > 0.0 => lower + (upper as f64 - lower) * fraction,
        _ => lower,
    })
}

/// Success rate, when anything finished.
pub fn success_rate(completed: i64, failed: i64, cancelled: i64) -> Option<f64> {
    let finished = completed + failed + cancelled;
    (finished > 0).then(|| completed as f64 / finished as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Postgres: percentile_cont(0.9) over 1..=10 = 9.1; 0.5 = 5.5.
    #[test]
    fn interpolation_matches_percentile_cont() {
        let values: Vec<i64> = (1..=10).collect();
        let at = |p: i64| {
            let rank = ((values.len() as i64 - 1) * p / 100) as usize;
            interpolate(
                10,
                p,
                values.get(rank).copied(),
                values.get(rank + 1).copied(),
            )
        };
        assert_eq!(at(50), Some(5.5));
        assert!((at(90).unwrap() - 9.1).abs() < 1e-9);
        assert_eq!(interpolate(1, 99, Some(7), None), Some(7.0));
        assert_eq!(interpolate(0, 50, None, None), None);
    }
}
