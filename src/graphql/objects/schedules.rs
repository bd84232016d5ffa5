//! `Schedule` as the API shows it: its definition, its next instants (worked out
//! from the expression on each read) and what its fires made.

use async_graphql::{Context, ID, Json, Object, Result};
use serde_json::Value;

use crate::auth::Permission;
use crate::domain::records::{Execution, Timestamp};
use crate::domain::recurring::{Cadence, Overlap, Schedule};
use crate::graphql::context::caller;
use crate::graphql::errors::GqlResult;
use crate::graphql::loaders;

/// Next instants one read may ask for.
const UPCOMING_AT_MOST: i32 = 100;

#[Object]
impl Schedule {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    async fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The tenant its executions belong to.
    async fn customer_id(&self) -> Option<ID> {
        self.customer_id.clone().map(ID)
    }
    async fn cron(&self) -> &str {
        &self.cron
    }
    async fn timezone(&self) -> &str {
        &self.timezone
    }
    /// The `CreateExecutionInput` each fire creates from.
    async fn template(&self) -> Json<Value> {
        Json(self.template.clone())
    }
    async fn overlap(&self) -> Overlap {
        self.overlap
    }
    async fn catch_up_window_ms(&self) -> i64 {
        self.catch_up_window_ms
    }
    async fn paused(&self) -> bool {
        self.paused
    }
    /// The next instant it fires (null while paused).
    async fn next_fire_at(&self) -> Option<Timestamp> {
        self.next_fire_at
    }
    /// The next `count` instants (at most 100), none while paused.
    async fn next_fire_times(&self, #[graphql(default = 5)] count: i32) -> Result<Vec<Timestamp>> {
        let Some(next) = self.next_fire_at else {
            return Ok(Vec::new());
        };
        let cadence = Cadence::of(self).gql()?;
        let count = count.clamp(0, UPCOMING_AT_MOST) as usize;
        let later = cadence.upcoming(next, count.saturating_sub(1));
        Ok(std::iter::once(next).chain(later).take(count).collect())
    }
    /// The instant of the last execution it created.
    async fn last_fire_at(&self) -> Option<Timestamp> {
        self.last_fire_at
    }
    /// The execution its last fire created, if the caller may see it.
    async fn last_execution(&self, ctx: &Context<'_>) -> Result<Option<Execution>> {
        let Some(id) = &self.last_execution_id else {
            return Ok(None);
        };
        let principal = caller(ctx, Permission::Read).gql()?;
        loaders::execution(ctx, &principal, id).await
    }
    /// Executions its fires created.
    async fn fires(&self) -> i64 {
        self.fires
    }
    /// Instants that created nothing: missed beyond the catch-up window, or
    /// skipped by the overlap policy.
    async fn skipped(&self) -> i64 {
        self.skipped
    }
    async fn created_by(&self) -> &str {
        &self.created_by
    }
    async fn created_at(&self) -> Timestamp {
        self.created_at
    }
    async fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}
