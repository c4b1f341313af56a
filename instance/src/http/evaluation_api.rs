//! `/api/v1/realms/{realm}/…` routes of community evaluation: settings and seasons,
//! guidelines, scoreboards and their workflow, requests and their review, discussion,
//! point history and CSV exports.

use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{AppState, Json, Path, Query, RealmScope};
use crate::error::{ErrorBody, Result};
use crate::evaluation::guideline::{
    self, CollectionWithGuidelines, CopyCollection, Guideline, NewCollection, NewGuideline,
};
use crate::evaluation::history::{self, PointsQuery, UserPoints, UserTotal};
use crate::evaluation::request::{
    self, CellComment, EntryAwardRequest, EntryInput, PointRequest, PointsInput,
};
use crate::evaluation::scoreboard::{
    self, Comment, NewScoreboard, Scoreboard, ScoreboardDetail, ScoreboardQuery,
};
use crate::evaluation::season::{self, SeasonChange, SeasonInput};
use crate::evaluation::{self, export, Settings, SettingsInput};
use crate::page::{Page, PageParams};
use crate::text::Prose;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(my_judging))
        .routes(routes!(put_season))
        .routes(routes!(create_collection))
        .routes(routes!(copy_collection))
        .routes(routes!(list_group_collections))
        .routes(routes!(get_collection))
        .routes(routes!(add_guideline))
        .routes(routes!(put_guideline, delete_guideline))
        .routes(routes!(list_scoreboards, create_scoreboard))
        .routes(routes!(get_scoreboard))
        .routes(routes!(submit_scoreboard))
        .routes(routes!(accept_scoreboard))
        .routes(routes!(reject_scoreboard))
        .routes(routes!(new_scoreboard_version))
        .routes(routes!(list_comments, add_comment))
        .routes(routes!(put_point_request, delete_point_request))
        .routes(routes!(list_cell_comments, add_cell_comment))
        .routes(routes!(put_entry_award_request, delete_entry_award_request))
        .routes(routes!(accept_entry_award_request))
        .routes(routes!(reject_entry_award_request))
        .routes(routes!(export_point_history))
        .routes(routes!(export_entry_awards))
        .routes(routes!(export_active_members))
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

// --- settings -------------------------------------------------------------------------

/// The realm's evaluation season, its semester and the maximum points per semester
/// (any realm member).
#[utoipa::path(get, path = "/api/v1/realms/{realm}/evaluation-settings", tag = "evaluation",
    params(("realm" = String, Path)),
    responses((status = 200, body = Settings), (status = 403, body = ErrorBody)))]
async fn get_settings(RealmScope { mut tx, grants }: RealmScope) -> Result<Json<Settings>> {
    let out = evaluation::view_settings(&mut tx, &grants).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// The caller's judging queue here: in the judging season, whether they judge in the
/// realm and the submitted scoreboards they may accept or reject (with the groups'
/// names); outside it nothing. `GET /api/v1/me/judging` asks every realm.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/me/judging", tag = "evaluation",
    params(("realm" = String, Path)),
    responses((status = 200, body = evaluation::JudgingQueue), (status = 403, body = ErrorBody)))]
async fn my_judging(
    RealmScope { mut tx, grants }: RealmScope,
) -> Result<Json<evaluation::JudgingQueue>> {
    let out = evaluation::judging_queue(&mut tx, &grants).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Sets the maximum points per semester (manageRealm).
#[utoipa::path(put, path = "/api/v1/realms/{realm}/evaluation-settings", tag = "evaluation",
    params(("realm" = String, Path)), request_body = SettingsInput,
    responses((status = 200, body = Settings), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn put_settings(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<SettingsInput>,
) -> Result<Json<Settings>> {
    let out = evaluation::put_settings(&mut tx, &grants, body).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Changes the season: OFF, SUBMISSION or JUDGING, of a semester (manageRealm).
/// Leaving JUDGING for OFF computes the semester's point history (run it again with
/// OFF → JUDGING → OFF). Refused (409) when scoreboards would be stranded, unless `force`.
#[utoipa::path(put, path = "/api/v1/realms/{realm}/evaluation-season", tag = "evaluation",
    params(("realm" = String, Path)), request_body = SeasonInput,
    responses((status = 200, body = SeasonChange), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_season(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<SeasonInput>,
) -> Result<Json<SeasonChange>> {
    let out = season::change(&mut tx, &grants, body).await?;
    tx.commit().await?;
    Ok(Json(out))
}

// --- guidelines -----------------------------------------------------------------------

/// Copies a group's guideline collection of an earlier semester (default: the one
/// before) into a new collection for `semesterId`, in one call (editScores; SUBMISSION).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/guideline-collections/copy",
    tag = "evaluation", params(("realm" = String, Path)), request_body = CopyCollection,
    responses((status = 201, body = CollectionWithGuidelines), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn copy_collection(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<CopyCollection>,
) -> Result<(StatusCode, Json<CollectionWithGuidelines>)> {
    let out = guideline::copy_collection(&mut tx, &grants, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Creates a group's guideline collection for a semester (editScores on the group).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/guideline-collections", tag = "evaluation",
    params(("realm" = String, Path)), request_body = NewCollection,
    responses((status = 201, body = CollectionWithGuidelines), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_collection(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<NewCollection>,
) -> Result<(StatusCode, Json<CollectionWithGuidelines>)> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Query(q): Query<SemesterFilter>,
) -> Result<Json<Vec<CollectionWithGuidelines>>> {
    let out = guideline::list_for_group(&mut tx, &grants, id, q.semester_id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/realms/{realm}/guideline-collections/{id}",
    tag = "evaluation", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = CollectionWithGuidelines), (status = 404, body = ErrorBody)))]
async fn get_collection(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<CollectionWithGuidelines>> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<NewGuideline>,
) -> Result<(StatusCode, Json<Guideline>)> {
    let out = guideline::add_guideline(&mut tx, &grants, id, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Edits a guideline: title, description, kind and maxima (editScores, SUBMISSION; refused
/// once the group's scoreboard is submitted).
#[utoipa::path(put, path = "/api/v1/realms/{realm}/guidelines/{id}", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path)), request_body = NewGuideline,
    responses((status = 200, body = Guideline), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn put_guideline(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<NewGuideline>,
) -> Result<Json<Guideline>> {
    let out = guideline::update_guideline(&mut tx, &grants, id, body).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v1/realms/{realm}/guidelines/{id}", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_guideline(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<StatusCode> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Query(q): Query<ScoreboardQuery>,
) -> Result<Json<Page<Scoreboard>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let out = scoreboard::list(&mut tx, &grants, &q, page.limit()?, page.cursor()?).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Starts a group's scoreboard for the semester being evaluated (editScores; SUBMISSION).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/scoreboards", tag = "evaluation",
    params(("realm" = String, Path)), request_body = NewScoreboard,
    responses((status = 201, body = Scoreboard), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_scoreboard(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<NewScoreboard>,
) -> Result<(StatusCode, Json<Scoreboard>)> {
    let out = scoreboard::create(&mut tx, &grants, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// A scoreboard with its point and entry award requests, the guidelines with their
/// maxima, the per-member caps, and every member's points by the formula.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/scoreboards/{id}", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = ScoreboardDetail), (status = 404, body = ErrorBody)))]
async fn get_scoreboard(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<ScoreboardDetail>> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Scoreboard>> {
    let out = scoreboard::submit(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// NOT_YET_EVALUATED → ACCEPTED (evaluateScores; JUDGING). The point history follows
/// when the season leaves JUDGING.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/scoreboards/{id}/accept", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Scoreboard), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn accept_scoreboard(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Scoreboard>> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<Rejection>,
) -> Result<Json<Scoreboard>> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<(StatusCode, Json<Scoreboard>)> {
    let out = scoreboard::new_version(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/realms/{realm}/scoreboards/{id}/comments",
    tag = "evaluation", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Comment>), (status = 404, body = ErrorBody)))]
async fn list_comments(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Vec<Comment>>> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<NewComment>,
) -> Result<(StatusCode, Json<Comment>)> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(p): Path<PointPath>,
    Json(body): Json<PointsInput>,
) -> Result<Json<PointRequest>> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(p): Path<PointPath>,
) -> Result<StatusCode> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(p): Path<EntryPath>,
    Json(body): Json<EntryInput>,
) -> Result<Json<EntryAwardRequest>> {
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
    RealmScope { mut tx, grants }: RealmScope,
    Path(p): Path<EntryPath>,
) -> Result<StatusCode> {
    request::delete_entry(&mut tx, &grants, p.id, p.membership).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an entry award request (evaluateScores; JUDGING; once the scoreboard is
/// submitted), independently of the scoreboard's points.
#[utoipa::path(post,
    path = "/api/v1/realms/{realm}/scoreboards/{id}/entry-award-requests/{membership}/accept",
    tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("membership" = Uuid, Path)),
    responses((status = 200, body = EntryAwardRequest), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn accept_entry_award_request(
    RealmScope { mut tx, grants }: RealmScope,
    Path(p): Path<EntryPath>,
) -> Result<Json<EntryAwardRequest>> {
    let out = request::review_entry(&mut tx, &grants, p.id, p.membership, None).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Rejects an entry award request with a reason (evaluateScores; JUDGING).
#[utoipa::path(post,
    path = "/api/v1/realms/{realm}/scoreboards/{id}/entry-award-requests/{membership}/reject",
    tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("membership" = Uuid, Path)),
    request_body = Rejection,
    responses((status = 200, body = EntryAwardRequest), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn reject_entry_award_request(
    RealmScope { mut tx, grants }: RealmScope,
    Path(p): Path<EntryPath>,
    Json(body): Json<Rejection>,
) -> Result<Json<EntryAwardRequest>> {
    let out =
        request::review_entry(&mut tx, &grants, p.id, p.membership, Some(&body.reason)).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Comments on one cell (a member under a guideline) of a scoreboard.
#[utoipa::path(get,
    path = "/api/v1/realms/{realm}/scoreboards/{id}/point-requests/{membership}/{guideline}/comments",
    tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("membership" = Uuid, Path),
           ("guideline" = Uuid, Path)),
    responses((status = 200, body = Vec<CellComment>), (status = 404, body = ErrorBody)))]
async fn list_cell_comments(
    RealmScope { mut tx, grants }: RealmScope,
    Path(p): Path<PointPath>,
) -> Result<Json<Vec<CellComment>>> {
    let out = request::cell_comments(&mut tx, &grants, p.id, p.membership, p.guideline).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Comments on a cell (editScores or evaluateScores; any status and season).
#[utoipa::path(post,
    path = "/api/v1/realms/{realm}/scoreboards/{id}/point-requests/{membership}/{guideline}/comments",
    tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("membership" = Uuid, Path),
           ("guideline" = Uuid, Path)),
    request_body = NewComment,
    responses((status = 201, body = CellComment), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_cell_comment(
    RealmScope { mut tx, grants }: RealmScope,
    Path(p): Path<PointPath>,
    Json(body): Json<NewComment>,
) -> Result<(StatusCode, Json<CellComment>)> {
    let out = request::add_cell_comment(
        &mut tx,
        &grants,
        p.id,
        p.membership,
        p.guideline,
        &body.body,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

// --- exports --------------------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// The semester, by id or name (e.g. `2025/26/1`).
    semester: String,
}

fn csv_response(body: String, name: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Every person's semester points as CSV (manageRealm). Columns:
/// `semester,user_id,points,points_integer,points_exact,sum_of_squares,groups`.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/exports/point-history.csv",
    tag = "evaluation", params(("realm" = String, Path), ExportQuery),
    responses((status = 200, content_type = "text/csv", body = String),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_point_history(
    RealmScope { mut tx, grants }: RealmScope,
    Query(q): Query<ExportQuery>,
) -> Result<axum::response::Response> {
    let out = export::point_history(&mut tx, &grants, &q.semester).await?;
    tx.commit().await?;
    Ok(csv_response(out, "point-history.csv"))
}

/// Accepted entry award requests of a semester as CSV (manageRealm). Columns:
/// `semester,group_id,group_name,user_id,membership_id,kind,justification,reviewed_by,reviewed_at`.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/exports/entry-awards.csv",
    tag = "evaluation", params(("realm" = String, Path), ExportQuery),
    responses((status = 200, content_type = "text/csv", body = String),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_entry_awards(
    RealmScope { mut tx, grants }: RealmScope,
    Query(q): Query<ExportQuery>,
) -> Result<axum::response::Response> {
    let out = export::entry_awards(&mut tx, &grants, &q.semester).await?;
    tx.commit().await?;
    Ok(csv_response(out, "entry-awards.csv"))
}

/// Current (NEWBIE / ACTIVE) members of the realm's groups as CSV (manageRealm).
/// Columns: `group_id,group_name,user_id,membership_id,status,posts,start_at`.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/exports/active-members.csv",
    tag = "evaluation", params(("realm" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String),
              (status = 403, body = ErrorBody)))]
async fn export_active_members(
    RealmScope { mut tx, grants }: RealmScope,
) -> Result<axum::response::Response> {
    let out = export::active_members(&mut tx, &grants).await?;
    tx.commit().await?;
    Ok(csv_response(out, "active-members.csv"))
}

// --- point history --------------------------------------------------------------------

/// A user's semester points in this realm by the formula, with each group's total over
/// the semester and the one before (the user themself, or viewScores on
/// a group they have points from). The BFF fans this out over the user's realms.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/users/{id}/points", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), PointsQuery),
    responses((status = 200, body = UserPoints), (status = 403, body = ErrorBody)))]
async fn user_points(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Query(q): Query<PointsQuery>,
) -> Result<Json<UserPoints>> {
    let out = history::user_points(&mut tx, &grants, id, q.semester.as_deref()).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Every user's semester points, by user id (viewScores realm-wide).
#[utoipa::path(get, path = "/api/v1/realms/{realm}/semesters/{id}/points", tag = "evaluation",
    params(("realm" = String, Path), ("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<UserTotal>), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn semester_points(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<UserTotal>>> {
    let out = history::semester_totals(&mut tx, &grants, id, page.limit()?, page.cursor()?).await?;
    tx.commit().await?;
    Ok(Json(out))
}
