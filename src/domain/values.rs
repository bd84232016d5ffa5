//! The value types an execution is made of (priority, assignee, result, error, retry
//! policy, metrics …). They are plain serde data, stored as JSON columns, and they are
//! also the GraphQL output types, so the API shows exactly what is stored.

use std::collections::BTreeMap;

use async_graphql::{Enum, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

macro_rules! names {
    ($ty:ident { $($variant:ident = $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
            pub fn parse(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }
    };
}

#[derive(
    Enum, Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[graphql(name = "ExecutionPriority")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}
names!(Priority { Low = "LOW", Normal = "NORMAL", High = "HIGH", Urgent = "URGENT" });

impl Priority {
    /// The stored, sortable rank: LOW 0 … URGENT 3.
    pub fn rank(self) -> i16 {
        self as i16
    }
    pub fn from_rank(rank: i16) -> Self {
        Self::ALL[rank.clamp(0, 3) as usize]
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssigneeType {
    AiAgent,
    Human,
    Hybrid,
    System,
}
names!(AssigneeType { AiAgent = "AI_AGENT", Human = "HUMAN", Hybrid = "HYBRID", System = "SYSTEM" });

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}
names!(LogLevel { Debug = "DEBUG", Info = "INFO", Warn = "WARN", Error = "ERROR" });

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackoffStrategy {
    Linear,
    Exponential,
    Fibonacci,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    ExecutionCreated,
    ExecutionStarted,
    ExecutionProgress,
    ExecutionPaused,
    ExecutionResumed,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionCancelled,
    ExecutionRetry,
    ExecutionUpdated,
    StepStarted,
    StepCompleted,
    StepFailed,
    StepSkipped,
    LogAppended,
    CheckpointCreated,
    /// What the execution's steps recorded crossed its budget.
    BudgetExceeded,
}
names!(EventType {
    ExecutionCreated = "EXECUTION_CREATED",
    ExecutionStarted = "EXECUTION_STARTED",
    ExecutionProgress = "EXECUTION_PROGRESS",
    ExecutionPaused = "EXECUTION_PAUSED",
    ExecutionResumed = "EXECUTION_RESUMED",
    ExecutionCompleted = "EXECUTION_COMPLETED",
    ExecutionFailed = "EXECUTION_FAILED",
    ExecutionCancelled = "EXECUTION_CANCELLED",
    ExecutionRetry = "EXECUTION_RETRY",
    ExecutionUpdated = "EXECUTION_UPDATED",
    StepStarted = "STEP_STARTED",
    StepCompleted = "STEP_COMPLETED",
    StepFailed = "STEP_FAILED",
    StepSkipped = "STEP_SKIPPED",
    LogAppended = "LOG_APPENDED",
    CheckpointCreated = "CHECKPOINT_CREATED",
    BudgetExceeded = "BUDGET_EXCEEDED",
});

impl EventType {
    /// A step's event (`stepEvents`).
    pub fn is_step(self) -> bool {
        matches!(
            self,
            EventType::StepStarted
                | EventType::StepCompleted
                | EventType::StepFailed
                | EventType::StepSkipped
        )
    }

    /// A change of the execution's status or progress (`executionProgress`).
    pub fn is_progress_or_status(self) -> bool {
        matches!(
            self,
            EventType::ExecutionStarted
                | EventType::ExecutionProgress
                | EventType::ExecutionPaused
                | EventType::ExecutionResumed
                | EventType::ExecutionCompleted
                | EventType::ExecutionFailed
                | EventType::ExecutionCancelled
                | EventType::ExecutionRetry
        )
    }
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignee {
    #[graphql(name = "type")]
    pub kind: AssigneeType,
    pub id: Option<ID>,
    pub name: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
    pub capabilities: Vec<String>,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[graphql(name = "ExecutionResult")]
pub struct ExecutionResult {
    pub success: bool,
    pub output: Option<Json<Value>>,
    pub summary: String,
    pub artifacts: Vec<String>,
    pub metadata: Option<Json<Value>>,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[graphql(name = "ExecutionError")]
pub struct ExecutionError {
    pub code: String,
    pub message: String,
    pub stack: Option<String>,
    pub step: Option<ID>,
    pub recoverable: bool,
    pub retry_count: i32,
    pub context: Option<Json<Value>>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_retries: i32,
    pub backoff: BackoffStrategy,
    pub initial_delay_ms: i32,
    pub max_delay_ms: i32,
    pub jitter: bool,
    pub retryable_errors: Option<Vec<String>>,
}

/// Missing keys count as 0.
#[derive(SimpleObject, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostBreakdown {
    pub ai: f64,
    pub apis: f64,
    pub compute: f64,
    pub storage: f64,
    pub other: f64,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepHandler {
    pub kind: String,
    pub config: Option<Json<Value>>,
}

/// Everything measured about one execution. Counters are sums over step reports
/// and `recordMetrics` calls; the stored columns that filters use are derived from it.
#[derive(SimpleObject, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[graphql(name = "ExecutionMetrics")]
#[serde(default)]
pub struct Metrics {
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub tokens_used: Option<i64>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub model_calls: Option<i64>,
    pub cost: Option<f64>,
    pub cost_breakdown: Option<CostBreakdown>,
    pub api_calls: Option<i64>,
    pub api_calls_by_service: Option<Json<BTreeMap<String, i64>>>,
    pub retries: i32,
    pub retry_duration_ms: Option<i64>,
    pub steps_completed: i32,
    pub steps_total: i32,
    pub step_durations: Option<Json<BTreeMap<String, i64>>>,
    pub quality_score: Option<f64>,
    pub error_rate: Option<f64>,
    pub custom: Option<Json<Value>>,
}
