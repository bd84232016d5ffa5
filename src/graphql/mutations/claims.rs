//! External workers (AI agents, people, other systems) pull work: claim a handed-out
//! step under a lease, keep it with heartbeats, and report its outcome with the
//! claim's token. A report with a token that is no longer current is `CONFLICT`.

use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use serde_json::Value;

use crate::auth::{Permission, Principal};
use crate::clock;
use crate::domain::change::Change;
use crate::domain::claim::{ClaimToken, effective_level};
use crate::domain::inputs::{ClaimStepInput, ExecutionErrorInput, StepMetricsInput};
use crate::domain::lifecycle;
use crate::domain::records::{Execution, Step, new_id};
use crate::domain::{failure, schedule};
use crate::error::{AppError, AppResult};
use crate::graphql::context::{caller, scheduler, store};
use crate::graphql::errors::GqlResult;
use crate::store::changes::Snapshot;

/// Offers a claim may try per priority level: the best it fits, and a few more in
/// case faster claimers take those first.
const OFFERS_PER_LEVEL: usize = 8;

#[derive(SimpleObject)]
pub struct StepClaim {
    /// Proves the claim; send it with heartbeat / complete / fail.
    token: ID,
    execution: Execution,
    step: Step,
    attempt: i32,
    lease_expires_at: DateTime<Utc>,
}

impl StepClaim {
    fn from_change(change: Change, token: &ClaimToken) -> AppResult<Self> {
        let step = change
            .steps
            .into_iter()
            .find(|s| s.id == token.step_id)
            .ok_or_else(|| AppError::Internal("the claimed step was not written".into()))?;
        Ok(StepClaim {
            token: ID(token.encode()),
            attempt: step.attempt,
            lease_expires_at: step.schedule.lease_expires_at.unwrap_or_default(),
            execution: change.execution,
            step,
        })
    }
}

#[derive(Default)]
pub struct ClaimMutations;

/// Applies `rule` to the execution a token names, as `principal`, and dispatches.
async fn apply_with_token<F>(
    ctx: &Context<'_>,
    principal: &Principal,
    action: &str,
    token: &ClaimToken,
    rule: F,
) -> Result<Change>
where
    F: FnOnce(&Snapshot) -> AppResult<Change>,
{
    let change = store(ctx)
        .apply(principal, action, &token.execution_id, false, rule)
        .await
        .gql()?;
    scheduler(ctx).dispatch(&change);
    Ok(change)
}

fn reported_step(change: Change, token: &ClaimToken) -> Result<Step> {
    change
        .steps
        .into_iter()
        .find(|s| s.id == token.step_id)
        .ok_or_else(|| AppError::Internal("the reported step was not written".into()))
        .gql()
}

#[Object]
impl ClaimMutations {
    /// Claims the most urgent offered step this caller fits; null when none is ready.
    async fn claim_step(
        &self,
        ctx: &Context<'_>,
        input: ClaimStepInput,
    ) -> Result<Option<StepClaim>> {
        let principal = caller(ctx, Permission::Report).gql()?;
        let filter = input.parse().gql()?;
        let aging = scheduler(ctx).aging();
        let now = clock::now();
        let fits = |execution: &Execution, step: &Step| filter.fits(execution, step);
        let mut offers = store(ctx)
            .offers(&principal, &filter.handler_kinds, fits, OFFERS_PER_LEVEL)
            .await
            .gql()?;
        let level = |o: &crate::store::schedule::Offer| {
            let ready_at = o.step.schedule.ready_at.unwrap_or(now);
            (
                effective_level(o.execution.priority, ready_at, now, aging),
                std::cmp::Reverse(ready_at),
            )
        };
        offers.sort_by_key(|o| std::cmp::Reverse(level(o)));
        for offer in offers {
            let token = ClaimToken {
                execution_id: offer.execution.id.clone(),
                step_id: offer.step.id.clone(),
                attempt: offer.step.attempt + 1,
                nonce: new_id(),
                lease_ms: Some(filter.lease.as_millis() as i32),
            };
            let claimed = store(ctx)
                .apply(&principal, "claimStep", &token.execution_id, false, |s| {
                    let now = clock::now();
                    let until = now + TimeDelta::from_std(filter.lease).unwrap_or_default();
                    schedule::claim(
                        &s.execution,
                        &s.steps,
                        &token.step_id,
                        &token.nonce,
                        until,
                        &principal.subject,
                        now,
                    )
                })
                .await;
            match claimed {
                Ok(change) => {
                    scheduler(ctx).dispatch(&change);
                    return StepClaim::from_change(change, &token).map(Some).gql();
                }
                // Another claimer was faster; try the next offer.
                Err(AppError::Conflict(_)) => continue,
                Err(error) => return Err(error).gql(),
            }
        }
        Ok(None)
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
        let principal = caller(ctx, Permission::Report).gql()?;
        let token = ClaimToken::parse(&token).gql()?;
        let lease = token
            .heartbeat_lease(lease_ms, scheduler(ctx).lease())
            .gql()?;
        let change = apply_with_token(ctx, &principal, "heartbeatStep", &token, |s| {
            let now = clock::now();
            let until = now + TimeDelta::from_std(lease).unwrap_or_default();
            let mut change = match progress {
                Some(value) => {
                    lifecycle::update_progress(&s.execution, value, &principal.subject, now)?
                }
                None => Change::new(&s.execution, &principal.subject, now),
            };
            let mut step = schedule::check_fence(&s.steps, &token.fence(), now)?.clone();
            step.schedule.lease_expires_at = Some(until);
            change.put_step(step);
            Ok(change)
        })
        .await?;
        StepClaim::from_change(change, &token).gql()
    }

    async fn complete_claimed_step(
        &self,
        ctx: &Context<'_>,
        token: ID,
        output: Option<Json<Value>>,
        metrics: Option<StepMetricsInput>,
    ) -> Result<Step> {
        let principal = caller(ctx, Permission::Report).gql()?;
        let token = ClaimToken::parse(&token).gql()?;
        let change = apply_with_token(ctx, &principal, "completeClaimedStep", &token, |s| {
            schedule::succeed(
                &s.execution,
                &s.steps,
                &token.fence(),
                output,
                metrics,
                &principal.subject,
                clock::now(),
            )
        })
        .await?;
        reported_step(change, &token)
    }

    async fn fail_claimed_step(
        &self,
        ctx: &Context<'_>,
        token: ID,
        error: ExecutionErrorInput,
    ) -> Result<Step> {
        let principal = caller(ctx, Permission::Report).gql()?;
        let token = ClaimToken::parse(&token).gql()?;
        let random = rand::rng().random::<f64>();
        let change = apply_with_token(ctx, &principal, "failClaimedStep", &token, |s| {
            let now = clock::now();
            let error = error.parse(now)?;
            failure::fail_fenced(
                &s.execution,
                &s.steps,
                &token.fence(),
                error,
                random,
                &principal.subject,
                now,
            )
        })
        .await?;
        reported_step(change, &token)
    }
}
