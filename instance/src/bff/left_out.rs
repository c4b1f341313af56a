//! Why a realm is missing from a merged answer. Every merged answer lists the realms it
//! left out in `leftOut`, each with a reason a client can act on (wait and retry, tell the
//! person the realm is in maintenance, report a failing realm), next to `unavailable`
//! (the same realms, ids only). What exactly went wrong stays in the hub's log: it can
//! name internal addresses, and the caller has no use for it.

use serde::{Deserialize, Serialize};

use crate::realm::RealmId;

/// Why a realm gave no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// No answer within the hub's per-realm deadline.
    Timeout,
    /// The realm's worker could not be reached (connection refused or broken).
    Unreachable,
    /// The realm answered with a server error (after the retries) or a status the call
    /// does not expect, or the hub could not make the call.
    Failing,
    /// The realm answered something the hub could not read.
    BadAnswer,
    /// The health checks mark the realm's worker down: it was not asked.
    Down,
    /// The realm is in maintenance: it was not asked.
    Maintenance,
}

impl Reason {
    /// As the API writes it (also the metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Unreachable => "unreachable",
            Reason::Failing => "failing",
            Reason::BadAnswer => "badAnswer",
            Reason::Down => "down",
            Reason::Maintenance => "maintenance",
        }
    }
}

/// A realm's failure: the reason callers get and the detail the log gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Failure {
            reason,
            detail: detail.into(),
        }
    }
}

impl Failure {
    /// The 503 of a call made for this realm alone (a forwarded call), with the reason in
    /// `error.reason` and `message` as its message.
    pub fn into_error(self, message: String) -> crate::error::Error {
        crate::error::Error::Refused {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            reason: self.reason.as_str(),
            message,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// A realm a merged answer left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeftOut {
    pub realm: RealmId,
    pub reason: Reason,
}
