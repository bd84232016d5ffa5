//! External workers (AI agents, people, other systems) pull work: claim a handed-out
//! step under a lease, keep it with heartbeats, and report its outcome with the
//! claim's token. A report with a token that is no longer current is `CONFLICT`.
//! Claims and their reports commit alone: a claimer that loses an offer to a faster
//! one tries the next at once, and no claim waits behind a shared transaction.

use async_graphql::Json;
use serde_json::Value;

use super::Service;
use crate::auth::{Permission, Principal};
use crate::clock;
use crate::domain::change::Change;
use crate::domain::claim::{self, ClaimToken};
use crate::domain::clock as domain_clock;
use crate::domain::inputs::{ClaimStepInput, ExecutionErrorInput, StepMetricsInput};
use crate::domain::records::{Execution, Step, Timestamp};
use crate::domain::snapshot::Snapshot;
use crate::domain::{failure, schedule};
use crate::error::{AppError, AppResult};

/// Offers a claim may try per priority level: the best it fits, and a few more in
/// case faster claimers take those first.
const OFFERS_PER_LEVEL: usize = 8;

/// A claimed step: the token that proves the claim, and what was claimed.
pub struct Claim {
    pub token: ClaimToken,
    pub execution: Execution,
    pub step: Step,
}

impl Service {
    /// Claims the most urgent offered step `by` fits; `None` when none is ready.
    pub async fn claim_step(
        &self,
        by: &Principal,
        input: ClaimStepInput,
    ) -> AppResult<Option<Claim>> {
        by.require(Permission::Report)?;
        let filter = input.parse()?;
        let fits = |execution: &Execution, step: &Step| filter.fits(execution, step);
        let store = &self.0.store;
        let mut offers = (store.offers(by, &filter.handler_kinds, fits, OFFERS_PER_LEVEL)).await?;
        claim::rank(&mut offers, clock::now(), self.policy().aging);
        for offer in offers {
            let token = claim::token_for(&offer, filter.lease);
            let lease = filter.lease;
            let claimed = self
                .with_claim(by, "claimStep", &token, move |s, token, actor, now| {
                    let until = domain_clock::after(now, lease);
                    let (step_id, nonce) = (&token.step_id, &token.nonce);
                    schedule::claim(
                        &s.execution,
                        &s.steps,
                        &s.usage,
                        step_id,
                        nonce,
                        until,
                        actor,
                        now,
                    )
                })
                .await;
            match claimed {
                Ok(change) => return claimed_by(change, token).map(Some),
                // Another claimer was faster; try the next offer.
                Err(AppError::Conflict(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// Extends the claim's lease (by `lease_ms`, default the lease the claim asked
    /// for) and, with `progress`, reports the execution's progress.
    pub async fn heartbeat_step(
        &self,
        by: &Principal,
        token: &str,
        progress: Option<f64>,
        lease_ms: Option<i32>,
    ) -> AppResult<Claim> {
        let token = claimers_token(by, token)?;
        let lease = token.heartbeat_lease(lease_ms, self.policy().lease)?;
        let change = self
            .with_claim(by, "heartbeatStep", &token, move |s, token, actor, now| {
                let until = domain_clock::after(now, lease);
                claim::heartbeat(&s.execution, &s.steps, token, progress, until, actor, now)
            })
            .await?;
        claimed_by(change, token)
    }

    pub async fn complete_claimed_step(
        &self,
        by: &Principal,
        token: &str,
        output: Option<Json<Value>>,
        metrics: Option<StepMetricsInput>,
    ) -> AppResult<Step> {
        let token = claimers_token(by, token)?;
        let change = self
            .with_claim(by, "completeClaimedStep", &token, |s, token, actor, now| {
                let fence = token.fence();
                schedule::succeed(&s.execution, &s.steps, &fence, output, metrics, actor, now)
            })
            .await?;
        change.into_step(&token.step_id)
    }

    pub async fn fail_claimed_step(
        &self,
        by: &Principal,
        token: &str,
        error: ExecutionErrorInput,
    ) -> AppResult<Step> {
        let token = claimers_token(by, token)?;
        let random = rand::random::<f64>();
        let change = self
            .with_claim(
                by,
                "failClaimedStep",
                &token,
                move |s, token, actor, now| {
                    let (error, fence) = (error.parse(now)?, token.fence());
                    failure::fail_fenced(&s.execution, &s.steps, &fence, error, random, actor, now)
                },
            )
            .await?;
        change.into_step(&token.step_id)
    }

    /// A claimer's command on the execution `token` names, alone in its transaction;
    /// the rule sees the token too.
    async fn with_claim<F>(
        &self,
        by: &Principal,
        action: &'static str,
        token: &ClaimToken,
        rule: F,
    ) -> AppResult<Change>
    where
        F: FnOnce(&Snapshot, &ClaimToken, &str, Timestamp) -> AppResult<Change> + Send + 'static,
    {
        let (id, owned) = (&token.execution_id, token.clone());
        let rule = move |s: &Snapshot, actor: &str, now| rule(s, &owned, actor, now);
        (self.apply_alone(by, Permission::Report, action, id, false, rule)).await
    }
}

/// The token a claimer sends, once `by` may report at all.
fn claimers_token(by: &Principal, token: &str) -> AppResult<ClaimToken> {
    by.require(Permission::Report)?;
    ClaimToken::parse(token)
}

/// The claim `token` proves, as `change` left it.
fn claimed_by(change: Change, token: ClaimToken) -> AppResult<Claim> {
    let execution = change.execution.clone();
    let step = change.into_step(&token.step_id)?;
    Ok(Claim {
        token,
        execution,
        step,
    })
}
