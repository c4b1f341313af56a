//! Community evaluation pages: a group's scoreboard as a table (members × guidelines)
//! with live per-member totals by the PéK formula, comments per cell, submit; the list
//! of submitted scoreboards to accept or reject with a reason; a person's semester
//! points across realms.
//!
//! Like every page, these get and change data only through the hub's JSON API called
//! in-process as the signed-in person (see [`super::api`]): the evaluation API decides
//! who may edit, submit, accept or see what, and in which season; a refusal is shown
//! with the API's own message. Forms work without JavaScript (POST, then a redirect);
//! htmx only saves a cell as it changes and swaps in the member's new total, which the
//! API computes with the same formula code ([`crate::evaluation::points`]).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::api::{enc, Api, ApiError};
use super::i18n::Lang;
use super::signed_in::SignedIn;
use super::views::evaluation::{self as views, scoreboard_href, Board, Notice, Row};
use super::{html as page_html, Ctx};
use crate::evaluation::request::{CellComment, PointRequest};
use crate::evaluation::scoreboard::Scoreboard;
use crate::http::AppState;
use crate::membership::GroupMembership;
use crate::profile::UserView;
use crate::realm::RealmId;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/evaluation", get(overview))
        .route(
            "/realms/{realm}/groups/{id}/scoreboard",
            get(group_scoreboard).post(start_scoreboard),
        )
        .route("/realms/{realm}/scoreboards/{id}", get(scoreboard_page))
        .route(
            "/realms/{realm}/scoreboards/{id}/cells",
            axum::routing::post(save_cells),
        )
        .route(
            "/realms/{realm}/scoreboards/{id}/{action}",
            axum::routing::post(scoreboard_action),
        )
        .route(
            "/realms/{realm}/scoreboards/{id}/entries/{membership}",
            axum::routing::post(entry_action),
        )
        .route(
            "/realms/{realm}/scoreboards/{id}/cells/{membership}/{guideline}",
            get(cell_page).post(add_cell_comment),
        )
}

// --- helpers -----------------------------------------------------------------------

/// Form fields of a urlencoded body.
fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A path segment that must be a realm id and one that must be a UUID, or 404.
fn ids(realm: &str, id: &str) -> Option<(RealmId, uuid::Uuid)> {
    Some((RealmId::parse(realm).ok()?, uuid::Uuid::parse_str(id).ok()?))
}

fn not_found() -> ApiError {
    ApiError::Status(StatusCode::NOT_FOUND, String::new())
}

/// The names of people (what the API shows the caller), by user id, told apart where
/// two read the same (see [`super::views::distinct_labels`]): one lookup per 200 people,
/// not one call per person.
async fn names(
    api: &Api,
    lang: Lang,
    users: impl IntoIterator<Item = Uuid>,
) -> HashMap<Uuid, String> {
    let mut ids: Vec<Uuid> = users.into_iter().collect();
    ids.sort();
    ids.dedup();
    let found = futures::future::join_all(ids.chunks(200).map(|chunk| async move {
        match api.lookup_users(chunk).await {
            Ok(list) => list.items,
            Err(e) => {
                tracing::warn!(error = ?e, "looking up people's names");
                Vec::new()
            }
        }
    }))
    .await;
    let people: Vec<UserView> = found.into_iter().flatten().collect();
    let mut labels = super::views::distinct_labels(lang, &people);
    ids.into_iter()
        .map(|id| {
            let name = labels
                .remove(&id)
                .unwrap_or_else(|| lang.t().unnamed.to_string());
            (id, name)
        })
        .collect()
}

/// An API error the page should show in place (a refusal, with what to say of it in
/// the page's language beyond its status), or the error page for anything else.
enum Outcome {
    Refused(StatusCode, String),
    Fail(ApiError),
}

/// The API's refusal (its words already the page's: see `Api::refusal`), or a failure.
fn outcome(e: ApiError) -> Outcome {
    match e {
        ApiError::Status(s, m) if s.is_client_error() && s != StatusCode::NOT_FOUND => {
            Outcome::Refused(s, m)
        }
        e => Outcome::Fail(e),
    }
}

fn done_notice(lang: Lang, done: Option<&str>) -> Option<Notice> {
    let e = lang.eval();
    Some(Notice::Ok(match done? {
        "saved" => e.saved,
        "submitted" => e.submitted,
        "accepted" => e.accepted,
        "rejected" => e.rejected,
        "commented" => e.saved,
        _ => return None,
    }))
}

// --- the overview: my points, my groups' scoreboards, scoreboards to judge -----------

async fn overview(SignedIn { ctx, api }: SignedIn, Query(q): Query<DoneQuery>) -> Response {
    let (me, points, groups) = tokio::join!(api.me(), api.my_points(), api.my_groups());
    let (me, points, groups) = match (me, points, groups) {
        (Ok(m), Ok(p), Ok(g)) => (m, p, g),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return ctx.fail(&api, e).await,
    };
    // The judge's queue in every realm (the BFF asks each; a realm outside the judging
    // season has none, and only what the API lets this person evaluate is listed).
    let queues = match api.my_judging().await {
        Ok(q) => q,
        Err(e) => return ctx.fail(&api, e).await,
    };
    // Whether the person judges in a realm that is judging now (the queue is shown
    // then, even when empty).
    let judging = queues.items.iter().any(|q| q.queue.judging);
    let pending: Vec<views::Pending> = queues
        .items
        .into_iter()
        .filter_map(|q| {
            let realm = RealmId::parse(&q.realm_id).ok()?;
            Some(q.queue.items.into_iter().map(move |j| views::Pending {
                realm: realm.clone(),
                scoreboard: j.scoreboard,
                group_name: j.group_name,
            }))
        })
        .flatten()
        .collect();
    // The groups whose scoreboard this person fills: those the API lets them edit the
    // scores of (the page does not guess it from a post's name).
    let current: Vec<&GroupMembership> = groups
        .items
        .iter()
        .map(|m| &m.membership)
        .filter(|m| matches!(m.status.as_str(), "NEWBIE" | "ACTIVE"))
        .collect();
    let may_edit = futures::future::join_all(
        current
            .iter()
            .map(|m| api.allowed(&m.realm_id, "editScores", Some(m.group_id))),
    )
    .await;
    let led: Vec<&GroupMembership> = current
        .into_iter()
        .zip(may_edit)
        .filter_map(|(m, ok)| ok.then_some(m))
        .collect();
    let realm_names = api.realm_names().await;
    let lang = ctx.lang;
    let n = done_notice(lang, q.done.as_deref());
    let body = views::overview(
        lang,
        &views::Overview {
            csrf: &ctx.csrf,
            notice: n.as_ref(),
            points: (&points).into(),
            led: &led,
            judging,
            pending: &pending,
            judged: &queues.coverage,
        },
        &realm_names,
    );
    ctx.page(StatusCode::OK, lang.eval().title, Some(&me), body)
}

// --- a group's scoreboard of the semester being evaluated ----------------------------

async fn group_scoreboard(
    SignedIn { ctx, api }: SignedIn,
    Path((realm, id)): Path<(String, String)>,
) -> Response {
    render_group_scoreboard(&ctx, &api, &realm, &id, None).await
}

async fn render_group_scoreboard(
    ctx: &Ctx,
    api: &Api,
    realm: &str,
    id: &str,
    refused: Option<(StatusCode, String)>,
) -> Response {
    let Some((realm, id)) = ids(realm, id) else {
        return ctx.fail(api, not_found()).await;
    };
    let (me, group, settings) = tokio::join!(
        api.me(),
        api.group(&realm, id),
        api.evaluation_settings(&realm),
    );
    let (me, group, settings) = match (me, group, settings) {
        (Ok(m), Ok(g), Ok(s)) => (m, g, s),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return ctx.fail(api, e).await,
    };
    if let (Some(semester), None) = (settings.semester_id, &refused) {
        let query = format!("groupId={id}&semesterId={semester}&limit=100");
        match api.scoreboards(&realm, &query).await {
            Ok(page) => {
                // The newest version is the live one.
                let latest = page.items.iter().max_by_key(|sb| sb.version);
                if let Some(sb) = latest {
                    return Redirect::to(&views::scoreboard_href(
                        realm.as_str(),
                        &sb.id.to_string(),
                    ))
                    .into_response();
                }
            }
            Err(e) => return ctx.fail(api, e).await,
        }
    }
    let lang = ctx.lang;
    let title = format!("{} — {}", group.name, lang.eval().scoreboard);
    let status = refused.as_ref().map(|r| r.0).unwrap_or(StatusCode::OK);
    let n = refused.map(|r| Notice::Refused(r.0, r.1));
    let body = views::no_scoreboard(
        lang,
        &ctx.csrf,
        realm.as_str(),
        &group,
        &settings,
        n.as_ref(),
    );
    ctx.page(status, &title, Some(&me), body)
}

async fn start_scoreboard(
    SignedIn { mut ctx, api }: SignedIn,
    Path((realm, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let here = format!("{}/scoreboard", views::group_href(&realm, &id));
    ctx.here = here;
    let Some((realm_id, gid)) = ids(&realm, &id) else {
        return ctx.fail(&api, not_found()).await;
    };
    let f = form(&body);
    let semester = field(&f, "semesterId").unwrap_or("").trim().to_string();
    let created = api
        .call::<Scoreboard>(
            Method::POST,
            &format!("/api/v1/realms/{realm_id}/scoreboards"),
            Some(json!({"groupId": gid, "semesterId": semester})),
        )
        .await;
    match created {
        Ok(sb) => Redirect::to(&views::scoreboard_href(
            realm_id.as_str(),
            &sb.id.to_string(),
        ))
        .into_response(),
        Err(e) => match outcome(e) {
            Outcome::Refused(status, m) => {
                render_group_scoreboard(&ctx, &api, &realm, &id, Some((status, m))).await
            }
            Outcome::Fail(e) => ctx.fail(&api, e).await,
        },
    }
}

// --- the scoreboard --------------------------------------------------------------------

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn scoreboard_page(
    SignedIn { ctx, api }: SignedIn,
    Path((realm, id)): Path<(String, String)>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let n = done_notice(ctx.lang, q.done.as_deref());
    render_scoreboard(&ctx, &api, &realm, &id, StatusCode::OK, n, None).await
}

async fn load_board(api: &Api, lang: Lang, realm: &RealmId, id: Uuid) -> Result<Board, ApiError> {
    let (me, detail, settings, semesters) = tokio::join!(
        api.me(),
        api.scoreboard(realm, id),
        api.evaluation_settings(realm),
        api.semesters(realm),
    );
    let (me, detail, settings) = (me?, detail?, settings?);
    let group_id = detail.scoreboard.group_id;
    let (group, members, may_edit, may_judge) = tokio::join!(
        api.group(realm, group_id),
        api.group_members(realm, group_id, 200),
        api.allowed(realm.as_str(), "editScores", Some(group_id)),
        api.allowed(realm.as_str(), "evaluateScores", Some(group_id)),
    );
    let group = group?;
    let semester_name = semesters
        .ok()
        .and_then(|list| {
            list.into_iter()
                .find(|x| x.id == detail.scoreboard.semester_id)
                .map(|x| x.name)
        })
        .unwrap_or_default();
    // Rows: one per person — the membership their requests are on (a member who has
    // left since keeps their row), else their current membership.
    let mut rows: Vec<(Uuid, Uuid)> = Vec::new();
    for p in &detail.point_requests {
        if !rows.iter().any(|(_, u)| *u == p.user_id) {
            rows.push((p.membership_id, p.user_id));
        }
    }
    if let Ok(page) = members {
        for m in page.items {
            if matches!(m.status.as_str(), "NEWBIE" | "ACTIVE")
                && !rows.iter().any(|(_, u)| *u == m.user_id)
            {
                rows.push((m.id, m.user_id));
            }
        }
    }
    let mut who = names(api, lang, rows.iter().map(|(_, u)| *u)).await;
    let mut rows: Vec<Row> = rows
        .into_iter()
        .map(|(membership, user)| Row {
            membership,
            name: who.remove(&user).unwrap_or_default(),
        })
        .collect();
    rows.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.membership.cmp(&b.membership))
    });
    Ok(Board {
        me,
        detail,
        settings,
        group,
        semester_name,
        rows,
        may_edit,
        may_judge,
    })
}

async fn render_scoreboard(
    ctx: &Ctx,
    api: &Api,
    realm: &str,
    id: &str,
    status: StatusCode,
    n: Option<Notice>,
    typed: Option<&BTreeMap<(String, String), String>>,
) -> Response {
    let Some((realm, id)) = ids(realm, id) else {
        return ctx.fail(api, not_found()).await;
    };
    let (board, realm_names) =
        tokio::join!(load_board(api, ctx.lang, &realm, id), api.realm_names());
    let board = match board {
        Ok(b) => b,
        Err(e) => return ctx.fail(api, e).await,
    };
    let title = format!("{} — {}", board.group.name, ctx.lang.eval().scoreboard);
    let realm_name = realm_names(realm.as_str());
    let body = views::scoreboard(
        ctx.lang,
        &views::ScoreboardPage {
            csrf: &ctx.csrf,
            realm: realm.as_str(),
            realm_name: &realm_name,
            board: &board,
            notice: n.as_ref(),
            typed,
        },
    );
    ctx.page(status, &title, Some(&board.me), body)
}

/// `POST /realms/{realm}/scoreboards/{id}/entries/{membership}`: the member's entry award
/// request — `do=save` sets it (or, with no kind, removes it), `accept` and `reject`
/// review it — each through the API, which decides.
async fn entry_action(
    SignedIn { mut ctx, api }: SignedIn,
    Path((realm, id, membership)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let (Some((realm_id, sid)), Ok(membership)) =
        (ids(&realm, &id), uuid::Uuid::parse_str(&membership))
    else {
        return ctx.fail(&api, not_found()).await;
    };
    ctx.here = scoreboard_href(realm_id.as_str(), &sid.to_string());
    let f = form(&body);
    let path =
        format!("/api/v1/realms/{realm_id}/scoreboards/{sid}/entry-award-requests/{membership}");
    let kind = field(&f, "kind").unwrap_or("").trim();
    let (method, path, payload, done) = match field(&f, "do").unwrap_or("") {
        "save" if kind.is_empty() => (Method::DELETE, path, None, "saved"),
        "save" => (
            Method::PUT,
            path,
            Some(
                json!({"kind": kind, "justification": field(&f, "justification").unwrap_or("").trim()}),
            ),
            "saved",
        ),
        "accept" => (Method::POST, format!("{path}/accept"), None, "accepted"),
        "reject" => (
            Method::POST,
            format!("{path}/reject"),
            Some(json!({"reason": field(&f, "reason").unwrap_or("").trim()})),
            "rejected",
        ),
        _ => return ctx.fail(&api, not_found()).await,
    };
    let result = match api.raw(method, &path, payload).await {
        Ok((status, _)) if status.is_success() => Ok(()),
        Ok((StatusCode::UNAUTHORIZED, _)) => Err(ApiError::SignedOut),
        Ok((status, bytes)) => Err(ApiError::Status(status, api.refusal(&bytes))),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to(&format!(
            "{}?done={done}#entry-awards",
            scoreboard_href(realm_id.as_str(), &sid.to_string())
        ))
        .into_response(),
        Err(e) => match outcome(e) {
            Outcome::Refused(status, m) => {
                render_scoreboard(
                    &ctx,
                    &api,
                    &realm,
                    &id,
                    status,
                    Some(Notice::Refused(status, m)),
                    None,
                )
                .await
            }
            Outcome::Fail(e) => ctx.fail(&api, e).await,
        },
    }
}

/// Every cell of a scoreboard form: (membership, guideline, typed value, shown value).
/// A cell `p:{i}:{j}` is the `i`th `m` (membership) and the `j`th `g` (guideline) field;
/// `o:{i}:{j}` is the value the page showed. Cells that name no row or column are
/// returned with empty ids (the API refuses them).
fn cells(f: &[(String, String)]) -> Vec<(String, String, String, String)> {
    let all = |name: &str| -> Vec<&str> {
        f.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let (rows, cols) = (all("m"), all("g"));
    let shown: HashMap<&str, &str> = f
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("o:").map(|k| (k, v.as_str())))
        .collect();
    f.iter()
        .filter_map(|(k, v)| {
            let cell = k.strip_prefix("p:")?;
            let (i, j) = cell.split_once(':')?;
            let pick = |list: &[&str], x: &str| {
                x.parse::<usize>()
                    .ok()
                    .and_then(|x| list.get(x))
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            };
            Some((
                pick(&rows, i),
                pick(&cols, j),
                v.trim().to_string(),
                shown
                    .get(cell)
                    .map(|o| o.trim().to_string())
                    .unwrap_or_default(),
            ))
        })
        .collect()
}

/// The cells a form changes: those whose value differs from the one the page showed.
/// With `only` (the `p:{i}:{j}` htmx names as the cell that changed), that cell alone.
fn changed_cells(f: &[(String, String)], only: Option<&str>) -> Vec<(String, String, String)> {
    let names: Vec<&str> = f
        .iter()
        .filter(|(k, _)| k.starts_with("p:"))
        .map(|(k, _)| k.as_str())
        .collect();
    cells(f)
        .into_iter()
        .zip(names)
        .filter(|((.., value, shown), name)| match only {
            Some(o) => o == *name,
            None => value != shown,
        })
        .map(|((m, g, value, _), _)| (m, g, value))
        .collect()
}

/// Saves cells through the API: a positive number sets the request, empty or 0 removes
/// it. Stops at the first refusal and returns its message.
async fn save(
    api: &Api,
    lang: Lang,
    realm: &RealmId,
    id: uuid::Uuid,
    cells: &[(String, String, String)],
) -> Result<(), Outcome> {
    for (m, g, v) in cells {
        let (Ok(m), Ok(g)) = (uuid::Uuid::parse_str(m), uuid::Uuid::parse_str(g)) else {
            return Err(Outcome::Refused(StatusCode::BAD_REQUEST, "bad cell".into()));
        };
        let path = format!("/api/v1/realms/{realm}/scoreboards/{id}/point-requests/{m}/{g}");
        let points: i64 = if v.is_empty() {
            0
        } else {
            match v.parse() {
                Ok(p) => p,
                Err(_) => {
                    return Err(Outcome::Refused(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("{}: {v:?}", lang.eval().not_a_number),
                    ))
                }
            }
        };
        let r = if points == 0 {
            match api.raw(Method::DELETE, &path, None).await {
                Ok((s, _)) if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
                Ok((s, b)) => Err(ApiError::Status(s, api.refusal(&b))),
                Err(e) => Err(e),
            }
        } else {
            match api
                .call::<PointRequest>(Method::PUT, &path, Some(json!({ "points": points })))
                .await
            {
                // Out of the guideline's bounds: said in the page's words, with the value.
                Err(ApiError::Status(StatusCode::UNPROCESSABLE_ENTITY, m)) => {
                    return Err(Outcome::Refused(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        match lang {
                            Lang::Hu => format!("{}: {v}", lang.eval().points_out_of_bounds),
                            Lang::En => m,
                        },
                    ))
                }
                r => r.map(|_| ()),
            }
        };
        r.map_err(outcome)?;
    }
    Ok(())
}

async fn save_cells(
    SignedIn { mut ctx, api }: SignedIn,
    headers: HeaderMap,
    Path((realm, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    ctx.here = scoreboard_href(&realm, &id);
    let Some((realm_id, sid)) = ids(&realm, &id) else {
        return ctx.fail(&api, not_found()).await;
    };
    let f = form(&body);
    let htmx = headers.contains_key("hx-request");
    let trigger = headers
        .get("hx-trigger-name")
        .and_then(|v| v.to_str().ok())
        .filter(|t| t.starts_with("p:"));
    let changed = changed_cells(&f, if htmx { trigger } else { None });
    let saved = save(&api, ctx.lang, &realm_id, sid, &changed).await;
    if htmx {
        // The new totals, computed by the API with the formula, for every row.
        let detail = match api.scoreboard(&realm_id, sid).await {
            Ok(d) => d,
            Err(e) => return ctx.fail(&api, e).await,
        };
        let rows: Vec<String> = f
            .iter()
            .filter(|(k, _)| k == "m")
            .map(|(_, v)| v.clone())
            .collect();
        let scores = views::scores_by_membership(&detail.members);
        let said = match &saved {
            Ok(()) => Ok(()),
            Err(Outcome::Refused(status, m)) => Err(Some((*status, m.as_str()))),
            Err(Outcome::Fail(_)) => Err(None),
        };
        return page_html(
            StatusCode::OK,
            views::cells_saved(ctx.lang, said, &rows, &scores),
        );
    }
    match saved {
        Ok(()) => Redirect::to(&format!(
            "{}?done=saved",
            scoreboard_href(realm_id.as_str(), &sid.to_string())
        ))
        .into_response(),
        Err(Outcome::Refused(status, m)) => {
            // The page again, with what was typed and the API's message.
            let typed: BTreeMap<(String, String), String> = cells(&f)
                .into_iter()
                .map(|(m, g, value, _)| ((m, g), value))
                .collect();
            render_scoreboard(
                &ctx,
                &api,
                &realm,
                &id,
                status,
                Some(Notice::Refused(status, m)),
                Some(&typed),
            )
            .await
        }
        Err(Outcome::Fail(e)) => ctx.fail(&api, e).await,
    }
}

/// submit, accept, reject, versions: the scoreboard's transitions, as the API allows.
async fn scoreboard_action(
    SignedIn { mut ctx, api }: SignedIn,
    Path((realm, id, action)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    ctx.here = scoreboard_href(&realm, &id);
    let Some((realm_id, sid)) = ids(&realm, &id) else {
        return ctx.fail(&api, not_found()).await;
    };
    let f = form(&body);
    let (payload, done) = match action.as_str() {
        "submit" => (None, "submitted"),
        "accept" => (None, "accepted"),
        "reject" => (
            Some(json!({"reason": field(&f, "reason").unwrap_or("").trim()})),
            "rejected",
        ),
        "versions" => (None, "saved"),
        _ => return ctx.fail(&api, not_found()).await,
    };
    let path = format!("/api/v1/realms/{realm_id}/scoreboards/{sid}/{action}");
    match api.call::<Scoreboard>(Method::POST, &path, payload).await {
        Ok(v) => {
            let to = if action == "versions" {
                scoreboard_href(realm_id.as_str(), &v.id.to_string())
            } else {
                match field(&f, "back") {
                    Some(b) => crate::login::safe_return_path(Some(b)),
                    None => scoreboard_href(realm_id.as_str(), &sid.to_string()),
                }
            };
            let sep = if to.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{to}{sep}done={done}")).into_response()
        }
        Err(e) => match outcome(e) {
            Outcome::Refused(status, m) => {
                render_scoreboard(
                    &ctx,
                    &api,
                    &realm,
                    &id,
                    status,
                    Some(Notice::Refused(status, m)),
                    None,
                )
                .await
            }
            Outcome::Fail(e) => ctx.fail(&api, e).await,
        },
    }
}

// --- comments on one cell --------------------------------------------------------------

async fn cell_page(
    SignedIn { ctx, api }: SignedIn,
    Path((realm, id, membership, guideline)): Path<(String, String, String, String)>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let n = done_notice(ctx.lang, q.done.as_deref());
    render_cell(
        &ctx,
        &api,
        (&realm, &id, &membership, &guideline),
        StatusCode::OK,
        n,
    )
    .await
}

async fn render_cell(
    ctx: &Ctx,
    api: &Api,
    (realm, id, membership, guideline): (&str, &str, &str, &str),
    status: StatusCode,
    n: Option<Notice>,
) -> Response {
    let (Some((realm, sid)), Ok(m), Ok(g)) = (
        ids(realm, id),
        uuid::Uuid::parse_str(membership),
        uuid::Uuid::parse_str(guideline),
    ) else {
        return ctx.fail(api, not_found()).await;
    };
    let board = match load_board(api, ctx.lang, &realm, sid).await {
        Ok(b) => b,
        Err(e) => return ctx.fail(api, e).await,
    };
    let comments = match api.cell_comments(&realm, sid, m, g).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(api, e).await,
    };
    let authors = names(api, ctx.lang, comments.iter().map(|c| c.author_id)).await;
    let page = views::CellPage {
        csrf: &ctx.csrf,
        realm: realm.as_str(),
        board: &board,
        membership: m,
        guideline: g,
        comments: &comments,
        authors: &authors,
        notice: n.as_ref(),
    };
    let title = format!(
        "{} — {} — {}",
        ctx.lang.eval().comments_of_cell,
        page.member(),
        page.guideline_title()
    );
    ctx.page(
        status,
        &title,
        Some(&board.me),
        views::cell(ctx.lang, &page),
    )
}

async fn add_cell_comment(
    SignedIn { mut ctx, api }: SignedIn,
    Path((realm, id, membership, guideline)): Path<(String, String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let here = format!(
        "{}/cells/{}/{}",
        scoreboard_href(&realm, &id),
        enc(&membership),
        enc(&guideline)
    );
    ctx.here = here.clone();
    let (Some((realm_id, sid)), Ok(m), Ok(g)) = (
        ids(&realm, &id),
        uuid::Uuid::parse_str(&membership),
        uuid::Uuid::parse_str(&guideline),
    ) else {
        return ctx.fail(&api, not_found()).await;
    };
    let f = form(&body);
    let text = field(&f, "body").unwrap_or("").to_string();
    let path =
        format!("/api/v1/realms/{realm_id}/scoreboards/{sid}/point-requests/{m}/{g}/comments");
    match api
        .call::<CellComment>(Method::POST, &path, Some(json!({ "body": text })))
        .await
    {
        Ok(_) => Redirect::to(&format!("{here}?done=commented")).into_response(),
        Err(e) => match outcome(e) {
            Outcome::Refused(status, msg) => {
                render_cell(
                    &ctx,
                    &api,
                    (&realm, &id, &membership, &guideline),
                    status,
                    Some(Notice::Refused(status, msg)),
                )
                .await
            }
            Outcome::Fail(e) => ctx.fail(&api, e).await,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_cells_are_saved_and_htmx_saves_the_one_that_changed() {
        let f = form(b"csrf=x&m=m1&m=m2&g=g1&g=g2&p:0:0=2&o:0:0=&p:0:1=1&o:0:1=1&p:1:0=&o:1:0=4");
        assert_eq!(
            changed_cells(&f, None),
            vec![
                ("m1".into(), "g1".into(), "2".into()),
                ("m2".into(), "g1".into(), String::new())
            ]
        );
        assert_eq!(
            changed_cells(&f, Some("p:0:1")),
            vec![("m1".into(), "g2".into(), "1".into())]
        );
    }
}
