//! `/api/v1/realms/{realm}/…` routes of community evaluation (issue 5): settings,
//! guidelines, scoreboards and their workflow, requests, discussion, point history.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{AppState, Caller, Json, LocalRealm, Path, Query};
use crate::db::RealmTx;
use crate::error::{Error, ErrorBody, Result};
use crate::evaluation::guideline::{
    self, CollectionWithGuidelines, Guideline, NewCollection, NewGuideline,
};
use crate::evaluation::history::{self, PointsQuery, UserPoints, UserTotal};
use crate::evaluation::request::{self, EntryAwardRequest, EntryInput, PointRequest, PointsInput};
use crate::evaluation::scoreboard::{
    self, Comment, NewScoreboard, Scoreboard, ScoreboardDetail, ScoreboardQuery,
};
use crate::evaluation::{self, Settings, SettingsInput};
use crate::page::{Page, PageParams};
use crate::policy::{self, Grants};
use crate::realm::RealmId;
use crate::text::Prose;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(create_collection))
        .routes(routes!(list_group_collections))
        .routes(routes!(get_collection))
        .routes(routes!(add_guideline))
        .routes(routes!(delete_guideline))
        .routes(routes!(list_scoreboards, create_scoreboard))
        .routes(routes!(get_scoreboard))
        .routes(routes!(submit_scoreboard))
        .routes(routes!(accept_scoreboard))
        .routes(routes!(reject_scoreboard))
        .routes(routes!(new_scoreboard_version))
        .routes(routes!(list_comments, add_comment))
        .routes(routes!(put_point_request, delete_point_request))
        .routes(routes!(put_entry_award_request, delete_entry_award_request))
        .routes(routes!(user_points))
        .routes(routes!(semester_points))
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct IdPath {
    realm: String,
    id: Uuid,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PointPath {
    realm: String,
    id: Uuid,
    membership: Uuid,
    guideline: Uuid,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct EntryPath {
    realm: String,
    id: Uuid,
    membership: Uuid,
}

async fn scoped(s: &AppState, realm: &RealmId, me: Uuid) -> Result<(RealmTx, Grants)> {
    let mut tx = s.db.realm(realm).await?;
    let grants = Grants::load(&mut tx, me).await?;
    Ok((tx, grants))
}

// --- settings -------------------------------------------------------------------------

/// The realm's evaluation period and maximum points per semester (any realm member).
#[utoipa::path(get, path = "/api/v1/realms/{realm}/evaluation-settings", tag = "evaluation",
    params(("realm" = String, Path)),
    responses((status = 200, body = Settings), (status = 403, body = ErrorBody)))]
async fn get_settings(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
) -> Result<Json<Settings>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    if !grants.god && !policy::user_in_realm(&mut tx, me).await? {
        return Err(Error::Forbidden(format!(
            "you are not a member of realm {realm}"
        )));
    }
    let out = evaluation::settings(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Sets the evaluation period and maximum points per semester (manageRealm).
#[utoipa::path(put, path = "/api/v1/realms/{realm}/evaluation-settings", tag = "evaluation",
    params(("realm" = String, Path)), request_body = SettingsInput,
    responses((status = 200, body = Settings), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn put_settings(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Json(body): Json<SettingsInput>,
) -> Result<Json<Settings>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = evaluation::put_settings(&mut tx, &grants, body).await?;
    tx.commit().await?;
    Ok(Json(out))
}

// --- guidelines -----------------------------------------------------------------------

/// Creates a group's guideline collection for a semester (editScores on the group).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/guideline-collections", tag = "evaluation",
    params(("realm" = String, Path)), request_body = NewCollection,
    responses((status = 201, body = CollectionWithGuidelines), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_collection(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Json(body): Json<NewCollection>,
) -> Result<(StatusCode, Json<CollectionWithGuidelines>)> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = guideline::create_collection(&mut tx, &grants, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SemesterFilter {
    semester_id: Option<Uuid>,
}

/// A group's guideline collections with their guidelines.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/groups/{id}/guideline-collections",
    tag = "evaluation", params(("realm" = String, Path), ("id" = Uuid, Path), SemesterFilter),
    responses((status = 200, body = Vec<CollectionWithGuidelines>),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_group_collections(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
    Query(q): Query<SemesterFilter>,
) -> Result<Json<Vec<CollectionWithGuidelines>>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = guideline::list_for_group(&mut tx, &grants, id, q.semester_id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/realms/{realm}/guideline-collections/{id}",
    tag = "evaluation", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = CollectionWithGuidelines), (status = 404, body = ErrorBody)))]
async fn get_collection(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<CollectionWithGuidelines>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = guideline::get_visible(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Adds a guideline (editScores; refused once the group's scoreboard is submitted).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/guideline-collections/{id}/guidelines",
    tag = "evaluation", params(("realm" = String, Path), ("id" = Uuid, Path)),
    request_body = NewGuideline,
    responses((status = 201, body = Guideline), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_guideline(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<NewGuideline>,
) -> Result<(StatusCode, Json<Guideline>)> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = guideline::add_guideline(&mut tx, &grants, id, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(delete, path = "/api/v1/realms/{realm}/guidelines/{id}", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_guideline(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<StatusCode> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    guideline::delete_guideline(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- scoreboards ----------------------------------------------------------------------

/// Scoreboards the caller may see (view/edit/evaluateScores on their group).
#[utoipa::path(get, path = "/api/v1/realms/{realm}/scoreboards", tag = "evaluation",
    params(("realm" = String, Path), ScoreboardQuery),
    responses((status = 200, body = Page<Scoreboard>), (status = 400, body = ErrorBody)))]
async fn list_scoreboards(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Query(q): Query<ScoreboardQuery>,
) -> Result<Json<Page<Scoreboard>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = scoreboard::list(&mut tx, &grants, &q, page.limit()?, page.cursor()?).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Starts a group's scoreboard for a semester (editScores; in the evaluation period).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/scoreboards", tag = "evaluation",
    params(("realm" = String, Path)), request_body = NewScoreboard,
    responses((status = 201, body = Scoreboard), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_scoreboard(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Json(body): Json<NewScoreboard>,
) -> Result<(StatusCode, Json<Scoreboard>)> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = scoreboard::create(&mut tx, &grants, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// A scoreboard with its point and entry award requests.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/scoreboards/{id}", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = ScoreboardDetail), (status = 404, body = ErrorBody)))]
async fn get_scoreboard(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<ScoreboardDetail>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = scoreboard::detail(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// NOT_SUBMITTED → NOT_YET_EVALUATED (editScores); the scoreboard becomes read-only.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/scoreboards/{id}/submit", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Scoreboard), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn submit_scoreboard(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Scoreboard>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = scoreboard::submit(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// NOT_YET_EVALUATED → ACCEPTED (evaluateScores); records the point history.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/scoreboards/{id}/accept", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Scoreboard), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn accept_scoreboard(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Scoreboard>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = scoreboard::accept(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Rejection {
    reason: Prose<10_000>,
}

/// NOT_YET_EVALUATED → REJECTED with a reason (evaluateScores).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/scoreboards/{id}/reject", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path)), request_body = Rejection,
    responses((status = 200, body = Scoreboard), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reject_scoreboard(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<Rejection>,
) -> Result<Json<Scoreboard>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = scoreboard::reject(&mut tx, &grants, id, &body.reason).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// After a rejection: a new NOT_SUBMITTED version linked to the rejected one, with a copy
/// of its requests (editScores).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/scoreboards/{id}/versions",
    tag = "evaluation", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 201, body = Scoreboard), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn new_scoreboard_version(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<(StatusCode, Json<Scoreboard>)> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = scoreboard::new_version(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/realms/{realm}/scoreboards/{id}/comments",
    tag = "evaluation", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Comment>), (status = 404, body = ErrorBody)))]
async fn list_comments(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Vec<Comment>>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = scoreboard::comments(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewComment {
    body: Prose<10_000>,
}

/// Adds to a scoreboard's discussion (editScores or evaluateScores; any status).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/scoreboards/{id}/comments",
    tag = "evaluation", params(("realm" = String, Path), ("id" = Uuid, Path)),
    request_body = NewComment,
    responses((status = 201, body = Comment), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn add_comment(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<NewComment>,
) -> Result<(StatusCode, Json<Comment>)> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = scoreboard::add_comment(&mut tx, &grants, id, &body.body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

// --- requests -------------------------------------------------------------------------

/// Sets the points requested for a member under a guideline (editScores; NOT_SUBMITTED;
/// within the guideline's limits and the realm's maximum per semester).
#[utoipa::path(put,
    path = "/api/v1/realms/{realm}/scoreboards/{id}/point-requests/{membership}/{guideline}",
    tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("membership" = Uuid, Path),
           ("guideline" = Uuid, Path)),
    request_body = PointsInput,
    responses((status = 200, body = PointRequest), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_point_request(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(p): Path<PointPath>,
    Json(body): Json<PointsInput>,
) -> Result<Json<PointRequest>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = request::put_points(
        &mut tx,
        &grants,
        p.id,
        p.membership,
        p.guideline,
        body.points,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[utoipa::path(delete,
    path = "/api/v1/realms/{realm}/scoreboards/{id}/point-requests/{membership}/{guideline}",
    tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("membership" = Uuid, Path),
           ("guideline" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_point_request(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(p): Path<PointPath>,
) -> Result<StatusCode> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    request::delete_points(&mut tx, &grants, p.id, p.membership, p.guideline).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a member's entry award request (KDO / KB / AB with a justification).
#[utoipa::path(put,
    path = "/api/v1/realms/{realm}/scoreboards/{id}/entry-award-requests/{membership}",
    tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("membership" = Uuid, Path)),
    request_body = EntryInput,
    responses((status = 200, body = EntryAwardRequest), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_entry_award_request(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(p): Path<EntryPath>,
    Json(body): Json<EntryInput>,
) -> Result<Json<EntryAwardRequest>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = request::put_entry(&mut tx, &grants, p.id, p.membership, body).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[utoipa::path(delete,
    path = "/api/v1/realms/{realm}/scoreboards/{id}/entry-award-requests/{membership}",
    tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("membership" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_entry_award_request(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(p): Path<EntryPath>,
) -> Result<StatusCode> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    request::delete_entry(&mut tx, &grants, p.id, p.membership).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- point history --------------------------------------------------------------------

/// A user's point totals per semester in this realm (the user themself, or viewScores on
/// a group they have points from). The BFF fans this out over the user's realms.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/users/{id}/points", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), PointsQuery),
    responses((status = 200, body = UserPoints), (status = 403, body = ErrorBody)))]
async fn user_points(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
    Query(q): Query<PointsQuery>,
) -> Result<Json<UserPoints>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = history::user_points(&mut tx, &grants, id, q.semester.as_deref()).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Every user's total in a semester, by user id (viewScores realm-wide).
#[utoipa::path(get, path = "/api/v1/realms/{realm}/semesters/{id}/points", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<UserTotal>), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn semester_points(
    State(s): State<AppState>,
    Caller(me): Caller,
    LocalRealm(realm): LocalRealm,
    Path(IdPath { id, .. }): Path<IdPath>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<UserTotal>>> {
    let (mut tx, grants) = scoped(&s, &realm, me).await?;
    let out = history::semester_totals(&mut tx, &grants, id, page.limit()?, page.cursor()?).await?;
    tx.commit().await?;
    Ok(Json(out))
}
