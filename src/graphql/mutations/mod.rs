//! The mutation root, merged from one object per family of operations. Every
//! mutation has the same shape: authenticate, let a `domain` rule compute the change
//! from the current execution, save it with `store::apply` (one transaction, with
//! its events and audit row), then let the scheduler queue what it asks for.

mod claims;
mod lifecycle;
mod reports;
mod steps;

use async_graphql::{Context, MergedObject, Result};

use super::context::{caller, scheduler, store};
use super::errors::GqlResult;
use crate::auth::{Permission, Principal};
use crate::domain::change::Change;
use crate::error::AppResult;
use crate::store::changes::Snapshot;

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    lifecycle::LifecycleMutations,
    steps::StepMutations,
    reports::ReportMutations,
    claims::ClaimMutations,
);

/// Runs `rule` against the execution `id` (with its steps) for a caller holding
/// `permission`.
pub(crate) async fn mutate<F>(
    ctx: &Context<'_>,
    permission: Permission,
    action: &str,
    id: &str,
    rule: F,
) -> Result<Change>
where
    F: FnOnce(&Snapshot, &Principal) -> AppResult<Change>,
{
    mutate_loading(ctx, permission, action, id, false, rule).await
}

/// `mutate`, with the execution's webhooks loaded too when `with_webhooks`.
pub(crate) async fn mutate_loading<F>(
    ctx: &Context<'_>,
    permission: Permission,
    action: &str,
    id: &str,
    with_webhooks: bool,
    rule: F,
) -> Result<Change>
where
    F: FnOnce(&Snapshot, &Principal) -> AppResult<Change>,
{
    let principal = caller(ctx, permission).gql()?;
    let change = store(ctx)
        .apply(&principal, action, id, with_webhooks, |snapshot| {
            rule(snapshot, &principal)
        })
        .await
        .gql()?;
    scheduler(ctx).dispatch(&change).await;
    Ok(change)
}
