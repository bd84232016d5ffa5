//! `Execution` as the API shows it. Scalar fields come from the record; steps, logs,
//! checkpoints, events and webhooks are loaded when selected.

use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use serde_json::Value;

use super::connection::LogConnection;
use crate::domain::paging;
use crate::domain::records::*;
use crate::domain::status::ExecutionStatus;
use crate::domain::values::*;
use crate::graphql::errors::GqlResult;
use crate::graphql::loaders::{CheckpointsOf, EventsOf, LogsOf, StepsOf, WebhooksOf, load};
use crate::store::first_rows::{EventWindow, LogWindow};

#[derive(SimpleObject)]
pub struct ExecutionMetadata {
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub environment: Option<String>,
    pub version: Option<String>,
    pub extra: Option<Json<Value>>,
}

#[Object]
impl Execution {
    pub async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    async fn order_id(&self) -> ID {
        ID(self.order_id.clone())
    }
    async fn service_id(&self) -> ID {
        ID(self.service_id.clone())
    }
    /// Tenant that ordered; may read it.
    async fn customer_id(&self) -> Option<ID> {
        self.customer_id.clone().map(ID)
    }
    /// Tenant that provides the service; may read it.
    async fn provider_id(&self) -> Option<ID> {
        self.provider_id.clone().map(ID)
    }
    async fn status(&self) -> ExecutionStatus {
        self.status
    }
    async fn progress(&self) -> f64 {
        self.progress
    }
    async fn priority(&self) -> Priority {
        self.priority
    }
    async fn assignee(&self) -> Option<&Assignee> {
        self.assignee.as_ref()
    }
    async fn result(&self) -> Option<&ExecutionResult> {
        self.result.as_ref()
    }
    async fn error(&self) -> Option<&ExecutionError> {
        self.error.as_ref()
    }
    async fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    async fn steps(&self, ctx: &Context<'_>) -> Result<Vec<Step>> {
        load(ctx, StepsOf(self.id.clone())).await
    }
    /// The most this execution may spend before it is paused (or failed).
    async fn budget(&self) -> Option<&crate::domain::limits::budget::Budget> {
        self.budget.as_ref()
    }
    /// The key every step of this execution counts against (flow control).
    async fn concurrency_key(&self) -> Option<&str> {
        self.concurrency_key.as_deref()
    }
    /// What the execution waits on before it may start (`executions <key>`), or
    /// else what the first of its steps that waits on a limit waits on
    /// (`ExecutionStep.waitingOn`).
    async fn waiting_on(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        if let Some(waiting_on) = &self.waiting_on {
            return Ok(Some(waiting_on.clone()));
        }
        let steps = load(ctx, StepsOf(self.id.clone())).await?;
        Ok(steps.into_iter().find_map(|s| s.schedule.waiting_on))
    }
    async fn step(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Step>> {
        let steps = load(ctx, StepsOf(self.id.clone())).await?;
        Ok(steps.into_iter().find(|s| s.id == id.0))
    }
    async fn logs(
        &self,
        ctx: &Context<'_>,
        level: Option<Vec<LogLevel>>,
        step_id: Option<ID>,
        #[graphql(default_with = "Some(100)")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<LogConnection> {
        let first = paging::first(first, 100).gql()?;
        let after_id = after.as_deref().map(paging::log_after).transpose().gql()?;
        let window = LogWindow {
            levels: level.clone(),
            step_id: step_id.as_ref().map(|s| s.0.clone()),
            first,
            after_id,
        };
        let page = load(ctx, LogsOf(self.id.clone(), window)).await?;
        Ok(LogConnection {
            execution_id: self.id.clone(),
            levels: level,
            step_id: step_id.map(|s| s.0),
            has_previous_page: after.is_some(),
            has_next_page: page.has_next_page,
            logs: page.logs,
        })
    }
    async fn checkpoints(&self, ctx: &Context<'_>) -> Result<Vec<Checkpoint>> {
        load(ctx, CheckpointsOf(self.id.clone())).await
    }
    async fn latest_checkpoint(&self, ctx: &Context<'_>) -> Result<Option<Checkpoint>> {
        Ok(load(ctx, CheckpointsOf(self.id.clone())).await?.pop())
    }
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(0)")] after_sequence: Option<i32>,
        #[graphql(default_with = "Some(100)")] first: Option<i32>,
    ) -> Result<Vec<Event>> {
        let window = EventWindow {
            after_sequence: i64::from(after_sequence.unwrap_or(0)),
            first: paging::first(first, 100).gql()?,
        };
        load(ctx, EventsOf(self.id.clone(), window)).await
    }
    async fn timeout_ms(&self) -> i64 {
        self.timeout_ms
    }
    async fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry_policy.as_ref()
    }
    /// The signing secret is never readable.
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<Vec<Webhook>> {
        load(ctx, WebhooksOf(self.id.clone())).await
    }
    async fn tags(&self) -> &[String] {
        &self.tags
    }
    async fn metadata(&self) -> ExecutionMetadata {
        ExecutionMetadata {
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.metrics.started_at,
            completed_at: self.metrics.completed_at,
            environment: self.environment.clone(),
            version: self.version.clone(),
            extra: self.metadata.clone().map(Json),
        }
    }
    async fn created_at(&self) -> Timestamp {
        self.created_at
    }
    /// The schedule whose fire created it.
    async fn schedule_id(&self) -> Option<ID> {
        self.schedule_id.clone().map(ID)
    }
    /// When an execution created with `startAt` starts itself (or started); for
    /// one a schedule created, the instant of its fire.
    async fn scheduled_at(&self) -> Option<Timestamp> {
        self.scheduled_at
    }
    async fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}
