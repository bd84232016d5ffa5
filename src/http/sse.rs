//! GraphQL over Server-Sent Events on `/graphql/stream`, in the `graphql-sse`
//! protocol's distinct connections mode: one request (POST with a JSON body, or GET
//! with the query string) opens one stream of `next` events, ended by `complete`.
//! For clients that cannot open a WebSocket; the token comes in the `Authorization`
//! header or as `?token=`.

use async_graphql_axum::GraphQLRequest;
use async_graphql_axum::rejection::GraphQLRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, stream};
use serde::Deserialize;

use super::AppState;
use super::auth::{authenticate, authentication};
use super::graphql::unreadable;
use crate::graphql::error_codes::with_codes;

#[derive(Deserialize)]
pub struct TokenParam {
    token: Option<String>,
}

pub async fn stream_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(param): Query<TokenParam>,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let request = match request {
        Ok(request) => request,
        Err(rejection) => return unreadable(&headers, rejection),
    };
    let authentication = match param.token {
        Some(token) => authentication(&state, Some(&format!("Bearer {token}"))),
        None => authenticate(&state, &headers),
    };
    let request = request.into_inner().data(authentication);
    let results = state.schema.execute_stream(request).map(|response| {
        let response = with_codes(response);
        let data = serde_json::to_string(&response).expect("responses serialize");
        Ok::<_, std::convert::Infallible>(Event::default().event("next").data(data))
    });
    // A stopping server ends the stream (`complete`), as a finished operation does.
    let results = results.take_until(state.shutdown.clone().cancelled_owned());
    let complete = stream::once(async { Ok(Event::default().event("complete").data("")) });
    Sse::new(results.chain(complete))
        .keep_alive(KeepAlive::new().interval(state.ws_ping_interval))
        .into_response()
}
