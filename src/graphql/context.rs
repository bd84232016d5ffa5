//! What resolvers take from the request: the store, the scheduler (to queue what a
//! committed change asks for) and the authenticated caller.
//! Authentication happens in `http`; the outcome (a principal, or why not) travels
//! with the request so that each resolver can refuse with `UNAUTHENTICATED`.

use async_graphql::Context;

use crate::auth::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::scheduler::Scheduler;
use crate::store::Store;

/// The outcome of reading the request's bearer token.
#[derive(Clone, Debug)]
pub struct Authentication(pub AppResult<Principal>);

pub fn store<'a>(ctx: &Context<'a>) -> &'a Store {
    ctx.data_unchecked::<Store>()
}

pub fn scheduler<'a>(ctx: &Context<'a>) -> &'a Scheduler {
    ctx.data_unchecked::<Scheduler>()
}

/// The caller, if authenticated and allowed `permission` by its role.
pub fn caller(ctx: &Context<'_>, permission: Permission) -> AppResult<Principal> {
    let principal = match ctx.data_opt::<Authentication>() {
        Some(Authentication(result)) => result.clone()?,
        None => return Err(AppError::Unauthenticated("no bearer token".into())),
    };
    principal.require(permission)?;
    Ok(principal)
}
