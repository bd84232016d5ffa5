//! Driving steps directly: start (adding a step discovered while running),
//! complete, fail and skip.

use async_graphql::{Context, ID, Json, Object, Result};
use serde_json::Value;

use super::mutate;
use crate::auth::Permission;
use crate::clock;
use crate::domain::change::Change;
use crate::domain::inputs::*;
use crate::domain::records::Step;
use crate::domain::{failure, steps};
use crate::error::AppError;
use crate::graphql::errors::GqlResult;

#[derive(Default)]
pub struct StepMutations;

/// The step a change wrote.
fn written_step(change: Change, step_id: &str) -> Result<Step> {
    change
        .steps
        .into_iter()
        .find(|s| s.id == step_id)
        .ok_or_else(|| AppError::Internal(format!("step `{step_id}` was not written")))
        .gql()
}

#[Object]
impl StepMutations {
    /// Starts a step, adding it when its id is new (steps can be discovered while running).
    async fn start_step(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        step: StartStepInput,
    ) -> Result<Step> {
        let step_id = step.id.0.clone();
        let change = mutate(
            ctx,
            Permission::Report,
            "startStep",
            &execution_id,
            |s, p| steps::start_step(&s.execution, &s.steps, step, &p.subject, clock::now()),
        )
        .await?;
        written_step(change, &step_id)
    }

    async fn complete_step(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        step_id: ID,
        output: Option<Json<Value>>,
        metrics: Option<StepMetricsInput>,
    ) -> Result<Step> {
        let rule_step_id = step_id.clone();
        let change = mutate(
            ctx,
            Permission::Report,
            "completeStep",
            &execution_id,
            move |s, p| {
                steps::complete_step(
                    &s.execution,
                    &s.steps,
                    &rule_step_id,
                    output,
                    metrics,
                    &p.subject,
                    clock::now(),
                )
            },
        )
        .await?;
        written_step(change, &step_id)
    }

    async fn fail_step(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        step_id: ID,
        error: ExecutionErrorInput,
    ) -> Result<Step> {
        let rule_step_id = step_id.clone();
        let random = rand::random::<f64>();
        let change = mutate(
            ctx,
            Permission::Report,
            "failStep",
            &execution_id,
            move |s, p| {
                failure::fail_reported_step(
                    &s.execution,
                    &s.steps,
                    &rule_step_id,
                    error,
                    random,
                    &p.subject,
                    clock::now(),
                )
            },
        )
        .await?;
        written_step(change, &step_id)
    }

    async fn skip_step(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        step_id: ID,
        reason: Option<String>,
    ) -> Result<Step> {
        let rule_step_id = step_id.clone();
        let change = mutate(
            ctx,
            Permission::Report,
            "skipStep",
            &execution_id,
            move |s, p| {
                steps::skip_step(
                    &s.execution,
                    &s.steps,
                    &rule_step_id,
                    reason,
                    &p.subject,
                    clock::now(),
                )
            },
        )
        .await?;
        written_step(change, &step_id)
    }
}
