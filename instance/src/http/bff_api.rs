//! Hub-only routes of the BFF: cross-realm searches that fan out over the caller's
//! realms, people (whose visibility is decided by the realms they share), the
//! forwarding of realm-scoped calls to the realm's worker, and the membership reports
//! workers send to keep the federation table up to date.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{AppState, Caller, Json, Path, Query};
use crate::bff::{self, merge, people, BackendRequest, Bff, CallerAuth, Outcome};
use crate::error::{Error, ErrorBody, Result};
use crate::evaluation::points::{self, SemesterFigure};
use crate::group::{DirectoryEntry, DirectoryPage};
use crate::page::PageParams;
use crate::profile::{self, ProfileInput, Scope, UserView};
use crate::realm::RealmId;
use crate::text::Line;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_groups))
        .routes(routes!(group_directory))
        .routes(routes!(search_users))
        .routes(routes!(get_user))
        .routes(routes!(lookup_users))
        .routes(routes!(put_user_profile))
        .routes(routes!(my_points))
        .routes(routes!(user_points_across))
}

fn bff(s: &AppState) -> Result<&Arc<Bff>> {
    s.bff
        .as_ref()
        .ok_or_else(|| Error::NotFound("no such route on a worker".into()))
}

/// The signed-in caller, for requests to realms: the hub token they presented (used
/// in-process only) and their id (workers get a token minted for their realm).
pub(super) fn caller(me: Uuid, headers: &HeaderMap) -> Option<CallerAuth> {
    super::extract::presented_token(headers).map(|hub_token| CallerAuth::new(me, hub_token))
}

fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The page size asked for and where the previous page of a merged listing ended.
fn page_start(limit: Option<u32>, cursor: Option<&str>) -> Result<(usize, bff::MergedCursor)> {
    let limit = PageParams {
        limit,
        cursor: None,
    }
    .limit()? as usize;
    let from = match cursor {
        Some(c) => bff::MergedCursor::decode(c)?,
        None => bff::MergedCursor::default(),
    };
    Ok((limit, from))
}

/// One page of a listing merged across realms.
struct MergedPage {
    /// The realms' items as they wrote them.
    items: Vec<Box<serde_json::value::RawValue>>,
    next: Option<bff::MergedCursor>,
    coverage: bff::Coverage,
    /// The realms that answered (the others are in `coverage.unavailable`).
    answered: Vec<RealmId>,
}

/// Asks each of `realms` that `from` has not exhausted for its next page of `path`
/// (`…?query`, each realm with its own cursor), and merges the pages in order
/// ([`bff::merge_group_pages`]). The same query is invalid everywhere, so a 400/422 is
/// answered as a single realm would; a realm with nothing for the caller is exhausted
/// and later pages skip it.
async fn paged_fan_out(
    bff: &Bff,
    me: Uuid,
    headers: &HeaderMap,
    realms: Vec<RealmId>,
    from: &bff::MergedCursor,
    limit: usize,
    path: impl Fn(&RealmId) -> String,
) -> Result<MergedPage> {
    let realms: Vec<RealmId> = realms
        .into_iter()
        .filter(|r| from.position(r) != bff::Position::Done)
        .collect();
    let caller = caller(me, headers);
    let request_id = headers.get("x-request-id").cloned();
    let rules = merge::Rules {
        caller_errors_fail: true,
        ..merge::Rules::default()
    };
    // Each realm's page keeps whether that realm has more: the merged cursor needs it.
    let merged = bff
        .fan_out_merged(
            &realms,
            |r| {
                let after = match from.position(r) {
                    bff::Position::After(c) => format!("&cursor={}", encode(c)),
                    _ => String::new(),
                };
                BackendRequest {
                    request_id: request_id.clone(),
                    ..BackendRequest::get(format!("{}{after}", path(r)), caller.clone())
                }
            },
            rules,
            |_, r| bff::page_items(&r.body).map(|(items, more)| ((items, more), more)),
        )
        .await?;
    let answered = realms
        .iter()
        .filter(|r| !merged.unavailable.contains(r))
        .cloned()
        .collect();
    let coverage = merged.coverage();
    // Nothing more from a realm with nothing for this session, whatever the reason.
    let exhausted = merged
        .nothing
        .iter()
        .chain(merged.sign_in.iter().map(|(realm, ..)| realm))
        .map(|realm| bff::RealmPage {
            realm: realm.clone(),
            items: Vec::new(),
            more: false,
        });
    let pages = merged
        .answers
        .into_iter()
        .map(|(realm, (items, more))| bff::RealmPage { realm, items, more })
        .chain(exhausted)
        .collect();
    let (items, next) = bff::merge_group_pages(from, pages, limit);
    Ok(MergedPage {
        items,
        next,
        coverage,
        answered,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GroupSearch {
    /// Words of the name, in any order, each the start of a word of the name (case- and
    /// accent-insensitive).
    pub q: Option<Line<200>>,
    /// Include archived groups (default false).
    pub include_archived: Option<bool>,
    /// At most this many groups in all (default 50, at most 200).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page: carries each realm's position, so the next
    /// page merges every realm's next groups in order.
    pub cursor: Option<String>,
}

/// A page of groups merged from the caller's realms.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupPage {
    #[schema(value_type = Vec<crate::group::Group>)]
    pub items: Vec<Box<serde_json::value::RawValue>>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Which realms the answer covers (`partial`, `unavailable`, `leftOut`,
    /// `signInRequired`).
    #[serde(flatten)]
    pub coverage: bff::Coverage,
    /// True when there are more groups (`nextCursor` is set).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Groups the caller may see in every realm they are in, merged and ordered by name,
/// a page at a time. Realms that do not answer within the deadline are listed in
/// `unavailable`.
#[utoipa::path(get, path = "/api/v1/groups", tag = "bff", params(GroupSearch),
    responses((status = 200, body = GroupPage),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn search_groups(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Query(q): Query<GroupSearch>,
) -> Result<Json<GroupPage>> {
    let bff = bff(&s)?;
    let (limit, from) = page_start(q.limit, q.cursor.as_deref())?;
    let mut query = format!("limit={limit}");
    if let Some(text) = &q.q {
        query.push_str(&format!("&q={}", encode(text)));
    }
    if let Some(a) = q.include_archived {
        query.push_str(&format!("&includeArchived={a}"));
    }
    let realms = bff.caller_realms(me).await?;
    let page = paged_fan_out(bff, me, &headers, realms, &from, limit, |r| {
        format!("/api/v1/realms/{r}/groups?{query}")
    })
    .await?;
    for r in &page.answered {
        bff.touch(me, r);
    }
    let next_cursor = page.next.map(|c| c.encode());
    Ok(Json(GroupPage {
        items: page.items,
        truncated: next_cursor.is_some(),
        next_cursor,
        coverage: page.coverage,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DirectorySearch {
    /// Words of the name, in any order, each the start of a word of the name (case- and
    /// accent-insensitive): "web" finds "Kir-Dev Web".
    pub q: Option<Line<200>>,
    /// At most this many groups in all (default 50, at most 200).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// The group directory: the listed groups of every realm of the federation (a realm or
/// a group may stay out of it), for every signed-in person, in Hungarian alphabetical
/// order, with kind, description, member count and leaders — to find a group and apply.
#[utoipa::path(get, path = "/api/v1/directory", tag = "bff", params(DirectorySearch),
    responses((status = 200, body = DirectoryPage),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn group_directory(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Query(q): Query<DirectorySearch>,
) -> Result<Json<DirectoryPage>> {
    let bff = bff(&s)?;
    let (limit, from) = page_start(q.limit, q.cursor.as_deref())?;
    let mut query = format!("limit={limit}");
    if let Some(text) = &q.q {
        query.push_str(&format!("&q={}", encode(text)));
    }
    let registry = bff.registry.all().await;
    let mut realms: Vec<RealmId> = registry.keys().cloned().collect();
    realms.sort();
    let page = paged_fan_out(bff, me, &headers, realms, &from, limit, |r| {
        format!("/api/v1/realms/{r}/directory?{query}")
    })
    .await?;
    let (items, next, coverage) = (page.items, page.next, page.coverage);
    let mut groups = Vec::with_capacity(items.len());
    for raw in items {
        match serde_json::from_str::<crate::group::DirectoryGroup>(raw.get()) {
            Ok(g) => groups.push(g),
            Err(e) => tracing::warn!(error = %e, "a realm's directory entry is malformed"),
        }
    }
    let pairs: Vec<(RealmId, Uuid)> = groups
        .iter()
        .filter_map(|g| RealmId::parse(&g.realm_id).ok().map(|r| (r, g)))
        .flat_map(|(r, g)| g.leader_ids.iter().map(move |u| (r.clone(), *u)))
        .collect();
    let mut names = profile::leader_names(&s.db, &pairs).await?;
    let items = groups
        .into_iter()
        .map(|group| {
            let realm = RealmId::parse(&group.realm_id).ok();
            let realm_name = realm
                .as_ref()
                .and_then(|r| registry.get(r))
                .map(|e| e.display_name.clone())
                .unwrap_or_else(|| group.realm_id.clone());
            let leaders = realm
                .map(|r| {
                    group
                        .leader_ids
                        .iter()
                        .filter_map(|u| names.remove(&(r.clone(), *u)))
                        .collect()
                })
                .unwrap_or_default();
            DirectoryEntry {
                group,
                realm_name,
                leaders,
            }
        })
        .collect();
    Ok(Json(DirectoryPage {
        items,
        next_cursor: next.map(|c| c.encode()),
        coverage,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserQuery {
    /// Part of a first name, last name or nickname (case- and accent-insensitive).
    q: Line<200>,
    limit: Option<u32>,
    cursor: Option<crate::page::CursorText>,
}

/// A page of people, merged from the caller's realms.
#[derive(serde::Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserPage {
    pub items: Vec<UserView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Which realms the answer covers (`partial`, `unavailable`, `leftOut`,
    /// `signInRequired`).
    #[serde(flatten)]
    pub coverage: bff::Coverage,
}

/// People who share a realm with the caller, basic or full per the caller's rights in
/// the realms they share (asked of each realm concurrently).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserQuery),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody)))]
async fn search_users(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Query(q): Query<UserQuery>,
) -> Result<Json<UserPage>> {
    let bff = bff(&s)?;
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let realms = bff.caller_realms(me).await?;
    let found = profile::candidates(&s.db, &realms, &q.q, page.limit()?, page.cursor()?).await?;
    let mut per_realm: BTreeMap<RealmId, Vec<Uuid>> = BTreeMap::new();
    for (id, rs) in &found.items {
        if *id == me {
            continue;
        }
        for r in rs {
            per_realm.entry(r.clone()).or_default().push(*id);
        }
    }
    let (full, coverage) = people::judge(bff, caller(me, &headers), &per_realm).await?;
    let people: Vec<(Uuid, Scope)> = found
        .items
        .iter()
        .map(|(id, _)| {
            let scope = if *id == me || full.contains(id) {
                Scope::Full
            } else {
                Scope::Basic
            };
            (*id, scope)
        })
        .collect();
    Ok(Json(UserPage {
        items: profile::views(&s.db, &people).await?,
        next_cursor: found.next_cursor,
        coverage,
    }))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Json<UserView>> {
    let scope = people::scope_of(bff(&s)?, me, id, caller(me, &headers)).await?;
    Ok(Json(profile::view_at(&s.db, id, scope).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UserLookup {
    /// At most 200 people.
    ids: Vec<Uuid>,
}

/// People as one caller may see them, found by id.
#[derive(serde::Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserList {
    pub items: Vec<UserView>,
    /// Which realms the answer covers (`partial`, `unavailable`, `leftOut`,
    /// `signInRequired`).
    #[serde(flatten)]
    pub coverage: bff::Coverage,
}

/// Several people at once, each as `GET /api/v1/users/{id}` shows them: basic or full
/// per the caller's rights in the realms they share. People who share no realm with the
/// caller are left out (that call's 404); each person once, in the order asked.
#[utoipa::path(post, path = "/api/v1/users/lookup", tag = "users", request_body = UserLookup,
    responses((status = 200, body = UserList), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn lookup_users(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Json(body): Json<UserLookup>,
) -> Result<Json<UserList>> {
    let bff = bff(&s)?;
    if body.ids.len() > 200 {
        return Err(Error::Unprocessable("at most 200 ids per call".into()));
    }
    let mut seen = HashSet::new();
    let ids: Vec<Uuid> = body.ids.into_iter().filter(|id| seen.insert(*id)).collect();
    let mut visible = HashSet::from([me]);
    let mut per_realm: BTreeMap<RealmId, Vec<Uuid>> = BTreeMap::new();
    for (id, realm) in profile::shared_realms_with(&s.db, me, &ids).await? {
        visible.insert(id);
        if id != me {
            per_realm.entry(realm).or_default().push(id);
        }
    }
    let (mut full, coverage) = if per_realm.is_empty() {
        Default::default()
    } else {
        people::judge(bff, caller(me, &headers), &per_realm).await?
    };
    // Applicants to a group the caller decides on, whom they share no realm with yet.
    let strangers: Vec<Uuid> = ids
        .iter()
        .filter(|id| !visible.contains(id))
        .copied()
        .collect();
    for (id, scope) in people::applicants(bff, me, &strangers, caller(me, &headers)).await? {
        visible.insert(id);
        if scope == Scope::Full {
            full.insert(id);
        }
    }
    let people: Vec<(Uuid, Scope)> = ids
        .into_iter()
        .filter(|id| visible.contains(id))
        .map(|id| {
            let scope = if id == me || full.contains(&id) {
                Scope::Full
            } else {
                Scope::Basic
            };
            (id, scope)
        })
        .collect();
    Ok(Json(UserList {
        items: profile::views(&s.db, &people).await?,
        coverage,
    }))
}

/// Replaces a person's global profile. Only the person themself, or a hub administrator
/// (GOD of the hub realm; each such change is recorded in the profile audit: who, when,
/// which fields), writes it — no realm role does (403).
#[utoipa::path(put, path = "/api/v1/users/{id}/profile", tag = "users",
    params(("id" = Uuid, Path)), request_body = ProfileInput,
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn put_user_profile(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(body): Json<ProfileInput>,
) -> Result<Json<UserView>> {
    let scope = people::require_edit(bff(&s)?, me, id, caller(me, &headers)).await?;
    let mut g = s.db.global().await?;
    profile::put_profile_as(&mut g, id, &body, me).await?;
    g.commit().await?;
    Ok(Json(profile::view_at(&s.db, id, scope).await?))
}

/// `/api/v1/realms/{realm}/…` for a realm served by a worker: checked here (the caller
/// must be signed in; the realm must be registered), then sent to the worker with a token
/// for that realm. Realms this process serves fall through to the local handlers.
///
/// Before anything else — on hub and workers alike — a path that is not canonical is
/// refused with 400: an HTTP client (and the forwarder's URL parser) resolves `..`, `.`,
/// `\` and their percent-encoded forms, so `/api/v1/realms/kszk/../../../metrics` would
/// pass the realm check here and reach another route of the worker.
pub async fn forward(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if let Err(e) = canonical_path(req.uri().path()) {
        return e.into_response();
    }
    let Some(bff) = s.bff.clone() else {
        return next.run(req).await;
    };
    let realm = {
        // Only `/api/v1/realms/{realm}/…` (something after the realm) is forwarded.
        let rest = req.uri().path().strip_prefix("/api/v1/realms/");
        match rest
            .and_then(|r| r.split_once('/'))
            .map(|(r, _)| RealmId::parse(r))
        {
            Some(Ok(r)) => r,
            _ => return next.run(req).await,
        }
    };
    if s.serves(&realm).await {
        return next.run(req).await;
    }
    let backend = match bff.remote_backend(&realm).await {
        Some(Ok(b)) => b,
        Some(Err(e)) => return e.into_response(),
        None => return next.run(req).await,
    };
    match forward_to(&s, &bff, &backend, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A path is canonical when it has no empty, `.` or `..` segment, no backslash and no
/// percent-encoded `/`, `\` or `.` (`/` alone is the root).
fn canonical_path(path: &str) -> Result<()> {
    if path == "/" {
        return Ok(());
    }
    let bad = |why: &str| Err(Error::BadRequest(format!("path is not canonical: {why}")));
    let Some(rest) = path.strip_prefix('/') else {
        return bad("it does not start with /");
    };
    for segment in rest.split('/') {
        if segment.is_empty() {
            return bad("empty segment (// or a trailing /)");
        }
        if segment == "." || segment == ".." {
            return bad("`.` or `..` segment");
        }
        if segment.contains('\\') {
            return bad("backslash");
        }
        // Every request passes here: a scan, not a lowercased copy per segment.
        let encoded_dot_or_slash = segment.as_bytes().windows(3).any(|w| {
            w[0] == b'%'
                && matches!(
                    (w[1], w[2].to_ascii_lowercase()),
                    (b'2', b'e') | (b'2', b'f') | (b'5', b'c')
                )
        });
        if encoded_dot_or_slash {
            return bad("percent-encoded `.`, `/` or `\\`");
        }
    }
    Ok(())
}

async fn forward_to(
    s: &AppState,
    bff: &Bff,
    backend: &Arc<dyn bff::RealmBackend>,
    req: Request,
) -> Result<Response> {
    let (mut parts, body) = req.into_parts();
    let Caller(me) =
        <Caller as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, s)
            .await?;
    let body = axum::body::to_bytes(body, s.max_body_bytes)
        .await
        .map_err(|_| Error::PayloadTooLarge("request body too large".into()))?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let request = BackendRequest {
        method: parts.method.clone(),
        path_and_query,
        caller: caller(me, &parts.headers),
        service_bearer: None,
        request_id: parts.headers.get("x-request-id").cloned(),
        body: (!body.is_empty()).then_some(body),
        content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
    };
    // Only idempotent calls are retried: a POST that timed out may have happened.
    let outcome = if parts.method.is_idempotent() {
        bff.call(backend, request).await
    } else {
        bff.call_once(backend, request).await
    };
    let realm = backend.realm().clone();
    let resp = match outcome {
        Outcome::Answered(r) => r,
        Outcome::Forbidden => return Err(Error::not_found(format!("realm {realm}"))),
        Outcome::Unavailable(why) => {
            let message = format!("realm {realm} is unavailable ({why}); try again later");
            return Err(why.into_error(message));
        }
    };
    bff.touch(me, &realm);
    let mut out = Response::builder().status(resp.status);
    if let Some(ct) = resp.content_type {
        out = out.header(header::CONTENT_TYPE, ct);
    }
    if let Some(cd) = resp.content_disposition {
        out = out.header(header::CONTENT_DISPOSITION, cd);
    }
    out.body(axum::body::Body::from(resp.body))
        .map_err(|e| Error::Internal(e.into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct MyPointsQuery {
    /// Only this semester, by name (e.g. `2025/26/1`; the same in every realm).
    semester: Option<Line<200>>,
}

/// The caller's points in every realm they are in, and the federated semester figures.
#[derive(serde::Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MyPoints {
    /// One entry per realm that has points for the caller (see the realm route
    /// `/api/v1/realms/{realm}/users/{id}/points`).
    pub items: Vec<serde_json::Value>,
    /// Per semester name, newest first: the formula over all the caller's groups in all
    /// realms that answered.
    pub semesters: Vec<FederatedSemester>,
    /// Per semester name: the federated `points` (truncated to two decimals).
    pub totals: BTreeMap<String, f64>,
    /// The cap of the federated figure: the hub realm's maximum points per semester.
    pub max_points_per_semester: i32,
    /// Which realms the answer covers (`partial`, `unavailable`, `leftOut`,
    /// `signInRequired`).
    #[serde(flatten)]
    pub coverage: bff::Coverage,
}

/// A person's semester points across the federation: `min(sqrt(Σ g²), cap)` over every
/// group `g` of every realm (each group's total of the semester and the one before) —
/// not a sum of the realms' figures.
#[derive(serde::Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FederatedSemester {
    pub semester_name: String,
    #[serde(flatten)]
    pub figure: SemesterFigure,
    pub groups: Vec<FederatedGroup>,
}

#[derive(serde::Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FederatedGroup {
    pub realm_id: String,
    pub group_id: Uuid,
    pub group_name: String,
    /// The group's total over the semester and the one before.
    pub points: i64,
}

/// The caller's community points: every realm they are in is asked concurrently for its
/// per-group totals, and the hub combines them with the same formula over all groups.
/// Realms that do not answer make the answer `partial` and are listed in `unavailable`.
#[utoipa::path(get, path = "/api/v1/me/points", tag = "evaluation", params(MyPointsQuery),
    responses((status = 200, body = MyPoints), (status = 401, body = ErrorBody)))]
async fn my_points(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Query(q): Query<MyPointsQuery>,
) -> Result<Json<MyPoints>> {
    let bff = bff(&s)?;
    let realms = bff.caller_realms(me).await?;
    let combined = points_across(&s, bff, me, me, &realms, &q, &headers).await?;
    let totals = combined.totals();
    Ok(Json(MyPoints {
        items: combined.items,
        semesters: combined.semesters,
        totals,
        max_points_per_semester: combined.cap,
        coverage: combined.coverage,
    }))
}

/// What the realms answered about one person's points, combined on the hub.
struct PointsAcross {
    /// The realms' own answers that have points (2xx only).
    items: Vec<serde_json::Value>,
    /// How many realms answered (2xx), with points or without: 0 means every realm
    /// refused or did not answer.
    answered: usize,
    /// Newest first, over the groups the realms listed.
    semesters: Vec<FederatedSemester>,
    cap: i32,
    coverage: bff::Coverage,
}

impl PointsAcross {
    fn totals(&self) -> BTreeMap<String, f64> {
        self.semesters
            .iter()
            .map(|s| (s.semester_name.clone(), s.figure.points))
            .collect()
    }
}

/// Asks `realms` concurrently, as `me`, for `target`'s points there, and combines the
/// groups they list with the formula. A realm that refuses (403) or lacks the semester
/// (404) contributes nothing; one that does not answer, or answers something unusable,
/// is `unavailable`. Each realm lists only the groups whose points `me` may see there
/// (every group when `me` is `target`), so the combination never shows more than the
/// realms would one by one.
async fn points_across(
    s: &AppState,
    bff: &Bff,
    me: Uuid,
    target: Uuid,
    realms: &[RealmId],
    q: &MyPointsQuery,
    headers: &HeaderMap,
) -> Result<PointsAcross> {
    let query = q
        .semester
        .as_deref()
        .map(|n| format!("?semester={}", encode(n)))
        .unwrap_or_default();
    let caller = caller(me, headers);
    // A realm without the semester, or where the caller has no foot, has nothing.
    let rules = merge::Rules {
        not_found_is_nothing: true,
        ..merge::Rules::default()
    };
    let merged = bff
        .fan_out_merged(
            realms,
            |r| {
                BackendRequest::get(
                    format!("/api/v1/realms/{r}/users/{target}/points{query}"),
                    caller.clone(),
                )
            },
            rules,
            |_, r| {
                serde_json::from_slice::<serde_json::Value>(&r.body)
                    .map(|v| (v, false))
                    .map_err(|e| e.to_string())
            },
        )
        .await?;
    let coverage = merged.coverage();
    let mut items = Vec::new();
    let mut answered = 0;
    // Semester name → (start date for ordering, (realm, group) → group).
    type Groups = BTreeMap<(String, Uuid), FederatedGroup>;
    let mut by_semester: BTreeMap<String, (String, Groups)> = BTreeMap::new();
    for (realm, v) in merged.answers {
        answered += 1;
        let semesters = v["items"].as_array().cloned().unwrap_or_default();
        if semesters.is_empty() {
            continue;
        }
        for sem in &semesters {
            let Some(name) = sem["semesterName"].as_str() else {
                continue;
            };
            let starts = sem["startsOn"].as_str().unwrap_or_default().to_string();
            let e = by_semester
                .entry(name.to_string())
                .or_insert_with(|| (starts.clone(), BTreeMap::new()));
            e.0 = e.0.clone().max(starts);
            for g in sem["groups"].as_array().into_iter().flatten() {
                let (Some(id), Some(points)) = (
                    g["groupId"].as_str().and_then(|x| x.parse::<Uuid>().ok()),
                    g["points"].as_i64(),
                ) else {
                    continue;
                };
                e.1.insert(
                    (realm.to_string(), id),
                    FederatedGroup {
                        realm_id: realm.to_string(),
                        group_id: id,
                        group_name: g["groupName"].as_str().unwrap_or_default().into(),
                        points,
                    },
                );
            }
        }
        items.push(v);
    }
    let cap = crate::evaluation::federation_cap(&s.db).await?;
    let mut semesters: Vec<(String, FederatedSemester)> = by_semester
        .into_iter()
        // A semester whose groups the caller may not see says nothing.
        .filter(|(_, (_, groups))| !groups.is_empty() || me == target)
        .map(|(name, (starts, groups))| {
            let groups: Vec<FederatedGroup> = groups.into_values().collect();
            let figure = points::semester_points(groups.iter().map(|g| g.points), i64::from(cap));
            (
                starts,
                FederatedSemester {
                    semester_name: name,
                    figure,
                    groups,
                },
            )
        })
        .collect();
    semesters.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| b.1.semester_name.cmp(&a.1.semester_name))
    });
    Ok(PointsAcross {
        items,
        answered,
        semesters: semesters.into_iter().map(|x| x.1).collect(),
        cap,
        coverage,
    })
}

/// Another person's community points as far as the caller may see them.
#[derive(serde::Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PersonPoints {
    pub user_id: Uuid,
    /// Per semester name, newest first: the formula over the person's groups whose points
    /// the caller may see, in every realm that answered (all groups for the person
    /// themself).
    pub semesters: Vec<FederatedSemester>,
    /// Per semester name: the federated `points` (truncated to two decimals).
    pub totals: BTreeMap<String, f64>,
    /// The cap of the federated figure: the hub realm's maximum points per semester.
    pub max_points_per_semester: i32,
    /// Which realms the answer covers (`partial`, `unavailable`, `leftOut`,
    /// `signInRequired`).
    #[serde(flatten)]
    pub coverage: bff::Coverage,
}

/// A person's community points across the federation, by the same formula as
/// `/api/v1/me/points`, for the person themself and for those a realm lets see the
/// points: every realm the caller shares with the person is asked, and each lists only
/// the groups whose scores the caller may see there (viewScores on the group, or
/// realm-wide) — so the figure is the formula over those groups, never more than the
/// realms would show one by one. A realm that refuses contributes nothing. 404 when the
/// caller shares no realm with the person (as `/api/v1/users/{id}`), 403 when every
/// realm refuses, 503 when no realm allowed it and some did not answer.
#[utoipa::path(get, path = "/api/v1/users/{id}/points", tag = "evaluation",
    params(("id" = Uuid, Path), MyPointsQuery),
    responses((status = 200, body = PersonPoints), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn user_points_across(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Query(q): Query<MyPointsQuery>,
) -> Result<Json<PersonPoints>> {
    let bff = bff(&s)?;
    let realms = if id == me {
        bff.caller_realms(me).await?
    } else {
        profile::shared_realms(&s.db, me, id).await?
    };
    if realms.is_empty() && id != me {
        return Err(Error::not_found(format!("user {id}")));
    }
    let combined = points_across(&s, bff, me, id, &realms, &q, &headers).await?;
    // A realm that would answer a session of another provider is no refusal: the answer
    // lists it under `signInRequired`.
    if id != me && combined.answered == 0 && combined.coverage.sign_in_required.is_empty() {
        if combined.coverage.partial {
            return Err(Error::Unavailable(format!(
                "cannot check your rights now: realm(s) {} did not answer",
                combined
                    .coverage
                    .unavailable
                    .iter()
                    .map(RealmId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        return Err(Error::forbidden(format!("see the points of user {id}")));
    }
    let totals = combined.totals();
    Ok(Json(PersonPoints {
        user_id: id,
        semesters: combined.semesters,
        totals,
        max_points_per_semester: combined.cap,
        coverage: combined.coverage,
    }))
}
