//! Reading the caller from a request's `Authorization: Bearer …` header, or from a
//! token a connection sent (WebSocket `connection_init`, SSE `?token=`).

use std::time::SystemTime;

use axum::http::HeaderMap;

use super::AppState;
use crate::auth::{Principal, Role};
use crate::error::{AppError, AppResult};
use crate::graphql::context::Authentication;

pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Authentication {
    authentication(state, header(headers))
}

/// The request's `Authorization` value.
pub fn header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The outcome of an `Authorization` value, for a request's resolvers.
pub fn authentication(state: &AppState, authorization: Option<&str>) -> Authentication {
    Authentication(authorize(state, authorization).map(|(principal, _)| principal))
}

/// The principal an `Authorization` value (`Bearer <token>`) names, with when its
/// token expires (never with `--insecure-no-auth`).
pub fn authorize(
    state: &AppState,
    authorization: Option<&str>,
) -> AppResult<(Principal, Option<SystemTime>)> {
    if state.insecure_no_auth {
        let anonymous = Principal {
            subject: "anonymous".into(),
            role: Role::Admin,
            tenant: None,
        };
        return Ok((anonymous, None));
    }
    match authorization {
        None => Err(AppError::Unauthenticated(
            "send `Authorization: Bearer <token>`".into(),
        )),
        Some(value) => match bearer_token(value) {
            Some(token) => {
                let (principal, expires) = state.keys.verify_expiring(token)?;
                Ok((principal, Some(expires)))
            }
            None => Err(AppError::Unauthenticated(
                "the Authorization header must be `Bearer <token>`".into(),
            )),
        },
    }
}

/// The token of a `Bearer <token>` value. The scheme is case-insensitive (RFC 9110
/// §11.1), so `bearer …` is as good as `Bearer …`.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
