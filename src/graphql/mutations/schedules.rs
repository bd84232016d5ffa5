//! Schedules of executions: create one, define it anew, pause, resume, delete.

use async_graphql::{Context, ID, Object, Result};
use serde_json::Value;

use crate::domain::recurring::{Schedule, ScheduleInput};
use crate::graphql::context::{authenticated, service};
use crate::graphql::errors::GqlResult;

#[derive(Default)]
pub struct ScheduleMutations;

#[Object]
impl ScheduleMutations {
    /// A schedule that creates an execution from `input.template` at every instant
    /// of `input.cron` in `input.timezone`. Audited.
    async fn create_schedule(&self, ctx: &Context<'_>, input: ScheduleInput) -> Result<Schedule> {
        let by = authenticated(ctx).gql()?;
        let written = written_template(ctx)?;
        service(ctx)
            .create_schedule(&by, input, written)
            .await
            .gql()
    }

    /// Defines the schedule anew (its counts and last fire stay); it fires next
    /// at its new expression's first instant from now. Audited.
    async fn update_schedule(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ScheduleInput,
    ) -> Result<Schedule> {
        let by = authenticated(ctx).gql()?;
        let written = written_template(ctx)?;
        service(ctx)
            .update_schedule(&by, &id, input, written)
            .await
            .gql()
    }

    /// Stops it firing until resumed. Audited.
    async fn pause_schedule(&self, ctx: &Context<'_>, id: ID) -> Result<Schedule> {
        let by = authenticated(ctx).gql()?;
        service(ctx).pause_schedule(&by, &id, true).await.gql()
    }

    /// Fires again from its next instant after now; what it was paused through
    /// does not fire. Audited.
    async fn resume_schedule(&self, ctx: &Context<'_>, id: ID) -> Result<Schedule> {
        let by = authenticated(ctx).gql()?;
        service(ctx).pause_schedule(&by, &id, false).await.gql()
    }

    /// Deletes it (the executions it created stay); false when there was none.
    /// Audited.
    async fn delete_schedule(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let by = authenticated(ctx).gql()?;
        service(ctx).delete_schedule(&by, &id).await.gql()
    }
}

/// The field's `input.template` as the client wrote it, variables resolved.
fn written_template(ctx: &Context<'_>) -> Result<Value> {
    let arguments = ctx.field().arguments()?;
    let input = arguments
        .into_iter()
        .find(|(name, _)| name.as_str() == "input");
    let input = input
        .map(|(_, value)| value)
        .unwrap_or_default()
        .into_json()?;
    Ok(input.get("template").cloned().unwrap_or_default())
}
