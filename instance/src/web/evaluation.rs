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
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{enc, Api, ApiError};
use super::i18n::{self, Lang};
use super::signed_in::SignedIn;
use super::{html as page_html, Ctx};
use crate::http::AppState;
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

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// A figure as people read it: two decimals, with the language's decimal mark.
fn decimal(lang: Lang, v: f64) -> String {
    let t = format!("{v:.2}");
    match lang {
        Lang::Hu => t.replace('.', ","),
        Lang::En => t,
    }
}

fn season_text(lang: Lang, season: &str) -> String {
    let e = lang.eval();
    match season {
        "OFF" => e.season_off.to_string(),
        "SUBMISSION" => e.season_submission.to_string(),
        "JUDGING" => e.season_judging.to_string(),
        other => other.to_string(),
    }
}

fn category(lang: Lang, c: &str) -> &'static str {
    let e = lang.eval();
    if c == "RESPONSIBILITY" {
        e.responsibility
    } else {
        e.work
    }
}

fn scoreboard_href(realm: &str, id: &str) -> String {
    format!("/realms/{}/scoreboards/{}", enc(realm), enc(id))
}

fn group_href(realm: &str, id: &str) -> String {
    format!("/realms/{}/groups/{}", enc(realm), enc(id))
}

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
    users: impl IntoIterator<Item = String>,
) -> HashMap<String, String> {
    let mut ids: Vec<String> = users.into_iter().collect();
    ids.sort();
    ids.dedup();
    let found = futures::future::join_all(ids.chunks(200).map(|chunk| {
        let api = api.clone();
        let body = serde_json::json!({ "ids": chunk });
        async move {
            match api
                .call::<Value>(Method::POST, "/api/v1/users/lookup", Some(body))
                .await
            {
                Ok(v) => v["items"].as_array().cloned().unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(error = ?e, "looking up people's names");
                    Vec::new()
                }
            }
        }
    }))
    .await;
    let people: Vec<Value> = found.into_iter().flatten().collect();
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

/// A message on top of a page: a confirmation or the API's refusal.
#[derive(Clone)]
enum Notice {
    Ok(&'static str),
    Refused(StatusCode, String),
}

fn notice(lang: Lang, n: Option<&Notice>) -> Markup {
    html! {
        @match n {
            Some(Notice::Ok(m)) => p.notice.ok role="status" { (m) },
            Some(Notice::Refused(status, m)) => p.notice #refused role="alert" {
                (lang.eval().refused) " " (super::views::failure_text(lang, *status))
                @if !m.is_empty() { " " (m) }
            },
            None => {},
        }
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

/// Whether the API says the caller may do `action` on the group (`…/permissions`).
async fn allowed(api: &Api, realm: &str, action: &str, group: &str) -> bool {
    api.get::<Value>(&format!(
        "/api/v1/realms/{}/permissions?action={action}&groupId={}",
        enc(realm),
        enc(group)
    ))
    .await
    .is_ok_and(|v| v["allowed"] == true)
}

// --- a person's points ---------------------------------------------------------------

/// Semester figures of `/api/v1/me/points` or `/api/v1/users/{id}/points`.
fn points_table(lang: Lang, answer: &Value, realm_names: &dyn Fn(&str) -> String) -> Markup {
    let e = lang.eval();
    let semesters = answer["semesters"].as_array().cloned().unwrap_or_default();
    html! {
        (super::views::partial_notice(lang, answer, realm_names))
        @if semesters.is_empty() { p { (e.no_points) } }
        @for sem in &semesters {
            @let name = s(sem, "semesterName");
            @let points = sem["points"].as_f64().unwrap_or(0.0);
            section.semester aria-label={ (e.semester) " " (name) } {
                h3 {
                    (name) ": "
                    strong.figure data-semester=(name) { (decimal(lang, points)) }
                    " " span.muted { "(" (e.points_integer) ": " (sem["pointsInteger"].as_i64().unwrap_or(0)) ")" }
                }
                @let groups = sem["groups"].as_array().cloned().unwrap_or_default();
                @if !groups.is_empty() {
                    ul.plain {
                        @for g in &groups {
                            li {
                                a href=(group_href(s(g, "realmId"), s(g, "groupId"))) { (s(g, "groupName")) }
                                " " span.muted { "(" (realm_names(s(g, "realmId"))) ")" }
                                ": " (g["points"].as_i64().unwrap_or(0))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The points section of a person's page, for those the API lets see them.
pub(super) fn person_points(
    lang: Lang,
    answer: &Value,
    realm_names: &dyn Fn(&str) -> String,
) -> Markup {
    let e = lang.eval();
    html! {
        section aria-labelledby="points-title" {
            h2 #points-title { (e.their_points) }
            p.muted { (e.their_points_intro) }
            (points_table(lang, answer, realm_names))
        }
    }
}

// --- the overview: my points, my groups' scoreboards, scoreboards to judge -----------

async fn overview(SignedIn { ctx, api }: SignedIn, Query(q): Query<DoneQuery>) -> Response {
    let (me, points, groups) = tokio::join!(
        api.get::<Value>("/api/v1/me"),
        api.get::<Value>("/api/v1/me/points"),
        api.get::<Value>("/api/v1/me/groups"),
    );
    let (me, points, groups) = match (me, points, groups) {
        (Ok(m), Ok(p), Ok(g)) => (m, p, g),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return ctx.fail(&api, e).await,
    };
    // Submitted scoreboards in every registered realm: each realm's API lists the ones
    // this person may see (none where they have no rights).
    let mut realms: Vec<String> = match &ctx.state.bff {
        Some(b) => b
            .registry
            .all()
            .await
            .keys()
            .map(|r| r.to_string())
            .collect(),
        None => Vec::new(),
    };
    realms.push(RealmId::hub().to_string());
    realms.sort();
    realms.dedup();
    // The judge's queue exists only in the judging season: a realm in another season is
    // not asked for its submissions at all (accepting them would be refused anyway).
    let lists = futures::future::join_all(realms.iter().map(|r| {
        let api = api.clone();
        let base = format!("/api/v1/realms/{}", enc(r));
        async move {
            let settings = api
                .get::<crate::evaluation::Settings>(&format!("{base}/evaluation-settings"))
                .await?;
            if settings.season != crate::evaluation::Season::Judging {
                return Ok(None);
            }
            let (judge_path, list_path) = (
                format!("{base}/permissions?action=evaluateScores"),
                format!("{base}/scoreboards?status=NOT_YET_EVALUATED&limit=100"),
            );
            let (judge, page) =
                tokio::join!(api.get::<Value>(&judge_path), api.get::<Value>(&list_path),);
            let judge = judge.is_ok_and(|v| v["allowed"] == true);
            Ok(Some((judge, page?)))
        }
    }))
    .await;
    let mut pending: Vec<(String, Value)> = Vec::new();
    let mut unavailable: Vec<String> = Vec::new();
    // Whether the person judges in a realm that is judging now (the queue is shown
    // then, even when empty).
    let mut judging = false;
    for (realm, l) in realms.iter().zip(lists) {
        match l {
            Ok(None) => {}
            Ok(Some((judge, page))) => {
                judging |= judge;
                for sb in page["items"].as_array().into_iter().flatten() {
                    pending.push((realm.clone(), sb.clone()));
                }
            }
            Err(ApiError::Status(code, _)) if code.is_server_error() => {
                unavailable.push(realm.clone())
            }
            Err(ApiError::SignedOut) => return ctx.fail(&api, ApiError::SignedOut).await,
            Err(_) => {}
        }
    }
    // Only those the API lets this person evaluate are theirs to judge.
    let judgeable = futures::future::join_all(
        pending
            .iter()
            .map(|(r, sb)| allowed(&api, r, "evaluateScores", s(sb, "groupId"))),
    )
    .await;
    let pending: Vec<(String, Value)> = pending
        .into_iter()
        .zip(judgeable)
        .filter_map(|(p, ok)| ok.then_some(p))
        .collect();
    let group_names = futures::future::join_all(pending.iter().map(|(r, sb)| {
        let api = api.clone();
        let path = format!("/api/v1/realms/{}/groups/{}", enc(r), enc(s(sb, "groupId")));
        async move {
            api.get::<Value>(&path)
                .await
                .ok()
                .map(|g| s(&g, "name").to_string())
        }
    }))
    .await;
    let realm_names = ctx.realm_names().await;
    let lang = ctx.lang;
    let e = lang.eval();
    // The groups whose scoreboard this person fills: those the API lets them edit the
    // scores of (the page does not guess it from a post's name).
    let current: Vec<&Value> = groups["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| matches!(m["status"].as_str(), Some("NEWBIE" | "ACTIVE")))
        .collect();
    let may_edit = futures::future::join_all(
        current
            .iter()
            .map(|m| allowed(&api, s(m, "realmId"), "editScores", s(m, "groupId"))),
    )
    .await;
    let led: Vec<&Value> = current
        .into_iter()
        .zip(may_edit)
        .filter_map(|(m, ok)| ok.then_some(m))
        .collect();
    let judged_unavailable =
        json!({"partial": !unavailable.is_empty(), "unavailable": unavailable});
    let n = done_notice(lang, q.done.as_deref());
    let body = html! {
        h1 { (e.title) }
        (notice(lang, n.as_ref()))
        section aria-labelledby="my-points-title" {
            h2 #my-points-title { (e.my_points) }
            p.muted { (e.my_points_intro) }
            (points_table(lang, &points, &realm_names))
        }
        @if !led.is_empty() {
            section aria-labelledby="my-boards-title" {
                h2 #my-boards-title { (e.my_scoreboards) }
                p.muted { (e.my_scoreboards_intro) }
                ul.plain {
                    @for m in &led {
                        @let realm = s(m, "realmId");
                        li {
                            a href={ (group_href(realm, s(m, "groupId"))) "/scoreboard" } {
                                (s(m, "groupName")) " — " (e.scoreboard)
                            }
                            " " span.muted { "(" (realm_names(realm)) ")" }
                        }
                    }
                }
            }
        }
        @if judging || !pending.is_empty() || !unavailable.is_empty() {
        section aria-labelledby="judge-title" {
            h2 #judge-title { (e.to_judge) }
            p.muted { (e.to_judge_intro) }
            (super::views::partial_notice(lang, &judged_unavailable, &realm_names))
            @if pending.is_empty() { p { (e.nothing_to_judge) } }
            ul.cards {
                @for ((realm, sb), group) in pending.iter().zip(&group_names) {
                    @let id = s(sb, "id");
                    @let group = group.clone().unwrap_or_default();
                    li.judge {
                        a.title href=(scoreboard_href(realm, id)) { (group) " — " (e.scoreboard) }
                        dl.facts {
                            dt { (e.realm) } dd { (realm_names(realm)) }
                            dt { (e.version) } dd { (sb["version"].as_i64().unwrap_or(1)) }
                        }
                        (judge_forms(lang, &ctx.csrf, realm, id, &group, "/evaluation"))
                    }
                }
            }
        }
        }
    };
    ctx.page(StatusCode::OK, e.title, Some(&me), body)
}

/// Accept, and reject with a reason, for one submitted scoreboard.
fn judge_forms(lang: Lang, csrf: &str, realm: &str, id: &str, group: &str, back: &str) -> Markup {
    let e = lang.eval();
    let base = scoreboard_href(realm, id);
    let reason_id = format!("reason-{id}");
    html! {
        div.judge-actions {
            form method="post" action={ (base) "/accept" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="back" value=(back);
                button type="submit" aria-label={ (e.accept) ": " (group) } { (e.accept) }
            }
            form.reject method="post" action={ (base) "/reject" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="back" value=(back);
                label for=(reason_id) { (e.reason) }
                textarea id=(reason_id) name="reason" required maxlength="5000" rows="2" {}
                button type="submit" aria-label={ (e.reject) ": " (group) } { (e.reject) }
            }
        }
    }
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
    let paths = [
        format!("/api/v1/realms/{realm}/groups/{id}"),
        format!("/api/v1/realms/{realm}/evaluation-settings"),
    ];
    let (me, group, settings) = tokio::join!(
        api.get::<Value>("/api/v1/me"),
        api.get::<Value>(&paths[0]),
        api.get::<Value>(&paths[1]),
    );
    let (me, group, settings) = match (me, group, settings) {
        (Ok(m), Ok(g), Ok(s)) => (m, g, s),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return ctx.fail(api, e).await,
    };
    let semester = s(&settings, "semesterId").to_string();
    if !semester.is_empty() && refused.is_none() {
        let list = api
            .get::<Value>(&format!(
                "/api/v1/realms/{realm}/scoreboards?groupId={id}&semesterId={}&limit=100",
                enc(&semester)
            ))
            .await;
        match list {
            Ok(page) => {
                // The newest version is the live one.
                let latest = page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .max_by_key(|sb| sb["version"].as_i64().unwrap_or(0));
                if let Some(sb) = latest {
                    return Redirect::to(&scoreboard_href(realm.as_str(), s(sb, "id")))
                        .into_response();
                }
            }
            Err(e) => return ctx.fail(api, e).await,
        }
    }
    let lang = ctx.lang;
    let e = lang.eval();
    let title = format!("{} — {}", s(&group, "name"), e.scoreboard);
    let status = refused.as_ref().map(|r| r.0).unwrap_or(StatusCode::OK);
    let n = refused.map(|r| Notice::Refused(r.0, r.1));
    let body = html! {
        h1 { (title) }
        (notice(lang, n.as_ref()))
        dl.facts {
            dt { (e.season) } dd { (season_text(lang, s(&settings, "season"))) }
        }
        @if semester.is_empty() {
            p { (e.no_semester) }
        } @else {
            p { (e.no_scoreboard) }
            form method="post" action={ (group_href(realm.as_str(), &id.to_string())) "/scoreboard" } {
                input type="hidden" name="csrf" value=(ctx.csrf);
                input type="hidden" name="semesterId" value=(semester);
                button type="submit" { (e.start_scoreboard) }
            }
        }
    };
    ctx.page(status, &title, Some(&me), body)
}

async fn start_scoreboard(
    SignedIn { mut ctx, api }: SignedIn,
    Path((realm, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let here = format!("{}/scoreboard", group_href(&realm, &id));
    ctx.here = here;
    let Some((realm_id, gid)) = ids(&realm, &id) else {
        return ctx.fail(&api, not_found()).await;
    };
    let f = form(&body);
    let semester = field(&f, "semesterId").unwrap_or("").trim().to_string();
    let created = api
        .call::<Value>(
            Method::POST,
            &format!("/api/v1/realms/{realm_id}/scoreboards"),
            Some(json!({"groupId": gid, "semesterId": semester})),
        )
        .await;
    match created {
        Ok(sb) => Redirect::to(&scoreboard_href(realm_id.as_str(), s(&sb, "id"))).into_response(),
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

/// Everything the scoreboard page shows, from the API.
struct Board {
    me: Value,
    detail: Value,
    settings: Value,
    group: Value,
    semester_name: String,
    /// (membership, user id, display name), current members and anyone with requests.
    members: Vec<(String, String, String)>,
    /// What the API says this person may do with the group's scores.
    may_edit: bool,
    may_judge: bool,
}

async fn load_board(
    api: &Api,
    lang: Lang,
    realm: &RealmId,
    id: uuid::Uuid,
) -> Result<Board, ApiError> {
    let base = format!("/api/v1/realms/{realm}");
    let paths = [
        format!("{base}/scoreboards/{id}"),
        format!("{base}/evaluation-settings"),
        format!("{base}/semesters"),
    ];
    let (me, detail, settings, semesters) = tokio::join!(
        api.get::<Value>("/api/v1/me"),
        api.get::<Value>(&paths[0]),
        api.get::<Value>(&paths[1]),
        api.get::<Value>(&paths[2]),
    );
    let (me, detail, settings) = (me?, detail?, settings?);
    let group_id = s(&detail, "groupId").to_string();
    let paths = [
        format!("{base}/groups/{}", enc(&group_id)),
        format!("{base}/groups/{}/members?limit=200", enc(&group_id)),
    ];
    let (group, members) = tokio::join!(api.get::<Value>(&paths[0]), api.get::<Value>(&paths[1]));
    let group = group?;
    let (may_edit, may_judge) = tokio::join!(
        allowed(api, realm.as_str(), "editScores", &group_id),
        allowed(api, realm.as_str(), "evaluateScores", &group_id),
    );
    let semester_name = semesters
        .ok()
        .and_then(|v| {
            let list = v["items"].as_array().or(v.as_array())?.clone();
            list.into_iter()
                .find(|x| x["id"] == detail["semesterId"])
                .map(|x| s(&x, "name").to_string())
        })
        .unwrap_or_default();
    // Rows: one per person — the membership their requests are on (a member who has
    // left since keeps their row), else their current membership.
    let mut rows: Vec<(String, String)> = Vec::new();
    for p in detail["pointRequests"].as_array().into_iter().flatten() {
        let user = s(p, "userId").to_string();
        if !rows.iter().any(|(_, u)| *u == user) {
            rows.push((s(p, "membershipId").to_string(), user));
        }
    }
    if let Ok(page) = members {
        for m in page["items"].as_array().into_iter().flatten() {
            let user = s(m, "userId").to_string();
            if matches!(s(m, "status"), "NEWBIE" | "ACTIVE")
                && !rows.iter().any(|(_, u)| *u == user)
            {
                rows.push((s(m, "id").to_string(), user));
            }
        }
    }
    let who = names(api, lang, rows.iter().map(|(_, u)| u.clone())).await;
    let mut members: Vec<(String, String, String)> = rows
        .into_iter()
        .map(|(m, u)| {
            let n = who.get(&u).cloned().unwrap_or_default();
            (m, u, n)
        })
        .collect();
    members.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
    Ok(Board {
        me,
        detail,
        settings,
        group,
        semester_name,
        members,
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
    let board = match load_board(api, ctx.lang, &realm, id).await {
        Ok(b) => b,
        Err(e) => return ctx.fail(api, e).await,
    };
    let title = format!(
        "{} — {}",
        s(&board.group, "name"),
        ctx.lang.eval().scoreboard
    );
    let realm_name = (ctx.realm_names().await)(realm.as_str());
    let body = scoreboard_body(ctx, realm.as_str(), &realm_name, &board, n.as_ref(), typed);
    ctx.page(status, &title, Some(&board.me), body)
}

/// The member's totals cell content: an `<output>` htmx replaces after a change.
fn total_output(lang: Lang, membership: &str, score: Option<&Value>) -> Markup {
    let e = lang.eval();
    let (work, resp, points) = score
        .map(|m| {
            (
                m["work"].as_i64().unwrap_or(0),
                m["responsibility"].as_i64().unwrap_or(0),
                m["points"].as_i64().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0, 0));
    html! {
        output id={ "total-" (membership) } data-points=(points) {
            strong { (points) }
            " " span.muted.parts { "(" (e.work) " " (work) " + " (e.responsibility) " " (resp) ")" }
        }
    }
}

fn scoreboard_body(
    ctx: &Ctx,
    realm: &str,
    realm_name: &str,
    b: &Board,
    n: Option<&Notice>,
    typed: Option<&BTreeMap<(String, String), String>>,
) -> Markup {
    let lang = ctx.lang;
    let e = lang.eval();
    let d = &b.detail;
    let id = s(d, "id");
    let base = scoreboard_href(realm, id);
    let status = s(d, "status");
    let read_only = d["readOnly"].as_bool().unwrap_or(true);
    let editable = status == "NOT_SUBMITTED" && b.may_edit;
    let guidelines = d["guidelines"].as_array().cloned().unwrap_or_default();
    let requested: HashMap<(String, String), i64> = d["pointRequests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                (
                    s(p, "membershipId").to_string(),
                    s(p, "guidelineId").to_string(),
                ),
                p["points"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let scores: HashMap<String, &Value> = d["members"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(score_by_membership)
        .collect();
    let group_name = s(&b.group, "name");
    html! {
        h1 { (group_name) " — " (e.scoreboard) }
        (notice(lang, n))
        dl.facts {
            dt { (e.group) } dd { a href=(group_href(realm, s(d, "groupId"))) { (group_name) } }
            dt { (e.realm) } dd { (realm_name) " " span.muted { "(" (realm) ")" } }
            @if !b.semester_name.is_empty() { dt { (e.semester) } dd { (b.semester_name) } }
            dt { (e.season) } dd { (season_text(lang, s(&b.settings, "season"))) }
            dt { (e.version) } dd { (d["version"].as_i64().unwrap_or(1)) }
            dt { (e.status) } dd #sb-status { (i18n::label(lang, i18n::SCOREBOARD_STATUSES, status)) }
            @if let Some(r) = d["rejectionReason"].as_str() {
                dt { (e.rejection_reason) } dd { (r) }
            }
        }
        p.muted { (e.limits) }
        p { a #guidelines-link href={ (group_href(realm, s(d, "groupId"))) "/guidelines" } { (lang.admin().guidelines) } }
        @if editable && read_only { p.notice role="status" { (e.read_only) } }
        @if guidelines.is_empty() {
            p { (e.no_guidelines) }
        } @else if b.members.is_empty() {
            p { (e.no_members) }
        } @else {
            form #cells method="post" action={ (base) "/cells" } {
                input type="hidden" name="csrf" value=(ctx.csrf);
                // Cells are named by row and column (`p:{i}:{j}`), these say which member
                // and guideline each is: a big group's form stays small.
                @for (m, ..) in &b.members { input type="hidden" name="m" value=(m); }
                @for g in &guidelines { input type="hidden" name="g" value=(s(g, "id")); }
                div.table-wrap role="region" aria-label=(e.table_label) tabindex="0" {
                    table.scoreboard {
                        caption.visually-hidden { (e.table_label) }
                        thead {
                            tr {
                                th scope="col" { (e.member) }
                                @for g in &guidelines {
                                    th scope="col" {
                                        (s(g, "title"))
                                        br;
                                        span.muted.small {
                                            (category(lang, s(g, "category"))) ", " (e.max_per_member) " "
                                            (g["maxPerMember"].as_i64().unwrap_or(0))
                                        }
                                    }
                                }
                                th scope="col" { (e.total) }
                            }
                        }
                        tbody {
                            @for (i, (m, _user, name)) in b.members.iter().enumerate() {
                                tr {
                                    th scope="row" { (name) }
                                    @for (j, g) in guidelines.iter().enumerate() {
                                        @let gid = s(g, "id");
                                        @let key = format!("p:{i}:{j}");
                                        @let stored = requested.get(&(m.clone(), gid.to_string())).copied();
                                        @let shown = typed
                                            .and_then(|t| t.get(&(m.clone(), gid.to_string())).cloned())
                                            .unwrap_or_else(|| stored.map(|v| v.to_string()).unwrap_or_default());
                                        td {
                                            @if editable && !read_only {
                                                input.points type="number" name=(key) value=(shown)
                                                    min="0" max=(g["maxPerMember"].as_i64().unwrap_or(0))
                                                    step="1" inputmode="numeric"
                                                    aria-label={ (name) " — " (s(g, "title")) }
                                                    hx-post={ (base) "/cells" }
                                                    hx-trigger="change"
                                                    hx-target="#cells-status"
                                                    hx-swap="outerHTML"
                                                    hx-indicator="#cells-saving";
                                                input type="hidden" name={ "o:" (i) ":" (j) }
                                                    value=(stored.map(|v| v.to_string()).unwrap_or_default());
                                            } @else {
                                                (stored.map(|v| v.to_string()).unwrap_or_else(|| "–".into()))
                                            }
                                            " "
                                            a.cell-comments href={ (base) "/cells/" (m) "/" (gid) } {
                                                (e.comments_short)
                                                span.visually-hidden { " — " (e.comments) ": " (name) ", " (s(g, "title")) }
                                            }
                                        }
                                    }
                                    td id={ "total-cell-" (m) } { (total_output(lang, m, scores.get(m).copied())) }
                                }
                            }
                        }
                    }
                }
                // The live region stays; the answer replaces only what it says.
                div #cells-live aria-live="polite" {
                    p #cells-status {}
                    p #cells-saving .htmx-indicator { (e.saving) }
                }
                @if editable && !read_only {
                    button type="submit" { (e.save) }
                }
            }
        }
        (entry_awards(ctx, b, &base, editable && !read_only, status))
        @if editable {
            p.muted { (e.submit_hint) }
            div #submit-confirm {
                (super::views::confirm(e.submit, e.submit_confirm, html! {
                    form.submit method="post" action={ (base) "/submit" } {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        button.danger type="submit" #submit-scoreboard { (e.submit_yes) }
                    }
                }))
            }
        }
        @if status == "NOT_YET_EVALUATED" && b.may_judge {
            (judge_forms(lang, &ctx.csrf, realm, id, group_name, &base))
        }
        @if status == "REJECTED" && b.may_edit {
            form method="post" action={ (base) "/versions" } {
                input type="hidden" name="csrf" value=(ctx.csrf);
                button type="submit" { (e.new_version) }
            }
        }
    }
}

fn entry_kind_label(kind: &str) -> &str {
    match kind {
        "AB" => "ÁB",
        k => k,
    }
}

/// The entry awards (KDO / KB / ÁB) of a scoreboard, one per member with its
/// justification: requested while the scoreboard is editable, reviewed on their own by
/// the judges once it is submitted.
fn entry_awards(ctx: &Ctx, b: &Board, base: &str, editable: bool, status: &str) -> Markup {
    let lang = ctx.lang;
    let a = lang.admin();
    let entries: HashMap<&str, &Value> = b.detail["entryAwardRequests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (s(e, "membershipId"), e))
        .collect();
    let judging = status == "NOT_YET_EVALUATED" || status == "ACCEPTED";
    let status_text = |st: &str| match st {
        "ACCEPTED" => a.entry_accepted,
        "REJECTED" => a.entry_rejected,
        _ => a.entry_pending,
    };
    html! {
        @if editable || !entries.is_empty() {
            section #entry-awards aria-labelledby="entry-awards-title" {
                h2 #entry-awards-title { (a.entry_awards) }
                p.muted { (a.entry_awards_intro) }
                ul.cards #entry-list {
                    @for (i, (m, _user, name)) in b.members.iter().enumerate() {
                        @let entry = entries.get(m.as_str()).copied();
                        @if editable || entry.is_some() {
                            li data-membership=(m) {
                                span.title { (name) }
                                @if let Some(e) = entry {
                                    dl.facts {
                                        dt { (a.entry_kind) } dd { (entry_kind_label(s(e, "kind"))) }
                                        dt { (a.justification) } dd { (s(e, "justification")) }
                                        dt { (a.entry_status) } dd.entry-status { (status_text(s(e, "status"))) }
                                        @if let Some(r) = e["rejectionReason"].as_str() {
                                            dt { (a.entry_reject_reason) } dd { (r) }
                                        }
                                    }
                                }
                                @let action = format!("{base}/entries/{m}");
                                @if editable {
                                    form.entry method="post" action=(action) {
                                        input type="hidden" name="csrf" value=(ctx.csrf);
                                        input type="hidden" name="do" value="save";
                                        div.field {
                                            label for={ "ek-" (i) } { (a.entry_kind) }
                                            select id={ "ek-" (i) } name="kind" {
                                                option value="" { (a.entry_none) }
                                                @for k in ["KDO", "KB", "AB"] {
                                                    option value=(k) selected[entry.is_some_and(|e| s(e, "kind") == k)] { (entry_kind_label(k)) }
                                                }
                                            }
                                        }
                                        div.field {
                                            label for={ "ej-" (i) } { (a.justification) }
                                            textarea id={ "ej-" (i) } name="justification" rows="2" maxlength="10000" {
                                                (entry.map(|e| s(e, "justification")).unwrap_or(""))
                                            }
                                        }
                                        button.secondary type="submit" { (a.save_entry) }
                                    }
                                } @else if judging && b.may_judge && entry.is_some_and(|e| s(e, "status") == "PENDING") {
                                    div.controls {
                                        form.action method="post" action=(action) {
                                            input type="hidden" name="csrf" value=(ctx.csrf);
                                            input type="hidden" name="do" value="accept";
                                            button type="submit" { (a.entry_accept) }
                                        }
                                        form.action method="post" action=(action) {
                                            input type="hidden" name="csrf" value=(ctx.csrf);
                                            input type="hidden" name="do" value="reject";
                                            label for={ "er-" (i) } { (a.entry_reject_reason) }
                                            input id={ "er-" (i) } type="text" name="reason" maxlength="2000" required;
                                            button.secondary type="submit" { (a.entry_reject) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !editable && entries.is_empty() { p { (a.no_entry) } }
            }
        }
    }
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

/// A person's score under each of their memberships with requests on the scoreboard.
fn score_by_membership(m: &Value) -> Vec<(String, &Value)> {
    let mut ids: Vec<String> = m["membershipIds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    ids.push(s(m, "membershipId").to_string());
    ids.into_iter().map(|id| (id, m)).collect()
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
                .call::<Value>(Method::PUT, &path, Some(json!({ "points": points })))
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
        let detail = match api
            .get::<Value>(&format!("/api/v1/realms/{realm_id}/scoreboards/{sid}"))
            .await
        {
            Ok(d) => d,
            Err(e) => return ctx.fail(&api, e).await,
        };
        let lang = ctx.lang;
        let rows: Vec<String> = f
            .iter()
            .filter(|(k, _)| k == "m")
            .map(|(_, v)| v.clone())
            .collect();
        let scores: HashMap<String, &Value> = detail["members"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(score_by_membership)
            .collect();
        let status = match &saved {
            Ok(()) => html! { p #cells-status { (lang.eval().saved) } },
            Err(Outcome::Refused(status, m)) => html! {
                p.notice #cells-status role="alert" {
                    (lang.eval().refused) " " (super::views::failure_text(lang, *status))
                    @if !m.is_empty() { " " (m) }
                }
            },
            Err(Outcome::Fail(_)) => html! {
                p.notice #cells-status role="alert" { (lang.t().unavailable) }
            },
        };
        let fragment = html! {
            (status)
            @for m in &rows {
                @let out = total_output(lang, m, scores.get(m).copied());
                // Swapped in by id, out of band.
                div hx-swap-oob={ "innerHTML:#total-cell-" (m) } { (out) }
            }
        };
        return page_html(StatusCode::OK, fragment);
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
    match api.call::<Value>(Method::POST, &path, payload).await {
        Ok(v) => {
            let to = if action == "versions" {
                scoreboard_href(realm_id.as_str(), s(&v, "id"))
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
    let comments = match api
        .get::<Value>(&format!(
            "/api/v1/realms/{realm}/scoreboards/{sid}/point-requests/{m}/{g}/comments"
        ))
        .await
    {
        Ok(c) => c,
        Err(e) => return ctx.fail(api, e).await,
    };
    let list = comments.as_array().cloned().unwrap_or_default();
    let authors = names(
        api,
        ctx.lang,
        list.iter().map(|c| s(c, "authorId").to_string()),
    )
    .await;
    let lang = ctx.lang;
    let e = lang.eval();
    let (m, g) = (m.to_string(), g.to_string());
    let member = board
        .members
        .iter()
        .find(|x| x.0 == m)
        .map(|x| x.2.clone())
        .unwrap_or_default();
    let gl = board.detail["guidelines"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["id"] == g.as_str())
        .map(|x| s(x, "title").to_string())
        .unwrap_or_default();
    let base = scoreboard_href(realm.as_str(), &sid.to_string());
    let title = format!("{} — {member} — {gl}", e.comments_of_cell);
    let body = html! {
        h1 { (e.comments_of_cell) }
        (notice(lang, n.as_ref()))
        dl.facts {
            dt { (e.group) } dd { (s(&board.group, "name")) }
            dt { (e.member) } dd { (member) }
            dt { (lang.eval().scoreboard) } dd { a href=(base) { (e.back_to_scoreboard) } }
            dt { (e.guideline) } dd { (gl) }
        }
        @if list.is_empty() { p { (e.no_comments) } }
        ul.cards {
            @for c in &list {
                li {
                    strong { (authors.get(s(c, "authorId")).cloned().unwrap_or_default()) }
                    " " span.muted { (s(c, "createdAt").get(..16).unwrap_or("").replace('T', " ")) }
                    @for line in s(c, "body").lines() { p { (line) } }
                }
            }
        }
        form.comment method="post" action={ (base) "/cells/" (m) "/" (g) } {
            input type="hidden" name="csrf" value=(ctx.csrf);
            label for="comment-body" { (e.comment) }
            textarea #comment-body name="body" required maxlength="5000" rows="3" {}
            button type="submit" { (e.add_comment) }
        }
    };
    ctx.page(status, &title, Some(&board.me), body)
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
        .call::<Value>(Method::POST, &path, Some(json!({ "body": text })))
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

    #[test]
    fn figures_use_the_languages_decimal_mark() {
        assert_eq!(decimal(Lang::Hu, 5.0), "5,00");
        assert_eq!(decimal(Lang::En, 43.58), "43.58");
    }
}
