//! Analytics over execution history: the dimensions and buckets a client may group
//! by, and the shapes of the answers. `store::analytics` computes them in SQL.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};

use super::status::ExecutionStatus;
use super::validate;
use crate::error::AppResult;

/// Groups one analytics query answers at most.
pub const MAX_GROUPS: i32 = 1000;

/// `limit` of an analytics query: 1 ..= `MAX_GROUPS`, `default` when absent.
pub fn limit(value: Option<i32>, default: i32) -> AppResult<u64> {
    validate::limit("limit", value, default, 1, MAX_GROUPS)
}

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

/// The parts of `ExecutionStats` a query selected. Each aggregate costs time over
/// millions of executions, so the statistics compute only these; the others come back
/// as zero or null, unread. The total and the completed, failed and cancelled counts
/// (`active` and `successRate` derive from them) are always computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measures {
    /// `byStatus`: a count for every status.
    pub by_status: bool,
    /// `totalCost`, `avgCost`.
    pub cost: bool,
    pub tokens: bool,
    pub api_calls: bool,
    pub retries: bool,
    /// `duration { avgMs minMs maxMs }`.
    pub durations: bool,
    /// `duration { p50Ms p90Ms p95Ms p99Ms }`: one sort serves the four.
    pub percentiles: bool,
}

/// A sum as a GraphQL `Int` (32 bits): saturated, never wrapped or out of range.
pub fn saturated_int(sum: i64) -> i64 {
    sum.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

/// Success rate, when anything finished.
pub fn success_rate(completed: i64, failed: i64, cancelled: i64) -> Option<f64> {
    let finished = completed + failed + cancelled;
    (finished > 0).then(|| completed as f64 / finished as f64)
}
