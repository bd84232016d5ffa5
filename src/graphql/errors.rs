//! The one place where service errors become GraphQL errors: the message, and
//! `extensions.code` (plus `from`/`to` for refused transitions, `field` for bad input).

use async_graphql::{Error, ErrorExtensions};

use crate::error::{AppError, AppResult};

pub fn to_graphql(error: AppError) -> Error {
    Error::new(error.message()).extend_with(|_, extensions| {
        extensions.set("code", error.code());
        match &error {
            AppError::InvalidTransition { from, to } => {
                extensions.set("from", *from);
                extensions.set("to", *to);
            }
            AppError::BadInput { field, .. } => extensions.set("field", field.as_str()),
            _ => {}
        }
    })
}

/// `result.gql()?` in resolvers.
pub trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for AppResult<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_graphql)
    }
}
