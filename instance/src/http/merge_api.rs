//! Hub-only: merging two people (see `person_merge.rs`). A hub administrator (GOD of the
//! hub realm) merges person B into person A; A and the administrators read the record.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{AppState, Caller, Json, Path};
use crate::error::{Error, ErrorBody, Result};
use crate::person_merge::{self, MergeView};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(merge_into, merges_of))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MergeRequest {
    /// The person merged away (B): their memberships, roles, points and identities
    /// become this person's in every realm; their profile is kept as history.
    from: Uuid,
}

/// Merges person `from` (B) into person `{id}` (A); hub administrators only. Answers
/// 200 when every realm has done its part, 202 while some realm (down, in maintenance)
/// is pending: the hub finishes it in its periodic pass, or at once when the same
/// request is sent again. Refused: a person into themselves (422), an unknown person
/// (404), B already merged (409 `already_merged`), A merged into someone else (409
/// `target_merged`), B while a merge into B is still pending (409 `merge_pending`).
#[utoipa::path(post, path = "/api/v1/users/{id}/merges", tag = "users",
    params(("id" = Uuid, Path, description = "the person who stays (A)")),
    request_body = MergeRequest,
    responses((status = 200, body = MergeView, description = "merged in every realm"),
              (status = 202, body = MergeView, description = "merged; some realms pending"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn merge_into(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<MergeRequest>,
) -> Result<(StatusCode, Json<MergeView>)> {
    require_hub_admin(&s, me).await?;
    let merge = person_merge::start(&s, me, body.from, id).await?;
    person_merge::drive(&s, merge).await?;
    let view = person_merge::view(&s.db, merge).await?;
    let status = if view.completed_at.is_some() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(view)))
}

/// The people merged into person `{id}`, newest first, with each realm's progress: for
/// the person themselves and hub administrators.
#[utoipa::path(get, path = "/api/v1/users/{id}/merges", tag = "users",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<MergeView>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn merges_of(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<MergeView>>> {
    if id != me {
        require_hub_admin(&s, me).await?;
    }
    let mut g = s.db.global().await?;
    let exists = crate::profile::user_exists(&mut g, id).await?;
    g.commit().await?;
    if !exists {
        return Err(Error::not_found(format!("user {id}")));
    }
    Ok(Json(person_merge::merges_into(&s.db, id).await?))
}

async fn require_hub_admin(s: &AppState, me: Uuid) -> Result<()> {
    if crate::policy::hub_admin(&s.db, me).await? {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "only hub administrators (GOD of the hub realm) may merge people or read \
             another person's merges"
                .into(),
        ))
    }
}
