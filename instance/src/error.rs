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
    Unavailable(String),
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
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            Error::Unavailable(_) => "unavailable",
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
            other => other,
        })
    }
}

/// Messages for constraint violations, by constraint name. A violation we know about is
/// the client's mistake (e.g. a duplicate name); one we don't is a bug and stays a 500.
fn constraint_error(code: &str, constraint: &str) -> Option<Error> {
    let msg = match constraint {
        "groups_realm_id_name_key" => "a group with this name already exists in this realm",
        "groups_realm_id_parent_id_fkey" => "parent group not found in this realm",
        "memberships_realm_id_user_id_group_id_key" | "memberships_one_live" => {
            "this user is already a member of this group"
        }
        "memberships_realm_id_group_id_fkey" => "group not found in this realm",
        "semesters_realm_id_name_key" => "a semester with this name already exists in this realm",
        "semesters_one_current" => "another semester is already current in this realm",
        "policies_realm_id_name_key" => "a policy with this name already exists in this realm",
        "policies_realm_id_parent_id_fkey" => "parent policy not found in this realm",
        "policies_one_god" => "this realm already has a GOD policy",
        "statements_realm_id_group_id_fkey" => "group not found in this realm",
        "statements_realm_id_policy_id_fkey" | "policy_assignments_realm_id_policy_id_fkey" => {
            "policy not found in this realm"
        }
        "policy_assignments_pkey" => "this policy is already assigned to this user",
        "realm_members_user_id_fkey" => "no such user",
        "usernames_pkey" => "this username is taken",
        "realms_pkey" => "a realm with this id already exists",
        "users_auth_sch_id_key" => "a user with this AuthSCH id already exists",
        "external_account_links_owner_id_protocol_account_name_key" => {
            "this external account is listed twice"
        }
        other => {
            let (msg, conflict) = crate::evaluation::constraint_message(other)?;
            return Some(if conflict {
                Error::Conflict(msg.to_string())
            } else {
                Error::Unprocessable(msg.to_string())
            });
        }
    };
    Some(match code {
        "23505" => Error::Conflict(msg.to_string()),
        _ => Error::Unprocessable(msg.to_string()),
    })
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
            if let Some(known) = db.constraint().and_then(|c| constraint_error(&code, c)) {
                return known;
            }
            match code.as_str() {
                // check_violation / not_null: input that passed our validation but not
                // the schema's; still the client's input.
                "23514" => {
                    return Error::Unprocessable(format!(
                        "value rejected by constraint {}",
                        db.constraint().unwrap_or("?")
                    ))
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
            },
        };
        (status, axum::Json(body)).into_response()
    }
}
