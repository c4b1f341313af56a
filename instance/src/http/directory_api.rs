//! Hub: the user directory workers use (`/internal/v1/realms/{realm}/users…`), so a
//! worker refuses made-up user ids and can name its administrators before their first
//! login. Authenticated with the worker's realm token, like its membership reports.

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{presented_token, AppState, Json, Path};
use crate::directory::{AuthSchRef, UserRef};
use crate::error::{Error, ErrorBody, Result};
use crate::realm::RealmId;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ensure_user))
        .routes(routes!(user_exists))
}

/// The realm a worker speaks for, proven by its realm token.
fn worker_of(s: &AppState, headers: &HeaderMap, realm: &str) -> Result<RealmId> {
    let realm = RealmId::parse(realm)?;
    let secret = s.federation_secret.as_ref().ok_or_else(|| {
        Error::Unauthorized(
            "this hub answers no workers (PEK_FEDERATION_SECRET_FILE is not set)".into(),
        )
    })?;
    let presented = presented_token(headers)
        .ok_or_else(|| Error::Unauthorized("missing realm bearer token".into()))?;
    if !crate::federation::realm_token_ok(secret, &realm, &presented) {
        return Err(Error::Unauthorized(format!(
            "invalid token for realm {realm}"
        )));
    }
    Ok(realm)
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct UserPath {
    realm: String,
    id: Uuid,
}

/// Whether a user exists: 200 with the id, 404 when not.
#[utoipa::path(get, path = "/internal/v1/realms/{realm}/users/{id}", tag = "admin",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = UserRef), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn user_exists(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(UserPath { realm, id }): Path<UserPath>,
) -> Result<Json<UserRef>> {
    worker_of(&s, &headers, &realm)?;
    let mut g = s.db.global().await?;
    let exists = crate::profile::user_exists(&mut g, id).await?;
    g.commit().await?;
    if exists {
        Ok(Json(UserRef { id }))
    } else {
        Err(Error::not_found(format!("user {id}")))
    }
}

/// The user of an AuthSCH id, created if the person never logged in (a realm's
/// configured administrators). Idempotent.
#[utoipa::path(post, path = "/internal/v1/realms/{realm}/users", tag = "admin",
    params(("realm" = String, Path)), request_body = AuthSchRef,
    responses((status = 200, body = UserRef), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn ensure_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(realm): Path<String>,
    Json(body): Json<AuthSchRef>,
) -> Result<Json<UserRef>> {
    let realm = worker_of(&s, &headers, &realm)?;
    let mut g = s.db.global().await?;
    let id = crate::profile::ensure_user(&mut g, &body.auth_sch_id).await?;
    g.commit().await?;
    tracing::info!(realm = %realm, user = %id, "user ensured for a worker (configured administrator)");
    Ok(Json(UserRef { id }))
}
