//! [`RealmScope`]: "a signed-in caller inside this realm" as one extractor, so a realm
//! handler is four lines — extract, call the domain, commit, answer:
//!
//! ```ignore
//! async fn get_group(
//!     RealmScope { mut tx, grants }: RealmScope,
//!     Path(IdPath { id, .. }): Path<IdPath>,
//! ) -> Result<Json<Group>> {
//!     let g = group::get_visible(&mut tx, &grants, id).await?;
//!     tx.commit().await?;
//!     Ok(Json(g))
//! }
//! ```
//!
//! The domain function decides what the caller may do (every permission check lives
//! there, against the `grants`); the handler never opens a transaction by hand. Put
//! `RealmScope` first among the handler's arguments, so the answer to a request without a
//! valid token is 401 and to a realm this instance does not serve 404, whatever else is
//! wrong with it; a body extractor (`Json`) comes last, as axum requires.
//!
//! The transaction (and so a pool connection) is opened before axum hands the body to the
//! body extractor; that costs nothing because the router's `buffer_body` layer has already
//! read the whole body (under a deadline), so a client trickling its body in holds no
//! connection.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::{AppState, Caller, LocalRealm};
use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::policy::Grants;

/// A signed-in caller inside a realm this instance serves: the realm transaction
/// (`pek.realm_id` set, so row-level security confines every statement to the realm)
/// and what the caller holds there.
///
/// Rejections, in this order: 401 without a valid hub token (`Authorization: Bearer …`
/// or the session cookie), 400 for a malformed realm id, 404 for a realm this instance
/// does not serve. The transaction rolls back unless the handler commits it, so an error
/// answer never leaves half-written rows.
pub struct RealmScope {
    pub tx: RealmTx,
    pub grants: Grants,
}

impl FromRequestParts<AppState> for RealmScope {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Caller(me) = Caller::from_request_parts(parts, state).await?;
        let LocalRealm(realm) = LocalRealm::from_request_parts(parts, state).await?;
        let mut tx = state.db.realm(&realm).await?;
        let grants = Grants::load(&mut tx, me).await?;
        Ok(RealmScope { tx, grants })
    }
}
