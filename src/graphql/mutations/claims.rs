//! External workers (AI agents, people, other systems) pull work: claim a handed-out
//! step under a lease, keep it with heartbeats, and report its outcome with the
//! claim's token (`service::claims` says how).

use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::inputs::{ClaimStepInput, ExecutionErrorInput, StepMetricsInput};
use crate::domain::records::{Execution, Step};
use crate::graphql::context::{authenticated, service};
use crate::graphql::errors::GqlResult;
use crate::service::Claim;

#[derive(SimpleObject)]
pub struct StepClaim {
    /// Proves the claim; send it with heartbeat / complete / fail.
    token: ID,
    execution: Execution,
    step: Step,
    attempt: i32,
    lease_expires_at: DateTime<Utc>,
}

impl From<Claim> for StepClaim {
    fn from(claim: Claim) -> Self {
        StepClaim {
            token: ID(claim.token.encode()),
            attempt: claim.step.attempt,
            lease_expires_at: claim.step.schedule.lease_expires_at.unwrap_or_default(),
            execution: claim.execution,
            step: claim.step,
        }
    }
}

#[derive(Default)]
pub struct ClaimMutations;

#[Object]
impl ClaimMutations {
    /// Claims the most urgent offered step this caller fits; null when none is ready.
    async fn claim_step(
        &self,
        ctx: &Context<'_>,
        input: ClaimStepInput,
    ) -> Result<Option<StepClaim>> {
        let by = authenticated(ctx).gql()?;
        let claim = service(ctx).claim_step(&by, input).await.gql()?;
        Ok(claim.map(StepClaim::from))
    }

    /// Extends the claim's lease (by `leaseMs`, default the lease the claim asked
    /// for) and, with `progress`, reports the execution's progress.
    async fn heartbeat_step(
        &self,
        ctx: &Context<'_>,
        token: ID,
        progress: Option<f64>,
        lease_ms: Option<i32>,
    ) -> Result<StepClaim> {
        let by = authenticated(ctx).gql()?;
        let claim = (service(ctx).heartbeat_step(&by, &token, progress, lease_ms))
            .await
            .gql()?;
        Ok(claim.into())
    }

    async fn complete_claimed_step(
        &self,
        ctx: &Context<'_>,
        token: ID,
        output: Option<Json<Value>>,
        metrics: Option<StepMetricsInput>,
    ) -> Result<Step> {
        let by = authenticated(ctx).gql()?;
        (service(ctx).complete_claimed_step(&by, &token, output, metrics))
            .await
            .gql()
    }

    async fn fail_claimed_step(
        &self,
        ctx: &Context<'_>,
        token: ID,
        error: ExecutionErrorInput,
    ) -> Result<Step> {
        let by = authenticated(ctx).gql()?;
        (service(ctx).fail_claimed_step(&by, &token, error))
            .await
            .gql()
    }
}
