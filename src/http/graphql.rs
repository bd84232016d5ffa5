//! `/graphql` over HTTP: POST runs any operation; GET upgrades to a WebSocket, runs
//! queries from the query string (mutations over GET are refused with 405) or, for a
//! browser, serves GraphiQL.

use async_graphql::parser::{parse_query, types::OperationType};
use async_graphql_axum::GraphQLRequest;
use async_graphql_axum::rejection::GraphQLRejection;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::authenticate;
use super::graphiql::page as graphiql;
use super::response::{request_error, respond};

pub async fn post_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    if !is_json(&headers) {
        return request_error(
            &headers,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as `Content-Type: application/json`",
        );
    }
    let request = match request {
        Ok(request) => request.into_inner(),
        Err(rejection) => return unreadable(&headers, rejection),
    };
    if request.query.trim().is_empty() {
        return missing_query(&headers);
    }
    let request = request.data(authenticate(&state, &headers));
    respond(&headers, state.schema.execute(request).await)
}

/// Whether a POST's body says it is JSON, the one media type GraphQL over HTTP
/// requires a server to read. (A client that sets none, such as `fetch` with a
/// string body, sends `text/plain`.)
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn missing_query(headers: &HeaderMap) -> Response {
    request_error(
        headers,
        StatusCode::BAD_REQUEST,
        "missing `query` parameter",
    )
}

/// A body that is not a GraphQL request: what was wrong with it, said plainly.
pub(super) fn unreadable(headers: &HeaderMap, rejection: GraphQLRejection) -> Response {
    let message = format!("the body is not a GraphQL request: {}", rejection.0);
    request_error(headers, StatusCode::BAD_REQUEST, message)
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Whether an operation that may run is of a type `refused` names.
pub(super) fn may_run(request: &async_graphql::Request, refused: &[OperationType]) -> bool {
    let Ok(document) = parse_query(&request.query) else {
        return false; // the executor reports the syntax error
    };
    document.operations.iter().any(|(name, operation)| {
        let selected = match (&request.operation_name, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            (None, _) => true,
            (Some(_), None) => false,
        };
        selected && refused.contains(&operation.node.ty)
    })
}

/// 405: a mutation sent with GET, which proxies, prefetchers and crawlers send
/// freely.
pub(super) fn mutation_over_get(headers: &HeaderMap) -> Response {
    let mut refused = request_error(
        headers,
        StatusCode::METHOD_NOT_ALLOWED,
        "mutations must be sent with POST",
    );
    let allow = header::HeaderValue::from_static("POST");
    refused.headers_mut().insert(header::ALLOW, allow);
    refused
}

pub async fn get_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    if let Ok(upgrade) = upgrade {
        return super::ws::upgrade(state, upgrade);
    }
    match request.ok() {
        Some(request) if !request.0.query.is_empty() => {
            let request = request.into_inner();
            // Subscriptions over GET need a WebSocket or `/graphql/stream`.
            let not_queries = [OperationType::Mutation, OperationType::Subscription];
            if may_run(&request, &not_queries) {
                return mutation_over_get(&headers);
            }
            let request = request.data(authenticate(&state, &headers));
            respond(&headers, state.schema.execute(request).await)
        }
        None => graphiql().into_response(),
        _ if wants_html(&headers) => graphiql().into_response(),
        _ => missing_query(&headers),
    }
}
