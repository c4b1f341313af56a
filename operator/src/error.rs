//! Everything that can go wrong in a reconcile, each with its cause kept as the error's source
//! (a `sqlx::Error`, `reqwest::Error`, `kube::Error`, ...), so a condition message can say
//! "connection refused" instead of "could not connect".

use pek_crds::condition::Reason;

/// Any error with a source, boxed (for causes of several kinds).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The reconciler's error. Its [`Error::reason`] is the condition reason and the metrics label;
/// [`Error::message`] (the error and all its sources) is what a user sees in
/// `kubectl describe realm`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Realm: {0}")]
    InvalidSpec(String),
    #[error("admin Secret {0:?} not found in the Realm's namespace; create it (keys `uri`, or `host`, `username`, `password`) or fix spec.database.adminSecretRef")]
    AdminSecretNotFound(String),
    #[error("admin Secret is not usable: {problem}")]
    AdminSecretInvalid {
        problem: String,
        #[source]
        source: Option<BoxError>,
    },
    /// A statement or connection to the Postgres server failed.
    #[error("database: {context}")]
    Database {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    /// The Postgres server did not answer in time.
    #[error("database: {0}")]
    DatabaseTimeout(String),
    /// The hub's admin API failed, refused, or could not be reached.
    #[error("hub: {context}")]
    Hub {
        context: String,
        #[source]
        source: Option<HubCause>,
    },
    /// Another Realm owns the realm id or the database: this one is refused, and nothing of
    /// the other's is touched.
    #[error("{0}")]
    Conflict(String),
    #[error("Kubernetes API")]
    Kube(#[from] kube::Error),
    #[error("finalizer")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("serialising {what}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("internal: {0}")]
    Internal(String),
    /// A deletion step that has to wait (the hub cannot be told, the database cannot be
    /// dropped), with what the user can do about it.
    #[error("{}; {hint}", error_chain(.source))]
    DeletionBlocked {
        reason: Reason,
        hint: &'static str,
        #[source]
        source: Box<Error>,
    },
    /// A `deletionPolicy: Delete` Realm is deleted but dropping its database is not confirmed:
    /// the finalizer stays and the message says how to confirm or keep the database. Not a
    /// failure: the reconciler waits for the Realm to change.
    #[error("{0}")]
    DeletionUnconfirmed(String),
    /// The dump before a DROP could not be written (so nothing is dropped).
    #[error("{0}")]
    Dump(String),
    /// `spec.database.restoreFrom` cannot be restored (missing or unreadable dump, another
    /// realm's, a newer schema's, or a database that already holds data).
    #[error("{0}")]
    Restore(String),
}

/// Why the hub could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum HubCause {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The condition reason (also the Warning Event reason and the metrics label).
    pub fn reason(&self) -> Reason {
        match self {
            Error::InvalidSpec(_) => Reason::InvalidSpec,
            Error::AdminSecretNotFound(_) => Reason::AdminSecretNotFound,
            Error::AdminSecretInvalid { .. } => Reason::AdminSecretInvalid,
            Error::Database { .. } | Error::DatabaseTimeout(_) => Reason::DatabaseError,
            Error::Hub { .. } => Reason::HubError,
            Error::Conflict(_) => Reason::Conflict,
            Error::Kube(_) => Reason::KubernetesApiError,
            Error::Finalizer(_) => Reason::FinalizerError,
            Error::Serialize { .. } | Error::Internal(_) => Reason::InternalError,
            Error::DeletionBlocked { reason, .. } => *reason,
            Error::DeletionUnconfirmed(_) => Reason::ConfirmationRequired,
            Error::Dump(_) => Reason::DumpFailed,
            Error::Restore(_) => Reason::RestoreFailed,
        }
    }

    /// The error with its sources, each part once: what condition messages and Events say.
    pub fn message(&self) -> String {
        error_chain(self)
    }

    /// `Database` with `context`, for `map_err`.
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
        let context = context.into();
        move |source| Error::Database { context, source }
    }

    /// `Hub` with `context` and its cause, for `map_err`.
    pub(crate) fn hub<C: Into<HubCause>>(context: impl Into<String>) -> impl FnOnce(C) -> Error {
        let context = context.into();
        move |cause| Error::Hub {
            context,
            source: Some(cause.into()),
        }
    }

    /// `Hub` without an underlying error (the hub answered, but not what was asked).
    pub fn hub_answer(context: impl Into<String>) -> Error {
        Error::Hub {
            context: context.into(),
            source: None,
        }
    }

    /// `Serialize` of `what`, for `map_err`.
    pub(crate) fn serialize(what: &'static str) -> impl FnOnce(serde_json::Error) -> Error {
        move |source| Error::Serialize { what, source }
    }

    /// `AdminSecretInvalid` without an underlying error.
    pub(crate) fn admin_secret(problem: impl Into<String>) -> Error {
        Error::AdminSecretInvalid {
            problem: problem.into(),
            source: None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with its sources ("hub: registering kszk: error sending request: client error
/// (Connect): tcp connect error: Connection refused"), each part once: a source whose text
/// the message already holds is not repeated.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{HttpHub, Hub, Registration};

    /// A port nothing listens on.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }

    #[tokio::test]
    async fn messages_name_the_cause_once() {
        let port = closed_port();
        let hub = HttpHub::with_token(&format!("http://127.0.0.1:{port}"), "t").expect("client");
        let reg = Registration {
            display_name: "x".into(),
            endpoint: "http://x".into(),
            version: "1".into(),
            owner_uid: None,
            providers: None,
        };
        let err = hub
            .register("kszk", &reg)
            .await
            .expect_err("nothing listens");
        assert_eq!(err.reason(), Reason::HubError);
        let message = err.message();
        assert!(
            message.starts_with("hub: registering kszk: ")
                && message.to_lowercase().contains("connection refused")
                && !message.contains("hub: hub:"),
            "{message}"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "the reqwest error is kept"
        );

        let blocked = Error::DeletionBlocked {
            reason: Reason::HubError,
            hint: "deletion waits for the hub",
            source: Box::new(err),
        };
        let text = blocked.message();
        assert!(
            text.ends_with("; deletion waits for the hub")
                && text.to_lowercase().contains("connection refused")
                && text.matches("hub: registering").count() == 1,
            "{text}"
        );

        let opts: sqlx::postgres::PgConnectOptions = format!("postgres://u:p@127.0.0.1:{port}/d")
            .parse()
            .expect("url");
        let sql = sqlx::ConnectOptions::connect(&opts)
            .await
            .map(|_| ())
            .map_err(Error::db("connecting to the Postgres server"))
            .expect_err("nothing listens");
        let text = sql.message();
        assert!(
            text.starts_with("database: connecting to the Postgres server: ")
                && text.to_lowercase().contains("refused"),
            "{text}"
        );
    }
}
