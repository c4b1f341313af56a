//! `pek-operator`: the kube-runtime controller for `Realm` (DESIGN §6).
//!
//! Reconcile is level-based and idempotent: finalizer → database (roles + database if absent,
//! credentials in the `<name>-db` Secret) → worker objects (server-side apply, only when they
//! differ from what is wanted) → hub registration → status. See [`controller::reconcile`].

pub mod bench;
pub mod conditions;
pub mod config;
pub mod controller;
pub mod db;
pub mod desired;
pub mod diff;
pub mod events;
pub mod fakeapi;
pub mod federation;
pub mod hub;
pub mod metrics;
pub mod run;

/// Everything that can go wrong in a reconcile. The `reason()` is the condition reason and the
/// metrics label; the message is what a user sees in `kubectl describe realm`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Realm: {0}")]
    InvalidSpec(String),
    #[error("admin Secret {0:?} not found in the Realm's namespace; create it (keys `uri`, or `host`, `username`, `password`) or fix spec.database.adminSecretRef")]
    AdminSecretNotFound(String),
    #[error("admin Secret is not usable: {0}")]
    AdminSecretInvalid(String),
    #[error("database: {0}")]
    Database(String),
    #[error("hub: {0}")]
    Hub(String),
    /// Another Realm owns the realm id or the database: this one is refused, and nothing of
    /// the other's is touched.
    #[error("{0}")]
    Conflict(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// A short CamelCase reason (condition reason, metrics label).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::AdminSecretNotFound(_) => "AdminSecretNotFound",
            Error::AdminSecretInvalid(_) => "AdminSecretInvalid",
            Error::Database(_) => "DatabaseError",
            Error::Hub(_) => "HubError",
            Error::Conflict(_) => "Conflict",
            Error::Kube(_) => "KubernetesApiError",
            Error::Finalizer(_) => "FinalizerError",
            Error::Internal(_) => "InternalError",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with its sources ("error sending request: client error (Connect): tcp connect
/// error: Connection refused"), so a message keeps the cause, each part once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl Error {
    /// The message without the kind prefix (`hub: `, `database: `), for wrapping it in a new
    /// error of the same kind without stuttering.
    pub fn detail(&self) -> String {
        match self {
            Error::InvalidSpec(m)
            | Error::AdminSecretInvalid(m)
            | Error::Database(m)
            | Error::Hub(m)
            | Error::Conflict(m)
            | Error::Finalizer(m)
            | Error::Internal(m) => m.clone(),
            other => other.to_string(),
        }
    }
}
