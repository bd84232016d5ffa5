//! Driving steps directly: start (adding a step discovered while running),
//! complete, fail and skip.

use async_graphql::{Context, ID, Json, Object, Result};
use serde_json::Value;

use crate::domain::inputs::*;
use crate::domain::records::Step;
use crate::graphql::context::{authenticated, service};
use crate::graphql::errors::GqlResult;

#[derive(Default)]
pub struct StepMutations;

#[Object]
impl StepMutations {
    /// Starts a step, adding it when its id is new (steps can be discovered while running).
    async fn start_step(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        step: StartStepInput,
    ) -> Result<Step> {
        let by = authenticated(ctx).gql()?;
        service(ctx)
            .start_step(&by, &execution_id, step)
            .await
            .gql()
    }

    async fn complete_step(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        step_id: ID,
        output: Option<Json<Value>>,
        metrics: Option<StepMetricsInput>,
    ) -> Result<Step> {
        let by = authenticated(ctx).gql()?;
        (service(ctx).complete_step(&by, &execution_id, &step_id, output, metrics))
            .await
            .gql()
    }

    async fn fail_step(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        step_id: ID,
        error: ExecutionErrorInput,
    ) -> Result<Step> {
        let by = authenticated(ctx).gql()?;
        (service(ctx).fail_step(&by, &execution_id, &step_id, error))
            .await
            .gql()
    }

    async fn skip_step(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        step_id: ID,
        reason: Option<String>,
    ) -> Result<Step> {
        let by = authenticated(ctx).gql()?;
        (service(ctx).skip_step(&by, &execution_id, &step_id, reason))
            .await
            .gql()
    }
}
