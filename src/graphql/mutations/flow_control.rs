//! Admins' flow control: set a limit on a key or key template, or remove it.

use async_graphql::{Context, Object, Result};

use crate::domain::limits::LimitInput;
use crate::graphql::context::{authenticated, service};
use crate::graphql::errors::GqlResult;
use crate::graphql::objects::flow_control;
use crate::service::LimitView;

#[derive(Default)]
pub struct FlowControlMutations;

#[Object]
impl FlowControlMutations {
    /// Sets the limit on `input.key`, replacing the one there; in force at once.
    /// Admins only; audited.
    async fn set_limit(&self, ctx: &Context<'_>, input: LimitInput) -> Result<LimitView> {
        let by = authenticated(ctx).gql()?;
        let limit = service(ctx).set_limit(&by, input).await.gql()?;
        Ok(flow_control::set(limit))
    }

    /// Removes the limit on `key`; false when there was none. Steps waiting on it
    /// start. Admins only; audited.
    async fn remove_limit(&self, ctx: &Context<'_>, key: String) -> Result<bool> {
        let by = authenticated(ctx).gql()?;
        service(ctx).remove_limit(&by, &key).await.gql()
    }
}
