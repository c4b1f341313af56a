//! One error type for the whole service. Every failure a client can cause maps to a 4xx
//! with a message saying what is wrong; anything else is a 500 whose details stay in the
//! log (never in the response).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Unavailable(String),
    /// A value the schema's own checks refused (a CHECK constraint, or a trigger raising
    /// check_violation): the client's input, a 422, which `on_constraint` can still
    /// tell apart by the constraint's name.
    #[error("value rejected by constraint {constraint}")]
    Check {
        constraint: String,
        source: sqlx::Error,
    },
    /// A refusal with a stable reason (`ErrorDetail::reason`) a client can act on or
    /// say in its own words; the status and `code` stay those of its kind.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        reason: &'static str,
        message: String,
    },
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Check { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Refused { status, .. } => *status,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::Unprocessable(_) => "unprocessable",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::RequestTimeout(_) => "request_timeout",
            Error::Unavailable(_) => "unavailable",
            Error::Check { .. } => "unprocessable",
            Error::Refused { status, .. } => match *status {
                StatusCode::FORBIDDEN => "forbidden",
                StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
                StatusCode::BAD_REQUEST => "bad_request",
                StatusCode::SERVICE_UNAVAILABLE => "unavailable",
                _ => "conflict",
            },
            Error::Internal(_) => "internal",
        }
    }

    pub fn forbidden(what: impl std::fmt::Display) -> Self {
        Error::Forbidden(format!("you are not allowed to {what}"))
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Error::NotFound(format!("{what} not found"))
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Unprocessable(msg.into())
    }

    /// A 409 with a reason (see [`Error::Refused`]).
    pub fn conflict_because(reason: &'static str, msg: impl Into<String>) -> Self {
        Error::Refused {
            status: StatusCode::CONFLICT,
            reason,
            message: msg.into(),
        }
    }
}

/// Constraint violations mapped where the query is made (realworld-axum-sqlx's
/// `on_constraint`): `query.await.on_constraint("groups_realm_id_name_key", |_| …)?`.
/// A violation we know about is the client's mistake (e.g. a duplicate name) and says
/// so; one nobody mapped is a bug and stays a 500. Calls chain: an error that is not a
/// violation of `name` passes through unchanged, still carrying its database error.
pub trait ResultExt<T> {
    fn on_constraint(
        self,
        name: &str,
        map: impl FnOnce(&dyn sqlx::error::DatabaseError) -> Error,
    ) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn on_constraint(
        self,
        name: &str,
        map: impl FnOnce(&dyn sqlx::error::DatabaseError) -> Error,
    ) -> Result<T> {
        self.map_err(|e| match e.into() {
            Error::Internal(source) => match source.downcast_ref::<sqlx::Error>() {
                Some(sqlx::Error::Database(db)) if db.constraint() == Some(name) => map(&**db),
                _ => Error::Internal(source),
            },
            Error::Check { source, constraint } => match &source {
                sqlx::Error::Database(db) if db.constraint() == Some(name) => map(&**db),
                _ => Error::Check { source, constraint },
            },
            other => other,
        })
    }
}

/// A safe description of a data exception (the server's own message may quote input).
fn data_error_message(sqlstate: &str) -> &'static str {
    match sqlstate {
        "22021" => "text must be valid UTF-8 without NUL bytes",
        "22007" | "22008" => "date or time out of range or malformed",
        "22003" => "number out of range",
        "22P02" => "malformed value",
        "22001" => "value too long",
        _ => "the database refused this value",
    }
}

impl From<crate::text::TextError> for Error {
    fn from(e: crate::text::TextError) -> Self {
        Error::Unprocessable(e.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            match code.as_str() {
                // check_violation / not_null: input that passed our validation but not
                // the schema's; still the client's input.
                "23514" => {
                    return Error::Check {
                        constraint: db.constraint().unwrap_or("?").to_string(),
                        source: err,
                    }
                }
                // string_data_right_truncation: a value longer than its column
                "22001" => return Error::Unprocessable("invalid value".into()),
                // Any other data exception (class 22: a NUL byte in text, a date or number
                // out of range, an unparsable value) is the client's input reaching the
                // database; validation should have caught it, but it is never a 500.
                c if c.starts_with("22") => {
                    return Error::BadRequest(format!("invalid value: {}", data_error_message(c)))
                }
                // serialization_failure / deadlock: safe to retry
                "40001" | "40P01" => {
                    return Error::Conflict("concurrent update; please retry".into())
                }
                _ => {}
            }
        }
        if matches!(err, sqlx::Error::PoolTimedOut) {
            return Error::Unavailable("database busy; please retry".into());
        }
        Error::Internal(anyhow::Error::new(err))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `not_found`, `conflict`.
    pub code: String,
    /// What is wrong, for a person.
    pub message: String,
    /// For some refusals, a stable reason a client can act on or say in its own
    /// language: `season_closed`, `scoreboard_locked`, `only_leader`,
    /// `applications_closed`, `group_archived`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Error::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message,
                reason: match &self {
                    Error::Refused { reason, .. } => Some(reason),
                    _ => None,
                },
            },
        };
        (status, axum::Json(body)).into_response()
    }
}
