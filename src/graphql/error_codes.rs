//! Every GraphQL error carries `extensions.code`. The service's own errors get theirs
//! in `errors`; here async-graphql's own get one: a document that does not parse
//! (`GRAPHQL_PARSE_FAILED`, coded by the parse cache), one that does not validate
//! against the schema (`GRAPHQL_VALIDATION_FAILED`: an unknown field, a missing
//! argument, an unknown enum value; coded by the parse cache's validation hook too),
//! and, where responses are sent (`with_codes`), an argument value that cannot be
//! coerced while running (`BAD_USER_INPUT`) and anything else (`INTERNAL`). The
//! schema has one extension only: each one is a layer that every resolved field
//! goes through (measured: a second one cost 4–5 % of `bench read`).

use async_graphql::{Response, ServerError};

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

/// The error with `code`, unless it has a code already.
pub fn coded(mut error: ServerError, code: &str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

/// The response with a code on each of its errors (applied where responses are
/// sent: `http::response`, the WebSocket and SSE transports). Without a path the request
/// itself could not run (e.g. an operation name the document lacks); an argument
/// async-graphql could not coerce is the caller's input; anything else is ours.
pub fn with_codes(mut response: Response) -> Response {
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
