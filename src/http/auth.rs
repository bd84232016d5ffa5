//! Reading the caller from a request's `Authorization: Bearer …` header.

use axum::http::HeaderMap;

use super::AppState;
use crate::auth::{Principal, Role};
use crate::error::AppError;
use crate::graphql::context::Authentication;

pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Authentication {
    if state.insecure_no_auth {
        return Authentication(Ok(Principal {
            subject: "anonymous".into(),
            role: Role::Admin,
            tenant: None,
        }));
    }
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    Authentication(match header {
        None => Err(AppError::Unauthenticated(
            "send `Authorization: Bearer <token>`".into(),
        )),
        Some(value) => match value.strip_prefix("Bearer ") {
            Some(token) => state.keys.verify(token.trim()),
            None => Err(AppError::Unauthenticated(
                "the Authorization header must be `Bearer <token>`".into(),
            )),
        },
    })
}
