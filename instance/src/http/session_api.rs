//! Hub-only: ending server-side sessions (see `session.rs`) — one's own everywhere, or
//! another person's by a hub administrator (GOD of the hub realm).

use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{AppState, Caller, Json, Path};
use crate::error::{Error, ErrorBody, Result};
use crate::session::Sessions;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(revoke_my_sessions))
        .routes(routes!(revoke_user_sessions))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Revoked {
    /// How many live sessions were ended.
    revoked: u64,
}

fn sessions(s: &AppState) -> Result<&Sessions> {
    s.sessions
        .as_deref()
        .ok_or_else(|| Error::NotFound("sessions are kept by the hub only".into()))
}

/// Signs the caller out everywhere: every session of theirs ends now (their tokens are
/// refused from then on; by other hub replicas within a few seconds).
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "auth",
    responses((status = 200, body = Revoked)))]
async fn revoke_my_sessions(
    State(s): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<Revoked>> {
    let revoked = sessions(&s)?.revoke_all(me, me).await?;
    Ok(Json(Revoked { revoked }))
}

/// Ends every session of a person (hub administrators: GOD of the hub realm), e.g. for a
/// lost device or a compromised account. Their tokens are refused from then on (by other
/// hub replicas within a few seconds); they can sign in again.
#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions", tag = "auth",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Revoked), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn revoke_user_sessions(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Revoked>> {
    let store = sessions(&s)?;
    if id != me && !crate::policy::hub_admin(&s.db, me).await? {
        return Err(Error::Forbidden(
            "only hub administrators (GOD of the hub realm) may end another person's \
             sessions"
                .into(),
        ));
    }
    let mut g = s.db.global().await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(g.conn())
    .await?;
    g.commit().await?;
    if !exists {
        return Err(Error::not_found("user"));
    }
    let revoked = store.revoke_all(id, me).await?;
    tracing::info!(admin = %me, user = %id, revoked, "sessions revoked");
    Ok(Json(Revoked { revoked }))
}
