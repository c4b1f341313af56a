//! The hub's registry API for the operator (DESIGN §5): worker realms are registered,
//! updated and removed with the operator's token.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::OperatorToken;
use crate::error::{Error, ErrorBody, Result};
use crate::http::{AppState, Json, Path, Query};
use crate::realm::{self, RealmId, RealmInfo, Registration};
use crate::text::Line;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(admin_list_realms))
        .routes(routes!(admin_put_realm, admin_delete_realm))
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
async fn admin_list_realms(_: OperatorToken, State(s): State<AppState>) -> Result<Json<Registry>> {
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
    _: OperatorToken,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Registration>,
) -> Result<(StatusCode, Json<RealmInfo>)> {
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
    _: OperatorToken,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Deregistration>,
) -> Result<StatusCode> {
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
