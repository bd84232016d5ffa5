//! The one error type of the service. Every failure a client can see is one of these
//! variants, and each maps to exactly one `extensions.code` of the public contract
//! (the mapping to GraphQL lives in `graphql::errors`).

use crate::domain::status::Status;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid value for `{field}`: {message}")]
    BadInput { field: String, message: String },
    #[error("cannot go from {from} to {to}")]
    InvalidTransition { from: Status, to: Status },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound(what.into())
    }

    /// The contract's `extensions.code` for this error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadInput { .. } => "BAD_USER_INPUT",
            AppError::InvalidTransition { .. } => "INVALID_TRANSITION",
            AppError::Conflict(_) => "CONFLICT",
            AppError::Internal(_) => "INTERNAL",
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(error: sea_orm::DbErr) -> Self {
        tracing::error!(%error, "database error");
        AppError::Internal("database error".into())
    }
}

pub type AppResult<T> = Result<T, AppError>;
