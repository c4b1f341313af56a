//! `pek-operator`: the kube-runtime controller for `Realm` (DESIGN §6).
//!
//! Reconcile is level-based and idempotent, in phases (one file each under [`reconcile`]):
//! read and validate the Realm and what it references → provision the database (roles +
//! database if absent, credentials in the `<name>-db` Secret) → build the desired worker
//! objects → apply them (server-side apply, only when they differ from what is wanted) →
//! register with the hub → one status write. See [`reconcile::reconcile`].
//!
//! The public API is what the binary, the operator's tests and examples, and the workspace's
//! tests use; everything else is private to the crate. Test doubles live in `testing`
//! (compiled for the crate's tests and with the `testing` feature only).

pub mod cache;
pub mod config;
pub mod db;
pub mod dump;
mod error;
mod events;
pub mod federation;
pub mod hub;
pub mod metrics;
pub mod reconcile;
pub mod run;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{BoxError, Error, HubCause, Result};
