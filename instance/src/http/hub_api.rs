//! Hub-only routes: local realm creation, people and profiles, and the admin API the
//! operator uses to register worker realms.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, Caller, Json};
use crate::error::{Error, ErrorBody, Result};
use crate::profile::{self, ProfileInput, UserView};
use crate::realm::{self, RealmId, RealmInfo};
use crate::text::Line;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_realm))
        .routes(routes!(federation_realms))
        .routes(routes!(me))
        .routes(routes!(put_my_profile))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewRealm {
    id: RealmId,
    display_name: Line<200>,
}

/// Creates a realm hosted by the hub itself; the caller becomes its GOD. Needs GOD in
/// the hub realm.
#[utoipa::path(post, path = "/api/v1/realms", tag = "realms", request_body = NewRealm,
    responses((status = 201, body = RealmInfo), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn create_realm(
    State(s): State<AppState>,
    Caller(me): Caller,
    Json(body): Json<NewRealm>,
) -> Result<(StatusCode, Json<RealmInfo>)> {
    let info = realm::create_hosted(&s.db, me, &body.id, &body.display_name).await?;
    s.reload_local_realms().await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// A realm of the federation, as people see it named.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FederationRealm {
    pub id: RealmId,
    pub display_name: String,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct FederationRealms {
    /// Sorted by id.
    pub items: Vec<FederationRealm>,
}

/// The caller's realms (those they are in, and those where something waits for their
/// decision) and the hub's, with their display names: what clients name a realm by,
/// e.g. one a merged answer left out. Not every realm of the federation: a realm may be
/// unlisted, and who else is in the federation is not everyone's business.
#[utoipa::path(get, path = "/api/v1/federation/realms", tag = "realms",
    responses((status = 200, body = FederationRealms), (status = 401, body = ErrorBody)))]
async fn federation_realms(
    State(s): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<FederationRealms>> {
    let bff = s
        .bff
        .as_ref()
        .ok_or_else(|| Error::NotFound("no such route on a worker".into()))?;
    let mut mine = bff.caller_realms(me).await?;
    mine.extend(crate::federation::pending_realms(&s.db, me).await?);
    let mut items: Vec<FederationRealm> = bff
        .registry
        .all()
        .await
        .values()
        .filter(|e| e.id.is_hub() || mine.contains(&e.id))
        .map(|e| FederationRealm {
            id: e.id.clone(),
            display_name: e.display_name.clone(),
        })
        .collect();
    items.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(FederationRealms { items }))
}

/// The caller, with their full profile.
#[utoipa::path(get, path = "/api/v1/me", tag = "users",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
async fn me(State(s): State<AppState>, Caller(me): Caller) -> Result<Json<UserView>> {
    Ok(Json(profile::view_own(&s.db, me).await?))
}

#[utoipa::path(put, path = "/api/v1/me/profile", tag = "users", request_body = ProfileInput,
    responses((status = 200, body = UserView), (status = 422, body = ErrorBody)))]
async fn put_my_profile(
    State(s): State<AppState>,
    Caller(me): Caller,
    Json(body): Json<ProfileInput>,
) -> Result<Json<UserView>> {
    let mut g = s.db.global().await?;
    profile::put_profile(&mut g, me, &body).await?;
    g.commit().await?;
    Ok(Json(profile::view_own(&s.db, me).await?))
}
