//! GraphQL views of the records that hang off an execution: steps, logs,
//! checkpoints, events, webhooks and their deliveries.

use async_graphql::{Context, ID, Json, Object, Result};
use serde_json::Value;

use crate::auth::Permission;
use crate::domain::paging;
use crate::domain::records::*;
use crate::domain::status::{ExecutionStatus, StepStatus};
use crate::domain::values::*;
use crate::domain::webhooks;
use crate::graphql::context::{caller, store};
use crate::graphql::errors::GqlResult;

#[Object(name = "ExecutionStep")]
impl Step {
    /// Unique within its execution, chosen by the client.
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn index(&self) -> i32 {
        self.index
    }
    async fn status(&self) -> StepStatus {
        self.status
    }
    async fn depends_on(&self) -> Vec<ID> {
        self.depends_on.iter().cloned().map(ID).collect()
    }
    async fn handler(&self) -> &StepHandler {
        &self.handler
    }
    async fn assignee(&self) -> Option<&Assignee> {
        self.assignee.as_ref()
    }
    async fn input(&self) -> Option<&Json<Value>> {
        self.input.as_ref()
    }
    async fn output(&self) -> Option<&Json<Value>> {
        self.output.as_ref()
    }
    async fn error(&self) -> Option<&ExecutionError> {
        self.error.as_ref()
    }
    async fn started_at(&self) -> Option<Timestamp> {
        self.started_at
    }
    async fn completed_at(&self) -> Option<Timestamp> {
        self.completed_at
    }
    async fn duration_ms(&self) -> Option<i64> {
        self.duration_ms
    }
    async fn timeout_ms(&self) -> Option<i64> {
        self.timeout_ms
    }
    /// The key this step counts against besides its execution's (flow control).
    async fn concurrency_key(&self) -> Option<&str> {
        self.concurrency_key.as_deref()
    }
    /// What the handed-out step waits on before it may start: `concurrency <key>`
    /// (a free slot of the key) or `rate <key>` (its turn at the key's rate).
    async fn waiting_on(&self) -> Option<&str> {
        self.schedule.waiting_on.as_deref()
    }
    /// For a wait on a rate: when the step's reserved start is.
    async fn waiting_until(&self) -> Option<Timestamp> {
        self.schedule.waiting_until
    }
    async fn retries(&self) -> i32 {
        self.retries
    }
    /// How many times the step has been started; a report from an older attempt is refused.
    async fn attempt(&self) -> i32 {
        self.attempt
    }
    async fn metadata(&self) -> Option<&Json<Value>> {
        self.metadata.as_ref()
    }
}

#[Object(name = "ExecutionLog")]
impl LogEntry {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    async fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
    async fn level(&self) -> LogLevel {
        self.level
    }
    async fn message(&self) -> &str {
        &self.message
    }
    async fn step(&self) -> Option<ID> {
        self.step.clone().map(ID)
    }
    async fn context(&self) -> Option<&Json<Value>> {
        self.context.as_ref()
    }
    /// source, component, traceId, spanId
    async fn metadata(&self) -> Option<&Json<Value>> {
        self.metadata.as_ref()
    }
}

#[Object]
impl Checkpoint {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    async fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
    async fn step(&self) -> Option<ID> {
        self.step.clone().map(ID)
    }
    /// currentStep, totalSteps, completedSteps, pendingSteps, variables, results
    async fn state(&self) -> &Json<Value> {
        &self.state
    }
    async fn metadata(&self) -> Option<&Json<Value>> {
        self.metadata.as_ref()
    }
}

/// One persisted, ordered event. `sequence` is gapless per execution, starting at 1.
#[Object(name = "ExecutionEvent")]
impl Event {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    async fn execution_id(&self) -> ID {
        ID(self.execution_id.clone())
    }
    async fn sequence(&self) -> i64 {
        self.sequence
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> EventType {
        self.kind
    }
    async fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
    /// Execution status after the event.
    async fn status(&self) -> ExecutionStatus {
        self.status
    }
    /// Execution progress after the event.
    async fn progress(&self) -> f64 {
        self.progress
    }
    /// The step as it was right after the event.
    async fn step(&self) -> Option<&Step> {
        self.payload.step.as_ref()
    }
    async fn log(&self) -> Option<&LogEntry> {
        self.payload.log.as_ref()
    }
    async fn checkpoint(&self) -> Option<&Checkpoint> {
        self.payload.checkpoint.as_ref()
    }
    async fn error(&self) -> Option<&ExecutionError> {
        self.payload.error.as_ref()
    }
    async fn result(&self) -> Option<&ExecutionResult> {
        self.payload.result.as_ref()
    }
    async fn will_retry(&self) -> Option<bool> {
        self.payload.will_retry
    }
    async fn next_retry_at(&self) -> Option<Timestamp> {
        self.payload.next_retry_at
    }
    /// Subject of the token that caused it, or "scheduler".
    async fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }
    /// Pause / cancel reason.
    async fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

#[Object]
impl Webhook {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    async fn url(&self) -> &str {
        &self.url
    }
    async fn events(&self) -> &[EventType] {
        &self.events
    }
    /// The headers sent with each delivery. They often carry credentials, so only
    /// admins read their values; other roles read the names, each value `[redacted]`.
    async fn headers(&self, ctx: &Context<'_>) -> Result<Option<Json<Value>>> {
        let principal = caller(ctx, Permission::Read).gql()?;
        let values_shown = principal.require(Permission::ReadSecrets).is_ok();
        Ok(webhooks::shown_headers(&self.headers, values_shown).map(Json))
    }
    async fn retries(&self) -> i32 {
        self.retries
    }
    async fn timeout_ms(&self) -> i64 {
        self.timeout_ms
    }
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(20)")] first: Option<i32>,
    ) -> Result<Vec<WebhookDelivery>> {
        let first = paging::first(first, 20).gql()?;
        store(ctx).deliveries(&self.id, first).await.gql()
    }
}

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    async fn event(&self) -> EventType {
        self.event
    }
    async fn sequence(&self) -> i64 {
        self.sequence
    }
    async fn attempt(&self) -> i32 {
        self.attempt
    }
    async fn status_code(&self) -> Option<i32> {
        self.status_code
    }
    async fn ok(&self) -> bool {
        self.ok
    }
    async fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    async fn delivered_at(&self) -> Timestamp {
        self.delivered_at
    }
    async fn duration_ms(&self) -> i64 {
        self.duration_ms
    }
}
