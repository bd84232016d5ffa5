//! GraphQL results as HTTP responses, as the GraphQL-over-HTTP spec has them: the
//! media type is `application/graphql-response+json` when the client accepts it, else
//! `application/json`; under the former, a request that could not run at all (it did
//! not parse, validate or coerce its variables) is a 400 with no `data` entry.

use async_graphql::Response as GqlResponse;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::graphql::error_codes::with_codes;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

fn accepts_graphql_response_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| media.split(';').next().unwrap_or("").trim() == GRAPHQL_RESPONSE_JSON)
}

/// No data and only errors without a path: the operation never ran.
fn is_request_error(response: &GqlResponse) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// Whether a request that did not run failed for the server's reasons only
/// (`INTERNAL`: it ran past `--request-timeout`, say), not for the client's: a 503.
fn failed_for_the_server(response: &GqlResponse) -> bool {
    response.errors.iter().all(|error| {
        let code = error.extensions.as_ref().and_then(|e| e.get("code"));
        code == Some(&async_graphql::Value::from("INTERNAL"))
    })
}

/// A request that is not a GraphQL request at all (no body to read, no query): a
/// `refusal_response` with the code `BAD_REQUEST`.
pub fn request_error(
    request_headers: &HeaderMap,
    status: StatusCode,
    message: impl Into<String>,
) -> Response {
    refusal_response(request_headers, status, "BAD_REQUEST", message)
}

/// A request refused before it ran: a GraphQL error response with `status` and
/// `code`, in the media type the client accepts.
pub fn refusal_response(
    request_headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
) -> Response {
    let body = json!({
        "errors": [{ "message": message.into(), "extensions": { "code": code } }]
    });
    let media = if accepts_graphql_response_json(request_headers) {
        GRAPHQL_RESPONSE_JSON
    } else {
        JSON
    };
    (status, [(header::CONTENT_TYPE, media)], body.to_string()).into_response()
}

pub fn respond(request_headers: &HeaderMap, response: GqlResponse) -> Response {
    let response = with_codes(response);
    let graphql_response_json = accepts_graphql_response_json(request_headers);
    let failed = is_request_error(&response);
    let (status, body) = if failed && (graphql_response_json || failed_for_the_server(&response)) {
        let status = if failed_for_the_server(&response) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = json!({ "errors": response.errors });
        (status, serde_json::to_vec(&body))
    } else {
        (StatusCode::OK, serde_json::to_vec(&response))
    };
    let media = if graphql_response_json {
        GRAPHQL_RESPONSE_JSON
    } else {
        JSON
    };
    let mut http = match body {
        Ok(body) => (status, body).into_response(),
        Err(error) => {
            tracing::error!(%error, "serialising a GraphQL response");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let headers = http.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    for (name, value) in response.http_headers.iter() {
        headers.append(name, value.clone());
    }
    http
}
