//! What resolvers take from the request: the service (every change), the store
//! (reads), the event hub (subscriptions) and the authenticated caller.
//! Authentication happens in `http`; the outcome (a principal, or why not) travels
//! with the request so that each resolver can refuse with `UNAUTHENTICATED`.

use async_graphql::Context;

use crate::auth::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::events::Hub;
use crate::service::Service;
use crate::store::Store;

/// The outcome of reading the request's bearer token.
#[derive(Clone, Debug)]
pub struct Authentication(pub AppResult<Principal>);

pub fn store<'a>(ctx: &Context<'a>) -> &'a Store {
    ctx.data_unchecked::<Store>()
}

pub fn service<'a>(ctx: &Context<'a>) -> &'a Service {
    ctx.data_unchecked::<Service>()
}

pub fn events<'a>(ctx: &Context<'a>) -> &'a Hub {
    service(ctx).events()
}

/// The caller, if authenticated (what it may do, the service decides).
pub fn authenticated(ctx: &Context<'_>) -> AppResult<Principal> {
    match ctx.data_opt::<Authentication>() {
        Some(Authentication(result)) => result.clone(),
        None => Err(AppError::Unauthenticated("no bearer token".into())),
    }
}

/// The caller, if authenticated and allowed `permission` by its role: for reads.
pub fn caller(ctx: &Context<'_>, permission: Permission) -> AppResult<Principal> {
    let principal = authenticated(ctx)?;
    principal.require(permission)?;
    Ok(principal)
}
