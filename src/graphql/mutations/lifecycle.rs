//! Creating and updating executions, and moving them through their lifecycle.

use async_graphql::{Context, ID, Object, Result};

use super::{mutate, mutate_loading_webhooks};
use crate::auth::Permission;
use crate::clock;
use crate::domain::inputs::*;
use crate::domain::records::Execution;
use crate::domain::{failure, lifecycle};
use crate::graphql::context::{caller, scheduler};
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
        let principal = caller(ctx, Permission::Create).gql()?;
        let customer = input.customer_id.clone().map(|c| c.0);
        let provider = input.provider_id.as_ref().map(|p| p.as_str());
        let customer = principal.owner_for_new(customer, provider).gql()?;
        let kinds = scheduler(ctx).step_kinds();
        let now = clock::now();
        let change = lifecycle::create(input, customer, kinds, &principal.subject, now).gql()?;
        scheduler(ctx).create(principal, change).await.gql()
    }

    async fn update_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateExecutionInput,
    ) -> Result<Execution> {
        let change =
            mutate_loading_webhooks(ctx, Permission::Manage, "updateExecution", &id, |s, p| {
                lifecycle::update(&s.execution, &s.webhooks, input, &p.subject, clock::now())
            })
            .await?;
        Ok(change.execution)
    }

    async fn start_execution(&self, ctx: &Context<'_>, id: ID) -> Result<Execution> {
        let change = mutate(ctx, Permission::Manage, "startExecution", &id, |s, p| {
            lifecycle::start(&s.execution, &p.subject, clock::now())
        })
        .await?;
        Ok(change.execution)
    }

    async fn pause_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Execution> {
        let change = mutate(ctx, Permission::Manage, "pauseExecution", &id, |s, p| {
            lifecycle::pause(&s.execution, &s.steps, reason, &p.subject, clock::now())
        })
        .await?;
        Ok(change.execution)
    }

    async fn resume_execution(&self, ctx: &Context<'_>, id: ID) -> Result<Execution> {
        let change = mutate(ctx, Permission::Manage, "resumeExecution", &id, |s, p| {
            lifecycle::resume(&s.execution, &p.subject, clock::now())
        })
        .await?;
        Ok(change.execution)
    }

    async fn cancel_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Execution> {
        let change = mutate(ctx, Permission::Manage, "cancelExecution", &id, |s, p| {
            lifecycle::cancel(&s.execution, reason, &p.subject, clock::now())
        })
        .await?;
        Ok(change.execution)
    }

    async fn complete_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        result: ExecutionResultInput,
    ) -> Result<Execution> {
        let change = mutate(ctx, Permission::Manage, "completeExecution", &id, |s, p| {
            lifecycle::complete(&s.execution, result, &p.subject, clock::now())
        })
        .await?;
        Ok(change.execution)
    }

    async fn fail_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        error: ExecutionErrorInput,
    ) -> Result<Execution> {
        let random = rand::random::<f64>();
        let change = mutate(
            ctx,
            Permission::Manage,
            "failExecution",
            &id,
            move |s, p| {
                failure::fail_execution(&s.execution, error, random, &p.subject, clock::now())
            },
        )
        .await?;
        Ok(change.execution)
    }

    async fn retry_execution(&self, ctx: &Context<'_>, id: ID) -> Result<Execution> {
        let change = mutate(ctx, Permission::Manage, "retryExecution", &id, |s, p| {
            lifecycle::retry(&s.execution, &s.steps, &p.subject, clock::now())
        })
        .await?;
        Ok(change.execution)
    }
}
