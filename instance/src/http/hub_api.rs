//! Hub-only routes: local realm creation, people and profiles, and the admin API the
//! operator uses to register worker realms.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, Caller, Json, Path, Query};
use crate::error::{Error, ErrorBody, Result};
use crate::policy::{self, Grants, Permission, Target};
use crate::profile::{self, ProfileInput, Scope, UserView};
use crate::realm::{self, RealmId, RealmInfo, Registration};
use crate::text::Line;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_realm))
        .routes(routes!(me))
        .routes(routes!(put_my_profile))
        .routes(routes!(admin_list_realms))
        .routes(routes!(admin_put_realm, admin_delete_realm))
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
    let mut tx = s.db.realm(&RealmId::hub()).await?;
    let grants = Grants::load(&mut tx, me).await?;
    policy::require(&mut tx, &grants, Permission::ManageRealm, Target::Realm).await?;
    if !grants.god {
        return Err(Error::forbidden(
            "create realms (GOD of the hub realm only)",
        ));
    }
    tx.commit().await?;
    let mut g = s.db.global().await?;
    let exists = realm::list(&mut g)
        .await?
        .iter()
        .any(|r| r.id == body.id.as_str());
    g.commit().await?;
    if exists {
        return Err(Error::Conflict(format!("realm {} already exists", body.id)));
    }
    realm::ensure_local(&s.db, &body.id, &body.display_name, Some(me)).await?;
    s.reload_local_realms().await?;
    let mut g = s.db.global().await?;
    let info = realm::list(&mut g)
        .await?
        .into_iter()
        .find(|r| r.id == body.id.as_str())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("realm vanished after creation")))?;
    g.commit().await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// The caller, with their full profile.
#[utoipa::path(get, path = "/api/v1/me", tag = "users",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
async fn me(State(s): State<AppState>, Caller(me): Caller) -> Result<Json<UserView>> {
    Ok(Json(profile::view_at(&s.db, me, Scope::Full).await?))
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
    Ok(Json(profile::view_at(&s.db, me, Scope::Full).await?))
}

// --- admin API for the operator (DESIGN §5) ----------------------------------------

fn operator(s: &AppState, headers: &HeaderMap) -> Result<()> {
    let token = super::extract::bearer_header(headers)
        .ok_or_else(|| Error::Unauthorized("missing operator bearer token".into()))?;
    if s.operator_token_ok(token.trim()) {
        Ok(())
    } else {
        Err(Error::Unauthorized("invalid operator token".into()))
    }
}

/// The owning Realm's uid of a registration call, trimmed; an empty one is a 400.
fn owner_uid(uid: Option<&Line<100>>) -> Result<Option<String>> {
    match uid.map(|u| u.trim()) {
        Some("") => Err(Error::BadRequest("ownerUid must not be empty".into())),
        other => Ok(other.map(str::to_string)),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Registry {
    items: Vec<RealmInfo>,
}

#[utoipa::path(get, path = "/internal/v1/realms", tag = "admin",
    responses((status = 200, body = Registry), (status = 401, body = ErrorBody)))]
async fn admin_list_realms(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Registry>> {
    operator(&s, &headers)?;
    let mut g = s.db.global().await?;
    let items = realm::list(&mut g).await?;
    g.commit().await?;
    Ok(Json(Registry { items }))
}

/// Registers (201) or updates (200) a worker realm. Idempotent.
#[utoipa::path(put, path = "/internal/v1/realms/{realm}", tag = "admin",
    params(("realm" = String, Path)), request_body = Registration,
    responses((status = 201, body = RealmInfo), (status = 200, body = RealmInfo),
              (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn admin_put_realm(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Registration>,
) -> Result<(StatusCode, Json<RealmInfo>)> {
    operator(&s, &headers)?;
    let id = RealmId::parse(&id)?;
    let mut g = s.db.global().await?;
    let owner = owner_uid(body.owner_uid.as_ref())?;
    if let Some(owner) = &owner {
        realm::check_owner(&mut g, &id, owner).await?;
    }
    let created = realm::register(&mut g, &id, &body).await?;
    if let Some(owner) = &owner {
        realm::claim(&mut g, &id, owner).await?;
    }
    let info = realm::list(&mut g)
        .await?
        .into_iter()
        .find(|r| r.id == id.as_str())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("registered realm not found")))?;
    g.commit().await?;
    s.reload_local_realms().await?;
    tracing::info!(realm = %id, created, "realm registered");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Deregistration {
    /// Kubernetes UID of the Realm deregistering: refused (409) when another Realm owns
    /// the entry. Without it the entry is removed whoever registered it.
    owner_uid: Option<Line<100>>,
}

/// Removes a worker realm from the registry; 204 also when it was not there.
#[utoipa::path(delete, path = "/internal/v1/realms/{realm}", tag = "admin",
    params(("realm" = String, Path), Deregistration),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn admin_delete_realm(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<Deregistration>,
) -> Result<StatusCode> {
    operator(&s, &headers)?;
    let id = RealmId::parse(&id)?;
    let mut g = s.db.global().await?;
    if let Some(owner) = owner_uid(q.owner_uid.as_ref())? {
        realm::check_owner(&mut g, &id, &owner).await?;
    }
    realm::deregister(&mut g, &id).await?;
    g.commit().await?;
    s.reload_local_realms().await?;
    tracing::info!(realm = %id, "realm deregistered");
    Ok(StatusCode::NO_CONTENT)
}
