//! Creating and updating executions, and moving them through their lifecycle.

use async_graphql::{Context, ID, Object, Result};

use crate::domain::inputs::*;
use crate::domain::records::Execution;
use crate::graphql::context::{authenticated, service};
use crate::graphql::errors::GqlResult;

#[derive(Default)]
pub struct LifecycleMutations;

#[Object]
impl LifecycleMutations {
    async fn create_execution(
        &self,
        ctx: &Context<'_>,
        input: CreateExecutionInput,
    ) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).create_execution(&by, input).await.gql()
    }

    async fn update_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateExecutionInput,
    ) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).update_execution(&by, &id, input).await.gql()
    }

    async fn start_execution(&self, ctx: &Context<'_>, id: ID) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).start_execution(&by, &id).await.gql()
    }

    async fn pause_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).pause_execution(&by, &id, reason).await.gql()
    }

    async fn resume_execution(&self, ctx: &Context<'_>, id: ID) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).resume_execution(&by, &id).await.gql()
    }

    async fn cancel_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).cancel_execution(&by, &id, reason).await.gql()
    }

    async fn complete_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        result: ExecutionResultInput,
    ) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx)
            .complete_execution(&by, &id, result)
            .await
            .gql()
    }

    async fn fail_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        error: ExecutionErrorInput,
    ) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).fail_execution(&by, &id, error).await.gql()
    }

    async fn retry_execution(&self, ctx: &Context<'_>, id: ID) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).retry_execution(&by, &id).await.gql()
    }
}
