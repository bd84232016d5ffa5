//! The mutation root, merged from one object per family of operations. Every
//! mutation has the same shape: authenticate, let a `domain` rule compute the change
//! from the current execution, save it with its events and audit row — in the
//! scheduler's next shared transaction (`Scheduler::apply_as`), or, when it needs
//! the execution's webhooks, in one of its own (`store::apply`) — then let the
//! scheduler queue what it asks for.

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
/// `permission`, in the scheduler's next shared transaction.
pub(crate) async fn mutate<F>(
    ctx: &Context<'_>,
    permission: Permission,
    action: &'static str,
    id: &str,
    rule: F,
) -> Result<Change>
where
    F: FnOnce(&Snapshot, &Principal) -> AppResult<Change> + Send + 'static,
{
    let principal = caller(ctx, permission).gql()?;
    let by = principal.clone();
    let rule = Box::new(move |snapshot: &Snapshot| rule(snapshot, &by));
    (scheduler(ctx).apply_as(principal, action, id, rule).await).gql()
}

/// `mutate`, with the execution's webhooks loaded too, in a transaction of its own.
pub(crate) async fn mutate_loading_webhooks<F>(
    ctx: &Context<'_>,
    permission: Permission,
    action: &str,
    id: &str,
    rule: F,
) -> Result<Change>
where
    F: FnOnce(&Snapshot, &Principal) -> AppResult<Change>,
{
    let principal = caller(ctx, permission).gql()?;
    let change = store(ctx)
        .apply(&principal, action, id, true, |snapshot| {
            rule(snapshot, &principal)
        })
        .await
        .gql()?;
    scheduler(ctx).dispatch(&change);
    Ok(change)
}
