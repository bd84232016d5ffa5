//! Every GraphQL error carries `extensions.code`. The service's own errors get theirs
//! in `errors`; this extension gives one to what async-graphql reports by itself:
//! a document that does not parse (`GRAPHQL_PARSE_FAILED`), one that does not
//! validate against the schema (`GRAPHQL_VALIDATION_FAILED`: an unknown field, a
//! missing argument, an unknown enum value), an argument value that cannot be
//! coerced while running (`BAD_USER_INPUT`), and anything else (`INTERNAL`).

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextSubscribe,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures::StreamExt;
use futures::stream::BoxStream;

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

#[derive(Clone, Copy, Default)]
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        with_codes(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(with_codes).boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|error| coded(error, PARSE_FAILED))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| coded(error, VALIDATION_FAILED))
                .collect()
        })
    }
}

/// The error with `code`, unless it has a code already.
pub fn coded(mut error: ServerError, code: &str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

/// The response with a code on each of its errors. Without a path the request
/// itself could not run (e.g. an operation name the document lacks); an argument
/// async-graphql could not coerce is the caller's input; anything else is ours.
fn with_codes(mut response: Response) -> Response {
    response.errors = std::mem::take(&mut response.errors)
        .into_iter()
        .map(|error| {
            let code = if error.path.is_empty() {
                VALIDATION_FAILED
            } else if error.message.starts_with("Failed to parse")
                || error.message.starts_with("Invalid value")
            {
                "BAD_USER_INPUT"
            } else {
                "INTERNAL"
            };
            coded(error, code)
        })
        .collect();
    response
}
