//! Hub: the calls a worker makes, each proven by the worker's realm token
//! ([`RealmToken`]): its membership reports (transactional outbox) and registration time,
//! which keep the federation table up to date, and the user directory, so a worker refuses
//! made-up user ids and can name its administrators before their first login.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::RealmToken;
use crate::directory::{AuthSchRef, UserRef};
use crate::error::{Error, ErrorBody, Result};
use crate::federation::{self, MembershipReport};
use crate::http::{AppState, Json, Path};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report_members))
        .routes(routes!(realm_registration))
        .routes(routes!(ensure_user))
        .routes(routes!(user_exists))
}

/// A worker asks when its realm was registered. A registration the worker has not yet
/// filled (a realm deregistered and registered again, whose federation rows went with
/// the deregistration) makes it resend its whole member list. Authenticated with the
/// realm's token.
#[utoipa::path(get, path = "/internal/v1/realms/{realm}/registration", tag = "admin",
    params(("realm" = String, Path)),
    responses((status = 200, body = federation::RegistrationInfo),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn realm_registration(
    RealmToken(realm): RealmToken,
    State(s): State<AppState>,
) -> Result<Json<federation::RegistrationInfo>> {
    let mut g = s.db.global().await?;
    let info = federation::registration(&mut g, &realm).await?;
    g.commit().await?;
    Ok(Json(info))
}

/// A worker reports membership changes of its realm (transactional outbox). Idempotent:
/// events already applied are skipped. Authenticated with the realm's token.
#[utoipa::path(post, path = "/internal/v1/realms/{realm}/members", tag = "admin",
    params(("realm" = String, Path)), request_body = MembershipReport,
    responses((status = 204), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn report_members(
    RealmToken(realm): RealmToken,
    State(s): State<AppState>,
    Json(report): Json<MembershipReport>,
) -> Result<StatusCode> {
    let bff = s
        .bff
        .as_ref()
        .ok_or_else(|| Error::NotFound("no such route on a worker".into()))?;
    let mut g = s.db.global().await?;
    let changed = federation::apply_report(&mut g, &realm, &report).await?;
    g.commit().await?;
    for u in changed {
        bff.cache.invalidate(u).await;
    }
    metrics::counter!("pek_federation_events_total").increment(report.events.len() as u64);
    Ok(StatusCode::NO_CONTENT)
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
    _: RealmToken,
    State(s): State<AppState>,
    Path(UserPath { id, .. }): Path<UserPath>,
) -> Result<Json<UserRef>> {
    let mut g = s.db.global().await?;
    let exists = crate::profile::user_exists(&mut g, id).await?;
    g.commit().await?;
    if exists {
        Ok(Json(UserRef { id }))
    } else {
        Err(Error::not_found(format!("user {id}")))
    }
}

/// The user of an AuthSCH id (or `authsch:<id>`, or `<provider>:<subject>` of another
/// sign-in provider), created if the person never signed in (a realm's configured
/// administrators). Idempotent.
#[utoipa::path(post, path = "/internal/v1/realms/{realm}/users", tag = "admin",
    params(("realm" = String, Path)), request_body = AuthSchRef,
    responses((status = 200, body = UserRef), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn ensure_user(
    RealmToken(realm): RealmToken,
    State(s): State<AppState>,
    Json(body): Json<AuthSchRef>,
) -> Result<Json<UserRef>> {
    let mut g = s.db.global().await?;
    let id = crate::identity::ensure_named(&mut g, &s.naming(), &body.auth_sch_id).await?;
    g.commit().await?;
    tracing::info!(realm = %realm, user = %id, "user ensured for a worker (configured administrator)");
    Ok(Json(UserRef { id }))
}
