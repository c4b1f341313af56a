//! `/api/v1/realms/{realm}/…`: realm-scoped resources, the same on hub and workers.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{AppState, Caller, Json, Path, Query, RealmScope};
use crate::error::{Error, ErrorBody, Result};
use crate::feature::{self, FeatureFlag};
use crate::group::{self, DirectoryGroup, DirectoryQuery, Group, GroupPatch, GroupQuery, NewGroup};
use crate::membership::{self, Membership, MembershipPatch, NewMembership};
use crate::page::{Page, PageParams};
use crate::policy::{self, Assignment, Permission, Policy, PolicyOffer, Statement, Target};
use crate::post::{self, Post, PostName, Posts};
use crate::realm::RealmId;
use crate::semester::{self, NewSemester, Semester};
use crate::text::Line;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_realms))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(group_directory))
        .routes(routes!(get_group, update_group))
        .routes(routes!(move_group_owner))
        .routes(routes!(list_members, add_member))
        .routes(routes!(apply_to_group))
        .routes(routes!(list_posts, create_post))
        .routes(routes!(rename_post, delete_post))
        .routes(routes!(my_memberships))
        .routes(routes!(
            get_membership,
            update_membership,
            delete_membership
        ))
        .routes(routes!(accept_membership))
        .routes(routes!(reject_membership))
        .routes(routes!(withdraw_membership))
        .routes(routes!(decline_membership))
        .routes(routes!(leave_membership))
        .routes(routes!(list_semesters, create_semester))
        .routes(routes!(current_semester, set_current_semester))
        .routes(routes!(list_feature_flags))
        .routes(routes!(set_feature_flag, delete_feature_flag))
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(get_policy))
        .routes(routes!(add_statement))
        .routes(routes!(delete_statement))
        .routes(routes!(list_assignments, create_assignment))
        .routes(routes!(delete_assignment))
        .routes(routes!(my_policy_offers))
        .routes(routes!(accept_policy_offer))
        .routes(routes!(decline_policy_offer))
        .routes(routes!(check_permission))
        .routes(routes!(profile_access))
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct IdPath {
    realm: String,
    id: Uuid,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PostPath {
    realm: String,
    id: Uuid,
    name: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct KeyPath {
    realm: String,
    key: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct StatementPath {
    realm: String,
    id: Uuid,
    statement: Uuid,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct AssignmentPath {
    realm: String,
    user: Uuid,
    policy: Uuid,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ServedRealm {
    id: RealmId,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ServedRealms {
    items: Vec<ServedRealm>,
}

/// Realms this instance serves.
#[utoipa::path(get, path = "/api/v1/realms", tag = "realms",
    responses((status = 200, body = ServedRealms), (status = 401, body = ErrorBody)))]
async fn list_realms(State(s): State<AppState>, _c: Caller) -> Json<ServedRealms> {
    let items = s
        .served_realms()
        .await
        .into_iter()
        .map(|id| ServedRealm { id })
        .collect();
    Json(ServedRealms { items })
}

// --- groups -------------------------------------------------------------------------

/// Groups the caller may see, by words of the name in any order (each the start of a
/// word of the name; case- and accent-insensitive), in Hungarian alphabetical order.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/groups", tag = "groups",
    params(("realm" = String, Path), GroupQuery),
    responses((status = 200, body = Page<Group>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_groups(
    RealmScope { mut tx, grants }: RealmScope,
    Query(q): Query<GroupQuery>,
) -> Result<Json<Page<Group>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let out = group::search(&mut tx, &grants, &q, page.limit()?, page.cursor()?).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// The realm's groups in the directory, for every signed-in person: listed groups that
/// are not archived, in Hungarian alphabetical order, with their member count and
/// leaders. An unlisted realm (feature flag `directory.unlisted`) answers an empty page.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/directory", tag = "groups",
    params(("realm" = String, Path), DirectoryQuery),
    responses((status = 200, body = Page<DirectoryGroup>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn group_directory(
    RealmScope { mut tx, .. }: RealmScope,
    Query(q): Query<DirectoryQuery>,
) -> Result<Json<Page<DirectoryGroup>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let out = group::directory(&mut tx, &q, page.limit()?, page.cursor()?).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Creates a group (root groups need manageRealm; children need editGroup on the parent).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/groups", tag = "groups",
    params(("realm" = String, Path)), request_body = NewGroup,
    responses((status = 201, body = Group), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_group(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<NewGroup>,
) -> Result<(StatusCode, Json<Group>)> {
    let g = group::create(&mut tx, &grants, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(g)))
}

#[utoipa::path(get, path = "/api/v1/realms/{realm}/groups/{id}", tag = "groups",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Group), (status = 404, body = ErrorBody)))]
async fn get_group(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Group>> {
    let g = group::get_visible(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(g))
}

#[utoipa::path(patch, path = "/api/v1/realms/{realm}/groups/{id}", tag = "groups",
    params(("realm" = String, Path), ("id" = Uuid, Path)), request_body = GroupPatch,
    responses((status = 200, body = Group), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_group(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<GroupPatch>,
) -> Result<Json<Group>> {
    let g = group::update(&mut tx, &grants, id, body).await?;
    tx.commit().await?;
    Ok(Json(g))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewOwner {
    user_id: Uuid,
}

/// Moves the group's owner (moveGroupOwner). The new owner must exist (a worker asks the
/// hub) and be a person of the realm: ownership is never handed to someone who did not
/// consent to being in it (422).
#[utoipa::path(put, path = "/api/v1/realms/{realm}/groups/{id}/owner", tag = "groups",
    params(("realm" = String, Path), ("id" = Uuid, Path)), request_body = NewOwner,
    responses((status = 200, body = Group), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn move_group_owner(
    State(s): State<AppState>,
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<NewOwner>,
) -> Result<Json<Group>> {
    s.users.require_exists(body.user_id).await?;
    let g = group::move_owner(&mut tx, &grants, id, body.user_id).await?;
    tx.commit().await?;
    Ok(Json(g))
}

// --- memberships --------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/realms/{realm}/groups/{id}/members", tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<Membership>), (status = 403, body = ErrorBody)))]
async fn list_members(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Membership>>> {
    let out =
        membership::list_for_group(&mut tx, &grants, id, page.limit()?, page.cursor()?).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Invites a person to the group (editMembers): an INVITED membership, which counts
/// only once the person accepts it (`POST …/memberships/{id}/accept`). The user must
/// exist (a worker asks the hub).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/groups/{id}/members", tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path)), request_body = NewMembership,
    responses((status = 201, body = Membership), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn add_member(
    State(s): State<AppState>,
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<NewMembership>,
) -> Result<(StatusCode, Json<Membership>)> {
    s.users.require_exists(body.user_id).await?;
    let m = membership::invite(&mut tx, &grants, id, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// The caller applies to the group: an APPLIED membership, which counts only once
/// someone with editMembers accepts it.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/groups/{id}/applications",
    tag = "memberships", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 201, body = Membership), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn apply_to_group(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<(StatusCode, Json<Membership>)> {
    let m = membership::apply(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(m)))
}

// --- post names ---------------------------------------------------------------------

/// The group's post names: the built-in leader post (`leader`) first, then the group's
/// own (whoever may see the group).
#[utoipa::path(get, path = "/api/v1/realms/{realm}/groups/{id}/posts", tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Posts), (status = 404, body = ErrorBody)))]
async fn list_posts(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Posts>> {
    let out = post::list(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Adds a post name to the group (editMembers). A name the group has already, or
/// `leader`, is a 409 with the reason `duplicate_post`.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/groups/{id}/posts", tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path)), request_body = PostName,
    responses((status = 201, body = Post), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_post(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<PostName>,
) -> Result<(StatusCode, Json<Post>)> {
    let p = post::create(&mut tx, &grants, id, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Renames a post of the group (editMembers), on the members holding it too. The
/// built-in leader post is a 409 (`builtin_post`), a name taken a 409 (`duplicate_post`).
#[utoipa::path(patch, path = "/api/v1/realms/{realm}/groups/{id}/posts/{name}",
    tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("name" = String, Path)),
    request_body = PostName,
    responses((status = 200, body = Post), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn rename_post(
    RealmScope { mut tx, grants }: RealmScope,
    Path(PostPath { id, name, .. }): Path<PostPath>,
    Json(body): Json<PostName>,
) -> Result<Json<Post>> {
    let p = post::rename(&mut tx, &grants, id, &name, body).await?;
    tx.commit().await?;
    Ok(Json(p))
}

/// Deletes a post name of the group (editMembers). One that members hold (in any
/// status) is refused, 409 `post_held`: take it from them first; the built-in leader
/// post is a 409 (`builtin_post`).
#[utoipa::path(delete, path = "/api/v1/realms/{realm}/groups/{id}/posts/{name}",
    tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_post(
    RealmScope { mut tx, grants }: RealmScope,
    Path(PostPath { id, name, .. }): Path<PostPath>,
) -> Result<StatusCode> {
    post::delete(&mut tx, &grants, id, &name).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own memberships in this realm, applications and invitations included.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/me/memberships", tag = "memberships",
    params(("realm" = String, Path)),
    responses((status = 200, body = Vec<Membership>), (status = 401, body = ErrorBody)))]
async fn my_memberships(
    RealmScope { mut tx, grants }: RealmScope,
) -> Result<Json<Vec<Membership>>> {
    let out = membership::list_mine(&mut tx, &grants).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/realms/{realm}/memberships/{id}", tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Membership), (status = 404, body = ErrorBody)))]
async fn get_membership(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Membership>> {
    let m = membership::get_visible(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(m))
}

/// Accepts a pending membership, which becomes NEWBIE: the invited person accepts an
/// invitation; someone with editMembers accepts an application.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/memberships/{id}/accept",
    tag = "memberships", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Membership), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn accept_membership(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Membership>> {
    let m = membership::accept(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(m))
}

/// Rejects an application (editMembers); it is deleted.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/memberships/{id}/reject",
    tag = "memberships", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reject_membership(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<StatusCode> {
    membership::reject(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller withdraws their own application; it is deleted.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/memberships/{id}/withdraw",
    tag = "memberships", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn withdraw_membership(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<StatusCode> {
    membership::drop_own(&mut tx, &grants, id, membership::Status::Applied).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller declines an invitation (it is deleted), or an offer to bring back their
/// archived membership (the membership stays archived).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/memberships/{id}/decline",
    tag = "memberships", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn decline_membership(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<StatusCode> {
    membership::drop_own(&mut tx, &grants, id, membership::Status::Invited).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller leaves a group they are a current member of: the membership becomes
/// FORMER and ends now.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/memberships/{id}/leave",
    tag = "memberships", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Membership), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn leave_membership(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<Membership>> {
    let m = membership::leave(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(m))
}

/// Status, posts and end of a consented membership (editMembers). Refused status
/// changes are 409, pending memberships too (they change by being accepted).
#[utoipa::path(patch, path = "/api/v1/realms/{realm}/memberships/{id}", tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path)), request_body = MembershipPatch,
    responses((status = 200, body = Membership), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn update_membership(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<MembershipPatch>,
) -> Result<Json<Membership>> {
    let m = membership::update(&mut tx, &grants, id, body).await?;
    tx.commit().await?;
    Ok(Json(m))
}

/// Deletes a membership of any status (editMembers): removes a member, cancels an
/// invitation.
#[utoipa::path(delete, path = "/api/v1/realms/{realm}/memberships/{id}", tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_membership(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<StatusCode> {
    membership::remove(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- semesters ----------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/realms/{realm}/semesters", tag = "semesters",
    params(("realm" = String, Path)), responses((status = 200, body = Vec<Semester>)))]
async fn list_semesters(RealmScope { mut tx, grants }: RealmScope) -> Result<Json<Vec<Semester>>> {
    let out = semester::list(&mut tx, &grants).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[utoipa::path(post, path = "/api/v1/realms/{realm}/semesters", tag = "semesters",
    params(("realm" = String, Path)), request_body = NewSemester,
    responses((status = 201, body = Semester), (status = 409, body = ErrorBody)))]
async fn create_semester(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<NewSemester>,
) -> Result<(StatusCode, Json<Semester>)> {
    let out = semester::create(&mut tx, &grants, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/realms/{realm}/semesters/current", tag = "semesters",
    params(("realm" = String, Path)),
    responses((status = 200, body = Semester), (status = 404, body = ErrorBody)))]
async fn current_semester(RealmScope { mut tx, grants }: RealmScope) -> Result<Json<Semester>> {
    let out = semester::current(&mut tx, &grants).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CurrentSemester {
    semester_id: Uuid,
}

#[utoipa::path(put, path = "/api/v1/realms/{realm}/semesters/current", tag = "semesters",
    params(("realm" = String, Path)), request_body = CurrentSemester,
    responses((status = 200, body = Semester), (status = 404, body = ErrorBody)))]
async fn set_current_semester(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<CurrentSemester>,
) -> Result<Json<Semester>> {
    let out = semester::make_current(&mut tx, &grants, body.semester_id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

// --- feature flags ------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/realms/{realm}/feature-flags", tag = "feature-flags",
    params(("realm" = String, Path)), responses((status = 200, body = Vec<FeatureFlag>)))]
async fn list_feature_flags(
    RealmScope { mut tx, grants }: RealmScope,
) -> Result<Json<Vec<FeatureFlag>>> {
    let out = feature::list(&mut tx, &grants).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct FlagValue {
    enabled: bool,
}

#[utoipa::path(put, path = "/api/v1/realms/{realm}/feature-flags/{key}", tag = "feature-flags",
    params(("realm" = String, Path), ("key" = String, Path)), request_body = FlagValue,
    responses((status = 200, body = FeatureFlag), (status = 403, body = ErrorBody)))]
async fn set_feature_flag(
    RealmScope { mut tx, grants }: RealmScope,
    Path(KeyPath { key, .. }): Path<KeyPath>,
    Json(body): Json<FlagValue>,
) -> Result<Json<FeatureFlag>> {
    let out = feature::set(&mut tx, &grants, &key, body.enabled).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v1/realms/{realm}/feature-flags/{key}", tag = "feature-flags",
    params(("realm" = String, Path), ("key" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_feature_flag(
    RealmScope { mut tx, grants }: RealmScope,
    Path(KeyPath { key, .. }): Path<KeyPath>,
) -> Result<StatusCode> {
    feature::delete(&mut tx, &grants, &key).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- policies -----------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/realms/{realm}/policies", tag = "policies",
    params(("realm" = String, Path)), responses((status = 200, body = Vec<Policy>)))]
async fn list_policies(RealmScope { mut tx, grants }: RealmScope) -> Result<Json<Vec<Policy>>> {
    let out = policy::list_policies(&mut tx, &grants).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewPolicy {
    name: Line<200>,
    parent_id: Option<Uuid>,
}

#[utoipa::path(post, path = "/api/v1/realms/{realm}/policies", tag = "policies",
    params(("realm" = String, Path)), request_body = NewPolicy,
    responses((status = 201, body = Policy), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn create_policy(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<NewPolicy>,
) -> Result<(StatusCode, Json<Policy>)> {
    let out = policy::create_policy(&mut tx, &grants, &body.name, body.parent_id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct PolicyWithStatements {
    #[serde(flatten)]
    policy: Policy,
    statements: Vec<Statement>,
}

#[utoipa::path(get, path = "/api/v1/realms/{realm}/policies/{id}", tag = "policies",
    params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = PolicyWithStatements), (status = 404, body = ErrorBody)))]
async fn get_policy(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> Result<Json<PolicyWithStatements>> {
    let (policy, statements) = policy::policy_with_statements(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(PolicyWithStatements { policy, statements }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewStatement {
    group_id: Option<Uuid>,
    user_id: Option<Uuid>,
    permissions: Vec<Permission>,
}

#[utoipa::path(post, path = "/api/v1/realms/{realm}/policies/{id}/statements", tag = "policies",
    params(("realm" = String, Path), ("id" = Uuid, Path)), request_body = NewStatement,
    responses((status = 201, body = Statement), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn add_statement(
    RealmScope { mut tx, grants }: RealmScope,
    Path(IdPath { id, .. }): Path<IdPath>,
    Json(body): Json<NewStatement>,
) -> Result<(StatusCode, Json<Statement>)> {
    let out = policy::add_statement(
        &mut tx,
        &grants,
        id,
        body.group_id,
        body.user_id,
        &body.permissions,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(delete, path = "/api/v1/realms/{realm}/policies/{id}/statements/{statement}",
    tag = "policies",
    params(("realm" = String, Path), ("id" = Uuid, Path), ("statement" = Uuid, Path)),
    responses((status = 204), (status = 409, body = ErrorBody)))]
async fn delete_statement(
    RealmScope { mut tx, grants }: RealmScope,
    Path(StatementPath { id, statement, .. }): Path<StatementPath>,
) -> Result<StatusCode> {
    policy::remove_statement(&mut tx, &grants, id, statement).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssignmentQuery {
    user_id: Option<Uuid>,
}

#[utoipa::path(get, path = "/api/v1/realms/{realm}/assignments", tag = "policies",
    params(("realm" = String, Path), AssignmentQuery),
    responses((status = 200, body = Vec<Assignment>)))]
async fn list_assignments(
    RealmScope { mut tx, grants }: RealmScope,
    Query(q): Query<AssignmentQuery>,
) -> Result<Json<Vec<Assignment>>> {
    let out = policy::assignments(&mut tx, &grants, q.user_id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAssignment {
    user_id: Uuid,
    policy_id: Uuid,
}

/// Gives a person a policy. To a person of the realm (or to oneself) it applies at once;
/// to anyone else it is an offer (`acceptedAt` absent) that grants nothing and does not
/// make them part of the realm until they accept it (`POST …/me/policy-offers/{policy}/
/// accept`). The user must exist (a worker asks the hub).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/assignments", tag = "policies",
    params(("realm" = String, Path)), request_body = NewAssignment,
    responses((status = 201, body = Assignment), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_assignment(
    State(s): State<AppState>,
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<NewAssignment>,
) -> Result<(StatusCode, Json<Assignment>)> {
    s.users.require_exists(body.user_id).await?;
    let out = policy::assign(&mut tx, &grants, body.user_id, body.policy_id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(delete, path = "/api/v1/realms/{realm}/assignments/{user}/{policy}",
    tag = "policies",
    params(("realm" = String, Path), ("user" = Uuid, Path), ("policy" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_assignment(
    RealmScope { mut tx, grants }: RealmScope,
    Path(AssignmentPath {
        user,
        policy: policy_id,
        ..
    }): Path<AssignmentPath>,
) -> Result<StatusCode> {
    policy::unassign(&mut tx, &grants, user, policy_id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The roles offered to the caller in this realm, waiting for their answer.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/me/policy-offers", tag = "policies",
    params(("realm" = String, Path)),
    responses((status = 200, body = Vec<PolicyOffer>), (status = 401, body = ErrorBody)))]
async fn my_policy_offers(
    RealmScope { mut tx, grants }: RealmScope,
) -> Result<Json<Vec<PolicyOffer>>> {
    let out = policy::my_offers(&mut tx, &grants).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OfferPath {
    realm: String,
    policy: Uuid,
}

/// The caller takes an offered role on: it grants its permissions from now on.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/me/policy-offers/{policy}/accept",
    tag = "policies", params(("realm" = String, Path), ("policy" = Uuid, Path)),
    responses((status = 200, body = Assignment), (status = 404, body = ErrorBody)))]
async fn accept_policy_offer(
    RealmScope { mut tx, grants }: RealmScope,
    Path(OfferPath { policy: id, .. }): Path<OfferPath>,
) -> Result<Json<Assignment>> {
    let out = policy::accept_offer(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// The caller turns an offered role down; the offer is deleted.
#[utoipa::path(post, path = "/api/v1/realms/{realm}/me/policy-offers/{policy}/decline",
    tag = "policies", params(("realm" = String, Path), ("policy" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn decline_policy_offer(
    RealmScope { mut tx, grants }: RealmScope,
    Path(OfferPath { policy: id, .. }): Path<OfferPath>,
) -> Result<StatusCode> {
    policy::decline_offer(&mut tx, &grants, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PermissionQuery {
    action: Permission,
    group_id: Option<Uuid>,
    user_id: Option<Uuid>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Allowed {
    pub allowed: bool,
}

/// `can(caller, action, target)` in this realm.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/permissions", tag = "policies",
    params(("realm" = String, Path), PermissionQuery),
    responses((status = 200, body = Allowed), (status = 400, body = ErrorBody)))]
async fn check_permission(
    RealmScope { mut tx, grants }: RealmScope,
    Query(q): Query<PermissionQuery>,
) -> Result<Json<Allowed>> {
    let target = match (q.group_id, q.user_id) {
        (None, None) => Target::Realm,
        (Some(g), None) => Target::Group(g),
        (None, Some(u)) => Target::User(u),
        (Some(_), Some(_)) => {
            return Err(Error::BadRequest("give groupId or userId, not both".into()))
        }
    };
    let allowed = policy::can(&mut tx, &grants, q.action, target).await?;
    tx.commit().await?;
    Ok(Json(Allowed { allowed }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProfileAccessQuery {
    /// At most 200 people.
    users: Vec<Uuid>,
}

/// Which of these people's profiles the caller may see in full or edit, by this realm's
/// policies (the hub asks every realm the two share).
#[utoipa::path(post, path = "/api/v1/realms/{realm}/profile-access", tag = "policies",
    params(("realm" = String, Path)), request_body = ProfileAccessQuery,
    responses((status = 200, body = crate::profile::ProfileAccess),
              (status = 422, body = ErrorBody)))]
async fn profile_access(
    RealmScope { mut tx, grants }: RealmScope,
    Json(body): Json<ProfileAccessQuery>,
) -> Result<Json<crate::profile::ProfileAccess>> {
    if body.users.len() > 200 {
        return Err(Error::Unprocessable("at most 200 users per call".into()));
    }
    let access = crate::profile::access(&mut tx, &grants, &body.users).await?;
    tx.commit().await?;
    Ok(Json(access))
}
