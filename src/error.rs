//! The one error type of the service. Every failure a client can see is one of these
//! variants, and each maps to exactly one `extensions.code` of the public contract
//! (the mapping to GraphQL lives in `graphql::errors`).

/// Deliberately not `Display`: async-graphql converts anything `Display` into an
/// error without a code, so this type can only reach clients through
/// `graphql::errors`, which always sets `extensions.code`.
#[derive(Clone, Debug, PartialEq)]
pub enum AppError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    BadInput {
        field: String,
        message: String,
    },
    /// A hop the status table forbids, between the two statuses' names.
    InvalidTransition {
        from: &'static str,
        to: &'static str,
    },
    Conflict(String),
    /// The database cannot write now (a full disk, an I/O error): `INTERNAL` for the
    /// client, and what marks the store unwritable (`store::health`).
    Unavailable,
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

    /// The execution does not exist, or the caller may not see it.
    pub fn no_execution(execution_id: &str) -> Self {
        Self::not_found(format!("execution `{execution_id}`"))
    }

    /// What the client reads as the error's message.
    pub fn message(&self) -> String {
        match self {
            AppError::Unauthenticated(why) => format!("authentication required: {why}"),
            AppError::Forbidden(why) => format!("forbidden: {why}"),
            AppError::NotFound(what) => format!("{what} not found"),
            AppError::BadInput { field, message } => {
                format!("invalid value for `{field}`: {message}")
            }
            AppError::InvalidTransition { from, to } => format!("cannot go from {from} to {to}"),
            AppError::Conflict(why) => format!("conflict: {why}"),
            AppError::Unavailable => {
                "internal error: the database cannot write now (a full disk or an I/O error); \
                 try again later"
                    .into()
            }
            AppError::Internal(why) => format!("internal error: {why}"),
        }
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
            AppError::Unavailable | AppError::Internal(_) => "INTERNAL",
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
