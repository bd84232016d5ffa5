//! GraphQL over Server-Sent Events on `/graphql/stream`, in the `graphql-sse`
//! protocol's distinct connections mode: one request (POST with a JSON body, or GET
//! with the query string) opens one stream of `next` events, ended by `complete`.
//! For clients that cannot open a WebSocket; the token comes in the `Authorization`
//! header or as `?token=`. A stream ends when its token expires, and counts towards
//! its principal's quota (`quota`) while open. Mutations over GET are refused.

use async_graphql::parser::types::OperationType;
use async_graphql_axum::GraphQLRequest;
use async_graphql_axum::rejection::GraphQLRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, stream};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::SystemTime;

use super::AppState;
use super::NEVER;
use super::auth::{authorize, header};
use super::graphql::{may_run, mutation_over_get, unreadable};
use super::response::refusal_response;
use crate::error::AppError;
use crate::graphql::context::Authentication;
use crate::graphql::error_codes::with_codes;
use crate::graphql::errors::to_graphql;

#[derive(Deserialize)]
pub struct TokenParam {
    token: Option<String>,
}

pub async fn stream_handler(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(param): Query<TokenParam>,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let request = match request {
        Ok(request) => request,
        Err(rejection) => return unreadable(&headers, rejection),
    };
    if method != Method::POST && may_run(&request.0, &[OperationType::Mutation]) {
        return mutation_over_get(&headers);
    }
    let authorized = match param.token {
        Some(token) => authorize(&state, Some(&format!("Bearer {token}"))),
        None => authorize(&state, header(&headers)),
    };
    let expires = authorized.as_ref().ok().and_then(|(_, expires)| *expires);
    let held = match &authorized {
        Ok((principal, _)) => match state.quota.hold(principal) {
            Some(held) => Some(held),
            None => {
                let refusal = state.quota.refusal();
                return refusal_response(
                    &headers,
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    refusal,
                );
            }
        },
        Err(_) => None,
    };
    let authentication = Authentication(authorized.map(|(principal, _)| principal));
    let request = request.into_inner().data(authentication);
    let results = state.schema.execute_stream(request).map(move |response| {
        let _held = &held;
        next_event(&with_codes(response))
    });
    // A stopping server ends the stream (`complete`), as a finished operation does;
    // so does the token's expiry, after an `UNAUTHENTICATED` error.
    let results = results.take_until(state.shutdown.clone().cancelled_owned());
    let left = expires.map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
    let expiry = tokio::time::sleep(left.unwrap_or(NEVER));
    let results = results.take_until(expiry);
    let expired = stream::once(async move {
        let expired = expires.is_some_and(|at| at <= SystemTime::now());
        expired.then(|| {
            let error = AppError::Unauthenticated("the token expired: mint a new one".into());
            let response = async_graphql::Response::from_errors(vec![
                to_graphql(error).into_server_error(Default::default()),
            ]);
            next_event(&response)
        })
    })
    .filter_map(|event| async move { event });
    let complete = stream::once(async { Ok(Event::default().event("complete").data("")) });
    Sse::new(results.chain(expired).chain(complete))
        .keep_alive(KeepAlive::new().interval(state.ws_ping_interval))
        .into_response()
}

/// A `next` event carrying `response`.
fn next_event(response: &async_graphql::Response) -> Result<Event, Infallible> {
    let data = serde_json::to_string(response).expect("responses serialize");
    Ok(Event::default().event("next").data(data))
}
