//! Every `/internal/v1/…` route: service-to-service calls, never a person's token. Each
//! kind of caller proves itself with one extractor:
//!
//! - [`OperatorToken`]: the operator registering worker realms with the hub
//!   (`/internal/v1/realms…`, [`registry`]);
//! - [`RealmToken`]: a realm's token — a worker speaking for its realm to the hub
//!   ([`workers`]: membership reports, registration, the user directory), or the hub
//!   asking a realm for its part of the service directory ([`HubScope`]);
//! - [`ServiceToken`]: a trusted service reading the hub's directory ([`directory`]).
//!
//! Put the credential extractor first among a handler's arguments, so a call without the
//! right token is a 401 whatever else is wrong with it.

mod directory;
mod merge;
mod registry;
mod workers;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;

use super::{AppState, LocalRealm, Path};
use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::realm::RealmId;

/// Routes every instance serves: the realm part of the service directory and of merging
/// two people, asked by the hub.
pub fn realm_routes() -> OpenApiRouter<AppState> {
    directory::realm_routes().merge(merge::realm_routes())
}

/// Hub-only routes: the operator's registry API, the workers' calls, the service directory.
pub fn hub_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(registry::routes())
        .merge(workers::routes())
        .merge(directory::hub_routes())
}

/// The operator, by one of the hub's accepted operator tokens (`Authorization: Bearer`,
/// compared in constant time); 401 otherwise.
pub struct OperatorToken;

impl FromRequestParts<AppState> for OperatorToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = super::extract::bearer_header(&parts.headers)
            .ok_or_else(|| Error::Unauthorized("missing operator bearer token".into()))?;
        if state.operator_token_ok(token.trim()) {
            Ok(OperatorToken)
        } else {
            Err(Error::Unauthorized("invalid operator token".into()))
        }
    }
}

/// The realm in the path, proven by that realm's token (`Authorization: Bearer`): on the
/// hub a token derived from the federation secret for that realm, on a worker its own
/// realm token. 400 for a malformed realm id, 401 for a missing or wrong token, or when
/// this instance has no realm tokens to compare with.
pub struct RealmToken(pub RealmId);

impl FromRequestParts<AppState> for RealmToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Path(p): Path<std::collections::HashMap<String, String>> =
            Path::from_request_parts(parts, state).await?;
        let realm = RealmId::parse(
            p.get("realm")
                .ok_or_else(|| Error::BadRequest("missing realm in path".into()))?,
        )?;
        let worker_token = state
            .directory
            .as_ref()
            .is_some_and(|d| d.has_realm_token());
        if state.federation_secret.is_none() && !worker_token {
            return Err(Error::Unauthorized(
                "this instance accepts no realm tokens (PEK_FEDERATION_SECRET_FILE is not set)"
                    .into(),
            ));
        }
        let presented = super::extract::bearer_header(&parts.headers)
            .ok_or_else(|| Error::Unauthorized("missing realm bearer token".into()))?;
        let ok = state
            .federation_secret
            .as_ref()
            .is_some_and(|secret| crate::federation::realm_token_ok(secret, &realm, presented))
            || state
                .directory
                .as_ref()
                .is_some_and(|d| d.realm_token_ok(presented));
        if ok {
            Ok(RealmToken(realm))
        } else {
            Err(Error::Unauthorized(format!(
                "invalid token for realm {realm}"
            )))
        }
    }
}

/// The hub inside a realm this instance serves: 404 for other realms, then the realm's
/// token ([`RealmToken`]), then the realm transaction. No person's grants: what the hub
/// may read is decided by the route (the service directory's fixed answers).
pub struct HubScope {
    pub tx: RealmTx,
}

impl FromRequestParts<AppState> for HubScope {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let LocalRealm(realm) = LocalRealm::from_request_parts(parts, state).await?;
        RealmToken::from_request_parts(parts, state).await?;
        Ok(HubScope {
            tx: state.db.realm(&realm).await?,
        })
    }
}

/// A trusted service, by its directory token (`Authorization: Bearer`); carries the
/// service's name (for the log). 401 otherwise.
pub struct ServiceToken(pub String);

impl FromRequestParts<AppState> for ServiceToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let presented = super::extract::bearer_header(&parts.headers)
            .ok_or_else(|| Error::Unauthorized("missing service bearer token".into()))?;
        let name = state
            .directory
            .as_ref()
            .and_then(|d| d.service(presented))
            .ok_or_else(|| Error::Unauthorized("invalid service token".into()))?;
        Ok(ServiceToken(name.to_string()))
    }
}
