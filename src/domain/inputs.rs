//! What clients send: the contract's input objects. Each one is turned into domain
//! values by a `parse` that checks every limit and names the offending field, so a
//! value that got past here is valid and nothing downstream checks it again.

use async_graphql::{ID, InputObject, Json};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::limits::budget::BudgetInput;

use super::clock;
use super::records::{Checkpoint, LogEntry, Timestamp, new_id};
use super::validate::{self, ErrorCode};
use super::values::*;
use crate::error::AppResult;

#[derive(InputObject, Clone, Debug)]
pub struct AssigneeInput {
    #[graphql(name = "type")]
    pub kind: AssigneeType,
    pub id: Option<ID>,
    pub name: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
    pub capabilities: Option<Vec<String>>,
}

impl AssigneeInput {
    pub fn parse(self, field: &str) -> AppResult<Assignee> {
        let capabilities = self.capabilities.unwrap_or_default();
        validate::short_list(&format!("{field}.capabilities"), &capabilities)?;
        Ok(Assignee {
            kind: self.kind,
            id: validate::opt_id(&format!("{field}.id"), self.id)?,
            name: validate::opt_short(&format!("{field}.name"), self.name)?,
            model: validate::opt_short(&format!("{field}.model"), self.model)?,
            version: validate::opt_short(&format!("{field}.version"), self.version)?,
            capabilities,
        })
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct StepHandlerInput {
    #[graphql(default_with = "String::from(\"external\")")]
    pub kind: String,
    pub config: Option<Json<Value>>,
}

#[derive(InputObject, Clone, Debug)]
pub struct StepInput {
    pub id: ID,
    pub name: String,
    /// null = the previous step (sequential); [] = no dependency.
    pub depends_on: Option<Vec<ID>>,
    pub handler: Option<StepHandlerInput>,
    pub assignee: Option<AssigneeInput>,
    pub input: Option<Json<Value>>,
    pub timeout_ms: Option<i32>,
    pub metadata: Option<Json<Value>>,
    /// A key this step counts against for flow control, e.g. `openai`.
    pub concurrency_key: Option<String>,
}

#[derive(InputObject, Clone, Debug)]
pub struct RetryPolicyInput {
    pub max_retries: i32,
    #[graphql(default_with = "BackoffStrategy::Exponential")]
    pub backoff: BackoffStrategy,
    #[graphql(default = 1000)]
    pub initial_delay_ms: i32,
    #[graphql(default = 60000)]
    pub max_delay_ms: i32,
    #[graphql(default = true)]
    pub jitter: bool,
    pub retryable_errors: Option<Vec<String>>,
}

impl RetryPolicyInput {
    pub fn parse(self, field: &str) -> AppResult<RetryPolicy> {
        validate::int_range(&format!("{field}.maxRetries"), self.max_retries, 0, 100)?;
        validate::int_range(
            &format!("{field}.initialDelayMs"),
            self.initial_delay_ms,
            0,
            86_400_000,
        )?;
        validate::int_range(
            &format!("{field}.maxDelayMs"),
            self.max_delay_ms,
            self.initial_delay_ms,
            86_400_000,
        )?;
        let retryable_errors = match self.retryable_errors {
            None => None,
            Some(codes) => Some(
                codes
                    .into_iter()
                    .map(|code| {
                        ErrorCode::parse(&format!("{field}.retryableErrors"), code).map(|c| c.0)
                    })
                    .collect::<AppResult<Vec<_>>>()?,
            ),
        };
        Ok(RetryPolicy {
            max_retries: self.max_retries,
            backoff: self.backoff,
            initial_delay_ms: self.initial_delay_ms,
            max_delay_ms: self.max_delay_ms,
            jitter: self.jitter,
            retryable_errors,
        })
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct WebhookInput {
    pub url: String,
    pub events: Vec<EventType>,
    pub headers: Option<Json<Value>>,
    pub secret: Option<String>,
    #[graphql(default_with = "Some(3)")]
    pub retries: Option<i32>,
    #[graphql(default_with = "Some(5000)")]
    pub timeout_ms: Option<i32>,
}

#[derive(InputObject, Clone, Debug)]
pub struct CreateExecutionInput {
    /// Same key, same tenant: the first execution is returned, nothing is created twice.
    pub idempotency_key: Option<String>,
    pub order_id: ID,
    pub service_id: ID,
    pub customer_id: Option<ID>,
    pub provider_id: Option<ID>,
    #[graphql(default_with = "Some(Priority::Normal)")]
    pub priority: Option<Priority>,
    pub assignee: Option<AssigneeInput>,
    pub steps: Option<Vec<StepInput>>,
    /// At most 86400000.
    #[graphql(default_with = "Some(3_600_000)")]
    pub timeout_ms: Option<i32>,
    pub retry_policy: Option<RetryPolicyInput>,
    pub webhooks: Option<Vec<WebhookInput>>,
    pub tags: Option<Vec<String>>,
    pub environment: Option<String>,
    pub version: Option<String>,
    pub metadata: Option<Json<Value>>,
    /// A key every step of this execution counts against for flow control.
    pub concurrency_key: Option<String>,
    /// The most this execution may spend before it is paused (or failed).
    pub budget: Option<BudgetInput>,
    #[graphql(default_with = "Some(false)")]
    pub auto_start: Option<bool>,
    /// Stay QUEUED until then, then start as `autoStart` would (`startExecution`
    /// starts it sooner, `cancelExecution` drops it); a time already past starts it
    /// at once. At most a year ahead.
    pub start_at: Option<Timestamp>,
}

#[derive(InputObject, Clone, Debug)]
pub struct UpdateExecutionInput {
    pub priority: Option<Priority>,
    pub assignee: Option<AssigneeInput>,
    pub timeout_ms: Option<i32>,
    pub retry_policy: Option<RetryPolicyInput>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<Json<Value>>,
    pub add_webhooks: Option<Vec<WebhookInput>>,
    /// A new budget (raise it, then resume an execution its budget paused).
    pub budget: Option<BudgetInput>,
    pub remove_webhooks: Option<Vec<ID>>,
}

#[derive(InputObject, Clone, Debug)]
pub struct ExecutionResultInput {
    #[graphql(default = true)]
    pub success: bool,
    pub output: Option<Json<Value>>,
    pub summary: String,
    pub artifacts: Option<Vec<String>>,
    pub metadata: Option<Json<Value>>,
}

impl ExecutionResultInput {
    pub fn parse(self) -> AppResult<ExecutionResult> {
        let artifacts = self.artifacts.unwrap_or_default();
        validate::short_list("result.artifacts", &artifacts)?;
        Ok(ExecutionResult {
            success: self.success,
            output: validate::opt_json("result.output", self.output)?,
            summary: validate::text("result.summary", self.summary)?,
            artifacts,
            metadata: validate::opt_json("result.metadata", self.metadata)?,
        })
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct ExecutionErrorInput {
    pub code: String,
    pub message: String,
    pub stack: Option<String>,
    pub step: Option<ID>,
    #[graphql(default = false)]
    pub recoverable: bool,
    pub context: Option<Json<Value>>,
}

impl ExecutionErrorInput {
    /// The stored error; `retry_count` and `timestamp` are filled in by the rule that records it.
    pub fn parse(self, now: Timestamp) -> AppResult<ExecutionError> {
        Ok(ExecutionError {
            code: ErrorCode::parse("error.code", self.code)?.0,
            message: validate::text("error.message", self.message)?,
            stack: self
                .stack
                .map(|s| validate::text("error.stack", s))
                .transpose()?,
            step: validate::opt_id("error.step", self.step)?,
            recoverable: self.recoverable,
            retry_count: 0,
            context: validate::opt_json("error.context", self.context)?,
            timestamp: Some(now),
        })
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct LogInput {
    #[graphql(default_with = "LogLevel::Info")]
    pub level: LogLevel,
    pub message: String,
    pub step: Option<ID>,
    pub context: Option<Json<Value>>,
    pub metadata: Option<Json<Value>>,
    pub timestamp: Option<DateTime<Utc>>,
}

impl LogInput {
    pub fn parse(self, field: &str, now: Timestamp) -> AppResult<LogEntry> {
        Ok(LogEntry {
            id: new_id(),
            timestamp: self
                .timestamp
                .map(clock::at_stored_precision)
                .unwrap_or(now),
            level: self.level,
            message: validate::text(&format!("{field}.message"), self.message)?,
            step: validate::opt_id(&format!("{field}.step"), self.step)?.map(|s| s.0),
            context: validate::opt_json(&format!("{field}.context"), self.context)?,
            metadata: validate::opt_json(&format!("{field}.metadata"), self.metadata)?,
        })
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct StartStepInput {
    pub id: ID,
    pub name: Option<String>,
    pub assignee: Option<AssigneeInput>,
    pub input: Option<Json<Value>>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct StepMetricsInput {
    pub tokens_used: Option<i32>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub model_calls: Option<i32>,
    pub cost: Option<f64>,
    pub api_calls: Option<i32>,
    pub api_service: Option<String>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct MetricsInput {
    pub tokens_used: Option<i32>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub model_calls: Option<i32>,
    pub cost: Option<f64>,
    pub cost_breakdown: Option<Json<Value>>,
    pub api_calls: Option<i32>,
    pub api_calls_by_service: Option<Json<Value>>,
    pub quality_score: Option<f64>,
    pub custom: Option<Json<Value>>,
}

#[derive(InputObject, Clone, Debug)]
pub struct CheckpointInput {
    pub step: Option<ID>,
    pub state: Json<Value>,
    pub metadata: Option<Json<Value>>,
}

impl CheckpointInput {
    pub fn parse(self, now: Timestamp) -> AppResult<Checkpoint> {
        Ok(Checkpoint {
            id: new_id(),
            timestamp: now,
            step: validate::opt_id("input.step", self.step)?.map(|s| s.0),
            state: validate::json("input.state", self.state)?,
            metadata: validate::opt_json("input.metadata", self.metadata)?,
        })
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct ClaimStepInput {
    pub assignee_type: Option<AssigneeType>,
    pub assignee_id: Option<ID>,
    pub capabilities: Option<Vec<String>>,
    #[graphql(default_with = "Some(vec![\"external\".to_string()])")]
    pub handler_kinds: Option<Vec<String>>,
    #[graphql(default_with = "Some(60_000)")]
    pub lease_ms: Option<i32>,
}
