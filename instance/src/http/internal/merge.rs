//! A realm's part of merging two people, asked by the hub (see `person_merge.rs`):
//! `POST /internal/v1/realms/{realm}/people/merge` with the realm's token.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::HubScope;
use crate::error::{ErrorBody, Result};
use crate::http::{AppState, Json};
use crate::person_merge::{self, Moved, RealmMergeRequest};

pub fn realm_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(merge_people))
}

/// Moves person `from`'s memberships, roles, points and every row naming them in this
/// realm to person `into` (idempotent: a repeated call moves nothing more and answers
/// zeros). Bearer: the realm's token (the hub).
#[utoipa::path(post, path = "/internal/v1/realms/{realm}/people/merge", tag = "internal",
    params(("realm" = String, Path)), request_body = RealmMergeRequest,
    responses((status = 200, body = Moved), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn merge_people(
    HubScope { mut tx }: HubScope,
    Json(body): Json<RealmMergeRequest>,
) -> Result<Json<Moved>> {
    let moved = person_merge::merge_in_realm(&mut tx, body.from, body.into).await?;
    tx.commit().await?;
    tracing::info!(from = %body.from, into = %body.into, ?moved, "people merged in this realm");
    Ok(Json(moved))
}
