//! The group page: what a group is and who is in it, and the membership lifecycle as
//! buttons — apply, withdraw the application, accept or decline an invitation, leave;
//! for whoever the API lets edit the group's members: applications, invitations (a
//! person found by search), status changes, posts (ticked from the group's own post
//! names, which its "Posztok" section adds, renames and deletes); for whoever it lets edit the
//! group: its name, kind, description and archived flag.
//!
//! Every action is a plain form (POST, then a redirect back to the page, so it works
//! without JavaScript) that htmx submits in place when it can. Each one calls the JSON
//! API route that does the same thing, in-process with the person's session token, so
//! the API alone decides who may do what: the page asks it (`…/permissions`) only to
//! know which controls to offer, and a refused action shows the API's answer.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::api::{enc, Api, ApiError};
use super::i18n::{self, Lang};
use super::signed_in::SignedIn;
use super::{views, Ctx};
use crate::realm::RealmId;

/// How many members (and applications, invitations) the page shows.
const MEMBERS_PAGE: u32 = 200;
/// How many people the invitation search offers.
const FIND_PAGE: u32 = 10;

fn page_path(realm: &RealmId, group: Uuid) -> String {
    format!("/realms/{}/groups/{group}", enc(realm.as_str()))
}

fn target(realm: &str, id: &str) -> Option<(RealmId, Uuid)> {
    Some((RealmId::parse(realm).ok()?, Uuid::parse_str(id).ok()?))
}

fn not_found() -> ApiError {
    ApiError::Status(StatusCode::NOT_FOUND, String::new())
}

/// What the page says above everything else after an action.
enum Notice {
    Done(&'static str),
    /// The API refused: its status and message.
    Failed(StatusCode, String),
}

fn done_text(lang: Lang, key: &str) -> Option<&'static str> {
    let t = lang.t();
    Some(match key {
        "applied" => t.done_applied,
        "withdrawn" => t.done_withdrawn,
        "accepted" => t.done_accepted,
        "rejected" => t.done_rejected,
        "declined" => t.done_declined,
        "left" => t.done_left,
        "invited" => t.done_invited,
        "cancelled" => t.done_cancelled,
        "updated" => t.done_updated,
        "saved" => t.done_saved,
        "created" => lang.admin().done_created,
        "post_added" => t.done_post_added,
        "post_renamed" => t.done_post_renamed,
        "post_deleted" => t.done_post_deleted,
        "archived" => t.done_archived,
        "unarchived" => t.done_unarchived,
        _ => return None,
    })
}

/// An htmx request swaps the answer's `main` into the page; htmx swaps only 2xx
/// answers, so a refusal it should show goes back as 200 (a plain form submission
/// keeps the real status).
fn for_htmx(headers: &HeaderMap, mut resp: Response) -> Response {
    if headers.contains_key("hx-request") && resp.status().is_client_error() {
        *resp.status_mut() = StatusCode::OK;
    }
    resp
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    done: Option<String>,
    /// The invitation search (shown to those who may invite).
    find: Option<String>,
}

pub(super) async fn group_page(
    SignedIn { ctx, api }: SignedIn,
    headers: HeaderMap,
    Path((realm, id)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Response {
    let notice = q
        .done
        .as_deref()
        .and_then(|d| done_text(ctx.lang, d))
        .map(Notice::Done);
    let resp = render(&ctx, &api, &realm, &id, notice, q.find.as_deref()).await;
    for_htmx(&headers, resp)
}

/// The API's `allowed` answer for one permission on the group (false when it cannot
/// say).
async fn allowed(api: &Api, realm: &RealmId, action: &str, group: Uuid) -> bool {
    api.get::<Value>(&format!(
        "/api/v1/realms/{realm}/permissions?action={action}&groupId={group}"
    ))
    .await
    .ok()
    .and_then(|v| v["allowed"].as_bool())
    .unwrap_or(false)
}

async fn render(
    ctx: &Ctx,
    api: &Api,
    realm: &str,
    id: &str,
    notice: Option<Notice>,
    find: Option<&str>,
) -> Response {
    let Some((realm, id)) = target(realm, id) else {
        return ctx.fail(api, not_found()).await;
    };
    let base = format!("/api/v1/realms/{realm}");
    let paths = [
        format!("{base}/groups/{id}"),
        format!("{base}/groups?parentId={id}&limit=200"),
        format!("{base}/groups/{id}/members?limit={MEMBERS_PAGE}"),
        format!("{base}/me/memberships"),
        format!("{base}/groups/{id}/posts"),
    ];
    let (me, group, children, members, mine, edit_members, edit_group, posts) = tokio::join!(
        api.me(),
        api.get::<Value>(&paths[0]),
        api.get::<Value>(&paths[1]),
        api.get::<Value>(&paths[2]),
        api.get::<Vec<Value>>(&paths[3]),
        allowed(api, &realm, "editMembers", id),
        allowed(api, &realm, "editGroup", id),
        api.get::<Value>(&paths[4]),
    );
    // The group's own post names (the built-in leader post apart): what posts are given
    // from, and what its "Posztok" section manages.
    let post_names: Vec<String> = match posts {
        Ok(v) => v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["builtin"] != true)
            .filter_map(|p| p["name"].as_str().map(String::from))
            .collect(),
        Err(e) => {
            tracing::warn!(error = ?e, "reading the group's post names");
            Vec::new()
        }
    };
    let (me, group) = match (me, group) {
        (Ok(m), Ok(g)) => (m, g),
        (Err(e), _) | (_, Err(e)) => return ctx.fail(api, e).await,
    };
    // Members: only when the API shows them to this person (403/404: not for them).
    let (members, members_more) = match members {
        Ok(page) => (
            Some(page["items"].as_array().cloned().unwrap_or_default()),
            page["nextCursor"].is_string(),
        ),
        Err(ApiError::Status(StatusCode::FORBIDDEN | StatusCode::NOT_FOUND, _)) => (None, false),
        Err(e) => return ctx.fail(api, e).await,
    };
    let find = find.map(str::trim).filter(|f| !f.is_empty());
    let parent = async {
        match group["parentId"].as_str() {
            Some(p) => api.get::<Value>(&format!("{base}/groups/{p}")).await.ok(),
            None => None,
        }
    };
    // Everyone's name in one call, each as the API lets this person see them.
    let names = async {
        let ids: Vec<&str> = members
            .iter()
            .flatten()
            .filter_map(|m| m["userId"].as_str())
            .collect();
        if ids.is_empty() {
            return HashMap::new();
        }
        match api
            .call::<Value>(
                Method::POST,
                "/api/v1/users/lookup",
                Some(json!({ "ids": ids })),
            )
            .await
        {
            Ok(v) => v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| Some((u["id"].as_str()?.to_string(), u.clone())))
                .collect(),
            Err(e) => {
                tracing::warn!(error = ?e, "looking up the members' names");
                HashMap::new()
            }
        }
    };
    let found = async {
        match find {
            Some(q) if edit_members && q.chars().count() >= 2 => Some(
                api.get::<Value>(&format!("/api/v1/users?q={}&limit={FIND_PAGE}", enc(q)))
                    .await,
            ),
            _ => None,
        }
    };
    let (parent, names, found) = tokio::join!(parent, names, found);
    let (found, found_error) = match found {
        Some(Ok(v)) => (Some(v), None),
        Some(Err(ApiError::Status(s, m))) if s.is_client_error() => (None, Some(m)),
        Some(Err(e)) => return ctx.fail(api, e).await,
        None if find.is_some() && edit_members => (None, Some(ctx.lang.t().too_short.into())),
        None => (None, None),
    };
    // This person's live membership here, else their latest ended one.
    let mine: Vec<Value> = mine
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["groupId"].as_str() == Some(id.to_string().as_str()))
        .collect();
    let mine = mine
        .iter()
        .find(|m| {
            matches!(
                m["status"].as_str(),
                Some("APPLIED" | "INVITED" | "NEWBIE" | "ACTIVE")
            )
        })
        .or_else(|| mine.last());
    let realm_names = ctx.realm_names().await;
    let title = group["name"].as_str().unwrap_or("").to_string();
    let status = match &notice {
        Some(Notice::Failed(s, _)) => *s,
        _ => StatusCode::OK,
    };
    let view = GroupView {
        realm: &realm,
        realm_name: realm_names(realm.as_str()),
        group: &group,
        parent: parent.as_ref(),
        children: children.as_ref().ok(),
        members,
        members_more,
        post_names,
        labels: views::distinct_labels_json(ctx.lang, names.values()),
        mine,
        edit_members,
        edit_group,
        csrf: &ctx.csrf,
        notice: notice.as_ref(),
        find,
        found: found.as_ref(),
        found_error: found_error.as_deref(),
    };
    let t = ctx.lang.t();
    let announce = match &notice {
        Some(Notice::Done(text)) => Some(text.to_string()),
        Some(Notice::Failed(s, m)) => Some(
            format!(
                "{} {} {m}",
                t.action_failed,
                views::failure_text(ctx.lang, *s)
            )
            .trim_end()
            .to_string(),
        ),
        None => None,
    };
    ctx.page_announcing(
        status,
        &title,
        Some(&me),
        group_view(ctx.lang, &view),
        announce.as_deref(),
    )
}

/// Carries out one API call for a form and answers the way forms expect: on success a
/// redirect (to the group page with what happened, or home when the person may no
/// longer see the group); on a refusal the group page with the API's message.
#[allow(clippy::too_many_arguments)]
async fn finish(
    ctx: &Ctx,
    api: &Api,
    headers: &HeaderMap,
    realm: &RealmId,
    group: Uuid,
    method: Method,
    path: &str,
    body: Option<Value>,
    done: &str,
) -> Response {
    let (status, answer) = match api.raw(method, path, body).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(api, e).await,
    };
    let failed = if status.is_success() {
        None
    } else {
        let message = api.refusal(&answer);
        if status == StatusCode::UNAUTHORIZED {
            return ctx.fail(api, ApiError::SignedOut).await;
        }
        if !status.is_client_error() {
            return ctx.fail(api, ApiError::Status(status, message)).await;
        }
        Some((status, message))
    };
    let resp = match failed {
        None => {
            let visible = api
                .get::<serde::de::IgnoredAny>(&format!("/api/v1/realms/{realm}/groups/{group}"))
                .await
                .is_ok();
            if visible {
                Redirect::to(&format!("{}?done={done}", page_path(realm, group))).into_response()
            } else {
                Redirect::to("/").into_response()
            }
        }
        Some((s, m)) => {
            render(
                ctx,
                api,
                realm.as_str(),
                &group.to_string(),
                Some(Notice::Failed(s, m)),
                None,
            )
            .await
        }
    };
    for_htmx(headers, resp)
}

fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim())
}

/// `POST /realms/{realm}/groups/{id}/{action}`: apply, invite, edit, subgroup (create
/// one under this group).
pub(super) async fn group_action(
    SignedIn { mut ctx, api }: SignedIn,
    headers: HeaderMap,
    Path((realm, id, action)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    ctx.here = format!("/realms/{}/groups/{}", enc(&realm), enc(&id));
    let Some((realm, id)) = target(&realm, &id) else {
        return for_htmx(&headers, ctx.error(StatusCode::NOT_FOUND, ""));
    };
    let form = form_fields(&body);
    let base = format!("/api/v1/realms/{realm}/groups/{id}");
    let switches = field(&form, "switches").is_some();
    let (method, path, input, done) = match action.as_str() {
        "apply" => (
            Method::POST,
            format!("{base}/applications"),
            None,
            "applied",
        ),
        "invite" => (
            Method::POST,
            format!("{base}/members"),
            Some(json!({
                "userId": field(&form, "userId").unwrap_or(""),
            })),
            "invited",
        ),
        "edit" => (
            Method::PATCH,
            base,
            Some(json!({
                "name": field(&form, "name").unwrap_or(""),
                "purpose": field(&form, "purpose").filter(|p| !p.is_empty()),
                "description": field(&form, "description").unwrap_or(""),
                // An unchecked box sends nothing: the switches change only when the form
                // says it had them (a form without them leaves them as they are).
                "listed": switches.then(|| field(&form, "listed").is_some()),
                "usersCanApply": switches.then(|| field(&form, "usersCanApply").is_some()),
            })),
            "saved",
        ),
        // Archiving is its own, confirmed action (see `edit_form`).
        "archive" | "unarchive" => (
            Method::PATCH,
            base,
            Some(json!({ "archived": action == "archive" })),
            if action == "archive" {
                "archived"
            } else {
                "unarchived"
            },
        ),
        "subgroup" => (
            Method::POST,
            format!("/api/v1/realms/{realm}/groups"),
            Some(json!({
                "name": field(&form, "name").unwrap_or(""),
                "parentId": id,
                "purpose": field(&form, "purpose").filter(|p| !p.is_empty()),
            })),
            "created",
        ),
        "post-add" => (
            Method::POST,
            format!("{base}/posts"),
            Some(json!({ "name": field(&form, "name").unwrap_or("") })),
            "post_added",
        ),
        "post-rename" => (
            Method::PATCH,
            format!("{base}/posts/{}", enc(field(&form, "post").unwrap_or(""))),
            Some(json!({ "name": field(&form, "name").unwrap_or("") })),
            "post_renamed",
        ),
        "post-delete" => (
            Method::DELETE,
            format!("{base}/posts/{}", enc(field(&form, "post").unwrap_or(""))),
            None,
            "post_deleted",
        ),
        _ => return for_htmx(&headers, ctx.error(StatusCode::NOT_FOUND, "")),
    };
    finish(&ctx, &api, &headers, &realm, id, method, &path, input, done).await
}

/// `POST /realms/{realm}/memberships/{id}/{action}`: accept, reject, withdraw, decline,
/// leave, cancel (an invitation), status, posts. The form names its group (`group`),
/// the page to come back to.
pub(super) async fn membership_action(
    SignedIn { mut ctx, api }: SignedIn,
    headers: HeaderMap,
    Path((realm, id, action)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = form_fields(&body);
    let group = field(&form, "group").unwrap_or("").to_string();
    ctx.here = format!("/realms/{}/groups/{}", enc(&realm), enc(&group));
    let (Some((realm, group)), Ok(id)) = (target(&realm, &group), Uuid::parse_str(&id)) else {
        return for_htmx(&headers, ctx.error(StatusCode::NOT_FOUND, ""));
    };
    let base = format!("/api/v1/realms/{realm}/memberships/{id}");
    let (method, path, input, done) = match action.as_str() {
        "accept" => (Method::POST, format!("{base}/accept"), None, "accepted"),
        "reject" => (Method::POST, format!("{base}/reject"), None, "rejected"),
        "withdraw" => (Method::POST, format!("{base}/withdraw"), None, "withdrawn"),
        "decline" => (Method::POST, format!("{base}/decline"), None, "declined"),
        "leave" => (Method::POST, format!("{base}/leave"), None, "left"),
        "cancel" => (Method::DELETE, base, None, "cancelled"),
        "status" => (
            Method::PATCH,
            base,
            Some(json!({ "status": field(&form, "status").unwrap_or("") })),
            "updated",
        ),
        "posts" => {
            // Checkboxes: the leader's post (its name is the API's, not shown) and the
            // group's own names; posts held from before the group listed its names come
            // back as hidden fields, so saving keeps them.
            let mut posts: Vec<String> = Vec::new();
            if field(&form, "leader").is_some() {
                posts.push(views::LEADER_POST.to_string());
            }
            for (k, v) in &form {
                let v = v.trim();
                if k == "post"
                    && !v.is_empty()
                    && v != views::LEADER_POST
                    && !posts.iter().any(|p| p == v)
                {
                    posts.push(v.to_string());
                }
            }
            (
                Method::PATCH,
                base,
                Some(json!({ "posts": posts })),
                "updated",
            )
        }
        _ => return for_htmx(&headers, ctx.error(StatusCode::NOT_FOUND, "")),
    };
    finish(
        &ctx, &api, &headers, &realm, group, method, &path, input, done,
    )
    .await
}

// --- markup -------------------------------------------------------------------------

struct GroupView<'a> {
    realm: &'a RealmId,
    realm_name: String,
    group: &'a Value,
    parent: Option<&'a Value>,
    children: Option<&'a Value>,
    /// Memberships of every status; None when the caller may not see them.
    members: Option<Vec<Value>>,
    members_more: bool,
    /// The group's own post names (the leader's apart), in the API's order.
    post_names: Vec<String>,
    /// People's names by id, as the caller may see them, told apart.
    labels: HashMap<String, String>,
    /// The caller's own membership here.
    mine: Option<&'a Value>,
    /// The API lets the caller edit the members / the group.
    edit_members: bool,
    edit_group: bool,
    csrf: &'a str,
    notice: Option<&'a Notice>,
    find: Option<&'a str>,
    found: Option<&'a Value>,
    found_error: Option<&'a str>,
}

impl GroupView<'_> {
    fn id(&self) -> &str {
        self.group["id"].as_str().unwrap_or("")
    }

    /// A member's name, told apart from the others of the page (see
    /// [`views::distinct_labels`]).
    fn name_of(&self, lang: Lang, m: &Value) -> Markup {
        let user = m["userId"].as_str().unwrap_or("");
        html! {
            @match self.labels.get(user) {
                Some(l) => a.title href={ "/people/" (enc(user)) } { (l) },
                None => span.title { (lang.t().unnamed) },
            }
        }
    }

    /// Whether `m` is the group's only current leader (as far as the caller sees the
    /// members): the API refuses their leaving, so the page says why up front.
    fn only_leader(&self, m: &Value) -> bool {
        let Some(members) = &self.members else {
            return false;
        };
        holds_leader(m)
            && !members.iter().any(|o| {
                o["id"] != m["id"]
                    && matches!(o["status"].as_str(), Some("NEWBIE" | "ACTIVE"))
                    && holds_leader(o)
            })
    }

    fn with_status(&self, statuses: &[&str]) -> Vec<&Value> {
        self.members
            .iter()
            .flatten()
            .filter(|m| statuses.contains(&m["status"].as_str().unwrap_or("")))
            .collect()
    }
}

/// The id of the button that posts `fields` to `action`: the same in the page an
/// action answers with, so the person's focus and place stay on it (see `app.js`).
fn control_id(action: &str, fields: &[(&str, &str)]) -> String {
    let mut id = String::from("do");
    // The group is the page's own; the csrf token changes nothing.
    let parts = std::iter::once(action).chain(
        fields
            .iter()
            .filter(|(k, _)| *k != "group")
            .map(|(_, v)| *v),
    );
    for part in parts {
        for c in part.chars() {
            if c.is_ascii_alphanumeric() {
                id.push(c);
            } else if !id.ends_with('-') {
                id.push('-');
            }
        }
    }
    id
}

/// What every htmx form of the page has: the answer's `main` swapped in place, its
/// submit button disabled and showing that it works while the request is in flight
/// (htmx's `htmx-request` class on the form; see `.spinner` in app.css).
fn htmx_form(action: &str, fields: &[(&str, &str)], csrf: &str, body: Markup) -> Markup {
    html! {
        form.action method="post" action=(action)
            hx-post=(action) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
            hx-disabled-elt="find button" {
            input type="hidden" name="csrf" value=(csrf);
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            (body)
        }
    }
}

/// The "working" mark inside a submit button (shown while its request is in flight).
fn spinner() -> Markup {
    html! { span.spinner.htmx-indicator aria-hidden="true" {} }
}

/// A one-button form that posts to `action` (htmx swaps the answer's `main` in place).
fn button_form(
    csrf: &str,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    secondary: bool,
) -> Markup {
    let id = control_id(action, fields);
    htmx_form(
        action,
        fields,
        csrf,
        html! { button.secondary[secondary] id=(id) type="submit" { (label) (spinner()) } },
    )
}

/// [`button_form`] behind a confirmation (see [`views::confirm`]).
fn confirmed_form(
    csrf: &str,
    action: &str,
    fields: &[(&str, &str)],
    (summary, warning, yes): (&str, &str, &str),
) -> Markup {
    let id = control_id(action, fields);
    views::confirm(
        summary,
        warning,
        htmx_form(
            action,
            fields,
            csrf,
            html! { button.danger id=(id) type="submit" { (yes) (spinner()) } },
        ),
    )
}

fn membership_href(realm: &RealmId, id: &str, action: &str) -> String {
    format!(
        "/realms/{}/memberships/{}/{action}",
        enc(realm.as_str()),
        enc(id)
    )
}

/// The status changes a leader may make (the API's rule; it answers 409 for others).
fn next_statuses(current: &str) -> &'static [&'static str] {
    match current {
        "NEWBIE" => &["ACTIVE", "FORMER"],
        "ACTIVE" => &["FORMER"],
        "FORMER" => &["ARCHIVED"],
        "ARCHIVED" => &["FORMER"],
        _ => &[],
    }
}

/// A membership's posts as shown, "leader" in the page's language.
fn posts_text(lang: Lang, m: &Value) -> String {
    views::posts(lang, m)
}

fn holds(m: &Value, post: &str) -> bool {
    m["posts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == post))
}

/// The posts `m` holds that are neither the leader's nor among the group's names (held
/// from before the group listed them, e.g. imported): kept when their posts are saved.
fn unlisted_posts<'a>(m: &'a Value, names: &[String]) -> Vec<&'a str> {
    m["posts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .filter(|p| *p != views::LEADER_POST && !names.iter().any(|n| n == p))
        .collect()
}

fn holds_leader(m: &Value) -> bool {
    m["posts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == views::LEADER_POST))
}

fn group_view(lang: Lang, g: &GroupView) -> Markup {
    let t = lang.t();
    let desc = g.group["description"].as_str().unwrap_or("");
    let archived = g.group["archived"].as_bool().unwrap_or(false);
    html! {
        div #group {
            h1 {
                (g.group["name"].as_str().unwrap_or(""))
                @if archived { " " span.tag { (t.archived) } }
            }
            @match g.notice {
                Some(Notice::Done(text)) => p.notice.ok role="status" { (text) },
                Some(Notice::Failed(status, message)) => div.notice role="alert" #action-error {
                    p { strong { (t.action_failed) } " " (views::failure_text(lang, *status)) }
                    @if !message.is_empty() { p.detail { (message) } }
                },
                None => {},
            }
            dl.facts {
                dt { (t.realm) } dd {
                    (g.realm_name) " " span.muted { "(" (g.realm) ")" }
                    " · " a href={ "/realms/" (enc(g.realm.as_str())) "/admin" } { (lang.admin().manage_link) }
                }
                dt { (t.purpose) } dd { (i18n::label(lang, i18n::PURPOSES, g.group["purpose"].as_str().unwrap_or(""))) }
                @if let Some(p) = g.parent {
                    dt { (t.parent_group) }
                    dd { a href=(group_href(g.realm, p["id"].as_str().unwrap_or(""))) { (p["name"].as_str().unwrap_or("")) } }
                }
            }
            @if desc.trim().is_empty() { p.muted { (t.no_description) } } @else {
                div.description { @for line in desc.lines() { p { (line) } } }
            }
            (my_membership(lang, g, archived))
            section #children aria-labelledby="children-title" {
                h2 #children-title { (t.sub_groups) }
                @let children = g.children.and_then(|c| c["items"].as_array()).cloned().unwrap_or_default();
                @if children.is_empty() { p { (t.no_sub_groups) } }
                ul.plain {
                    @for c in &children {
                        li { a href=(group_href(g.realm, c["id"].as_str().unwrap_or(""))) { (c["name"].as_str().unwrap_or("")) } }
                    }
                }
            }
            @if g.edit_members { (applications(lang, g)) }
            (members(lang, g))
            @if g.edit_members { (post_names(lang, g)) }
            @if g.edit_members { (invitations(lang, g, archived)) }
            @if g.edit_group { (edit_form(lang, g)) }
        }
    }
}

fn group_href(realm: &RealmId, id: &str) -> String {
    format!("/realms/{}/groups/{}", enc(realm.as_str()), enc(id))
}

fn my_membership(lang: Lang, g: &GroupView, archived: bool) -> Markup {
    let t = lang.t();
    let apply = format!("{}/apply", group_href(g.realm, g.id()));
    let open = g.group["usersCanApply"].as_bool().unwrap_or(true);
    let group_field = [("group", g.id())];
    html! {
        section #mine aria-labelledby="mine-title" {
            h2 #mine-title { (t.my_membership) }
            @match g.mine {
                Some(m) => {
                    @let id = m["id"].as_str().unwrap_or("");
                    @let status = m["status"].as_str().unwrap_or("");
                    @match status {
                        "APPLIED" => {
                            p { (t.you_applied) }
                            (button_form(g.csrf, &membership_href(g.realm, id, "withdraw"), &group_field, t.withdraw, true))
                        }
                        "INVITED" => {
                            p { (t.you_are_invited) }
                            div.controls {
                                (button_form(g.csrf, &membership_href(g.realm, id, "accept"), &group_field, t.accept_invitation, false))
                                (button_form(g.csrf, &membership_href(g.realm, id, "decline"), &group_field, t.decline_invitation, true))
                            }
                        }
                        "NEWBIE" | "ACTIVE" => {
                            p { (t.you_are_member) " " strong #my-status { (i18n::status(lang, status)) } }
                            @let posts = posts_text(lang, m);
                            @if !posts.is_empty() { p { (t.posts) ": " (posts) } }
                            @if g.only_leader(m) {
                                p.notice #only-leader { (t.only_leader) }
                            } @else {
                                (confirmed_form(g.csrf, &membership_href(g.realm, id, "leave"), &group_field, (t.leave, t.leave_confirm, t.leave_yes)))
                            }
                        }
                        _ => {
                            p { (t.you_were_member) " " strong #my-status { (i18n::status(lang, status)) } }
                            @if archived { p { (t.archived_no_join) } }
                            @else if !open { p { (lang.dir().closed) } }
                            @else { (button_form(g.csrf, &apply, &[], t.apply, false)) }
                        }
                    }
                }
                None => {
                    p { (t.not_member) }
                    @if archived { p { (t.archived_no_join) } }
                    @else if !open { p { (lang.dir().closed) } }
                    @else { (button_form(g.csrf, &apply, &[], t.apply, false)) }
                }
            }
        }
    }
}

fn members(lang: Lang, g: &GroupView) -> Markup {
    let t = lang.t();
    html! {
        section #members aria-labelledby="members-title" {
            h2 #members-title { (t.members) }
            @match &g.members {
                None => p { (t.members_hidden) },
                Some(_) => {
                    @let list = g.with_status(&["NEWBIE", "ACTIVE", "FORMER", "ARCHIVED"]);
                    @if list.is_empty() { p { (t.no_members) } }
                    ul.cards #member-list {
                        @for m in &list {
                            @let id = m["id"].as_str().unwrap_or("");
                            @let status = m["status"].as_str().unwrap_or("");
                            li id={ "member-" (id) } data-membership=(id) {
                                (g.name_of(lang, m))
                                dl.facts {
                                    dt { (t.status) }
                                    dd.status { (i18n::status(lang, status)) }
                                    @let p = posts_text(lang, m);
                                    @if !p.is_empty() { dt { (t.posts) } dd { (p) } }
                                }
                                @if g.edit_members { (member_controls(lang, g, m)) }
                            }
                        }
                    }
                    @if g.members_more { p.muted { (t.more_not_shown) } }
                }
            }
        }
    }
}

/// A leader's controls on one member: the status changes allowed from here, and posts.
fn member_controls(lang: Lang, g: &GroupView, m: &Value) -> Markup {
    let t = lang.t();
    let id = m["id"].as_str().unwrap_or("");
    let status = m["status"].as_str().unwrap_or("");
    let next = next_statuses(status);
    let status_action = membership_href(g.realm, id, "status");
    let posts_action = membership_href(g.realm, id, "posts");
    html! {
        div.controls {
            @if !next.is_empty() {
                form.status method="post" action=(status_action)
                    hx-post=(status_action) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                    hx-disabled-elt="find button" {
                    input type="hidden" name="csrf" value=(g.csrf);
                    input type="hidden" name="group" value=(g.id());
                    label for={ "st-" (id) } { (t.new_status) }
                    div.row {
                        select id={ "st-" (id) } name="status" {
                            @for s in next { option value=(s) { (i18n::status(lang, s)) } }
                        }
                        button id=(control_id(&status_action, &[])) type="submit" { (t.change_status) (spinner()) }
                    }
                }
            }
            form.posts method="post" action=(posts_action)
                hx-post=(posts_action) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                hx-disabled-elt="find button" {
                input type="hidden" name="csrf" value=(g.csrf);
                input type="hidden" name="group" value=(g.id());
                @for p in unlisted_posts(m, &g.post_names) {
                    input type="hidden" name="post" value=(p);
                }
                fieldset.posts {
                    legend { (t.posts_label) }
                    div.check {
                        input id={ "pl-" (id) } type="checkbox" name="leader" value="on" checked[holds_leader(m)];
                        label for={ "pl-" (id) } { (t.leader_post) }
                    }
                    @for (i, p) in g.post_names.iter().enumerate() {
                        div.check {
                            input id={ "pp-" (id) "-" (i) } type="checkbox" name="post" value=(p) checked[holds(m, p)];
                            label for={ "pp-" (id) "-" (i) } { (p) }
                        }
                    }
                }
                button.secondary id=(control_id(&posts_action, &[])) type="submit" { (t.save_posts) (spinner()) }
            }
        }
    }
}

/// The group's post names, for whoever may manage its members: add, rename, delete
/// (the API refuses deleting one that members hold, and says why).
fn post_names(lang: Lang, g: &GroupView) -> Markup {
    let t = lang.t();
    let page = group_href(g.realm, g.id());
    let add = format!("{page}/post-add");
    let rename = format!("{page}/post-rename");
    let delete = format!("{page}/post-delete");
    html! {
        section #posts aria-labelledby="posts-title" {
            h2 #posts-title { (t.post_names) }
            p.muted { (t.post_names_intro) }
            @if g.post_names.is_empty() { p { (t.no_post_names) } }
            ul.cards #post-list {
                @for (i, p) in g.post_names.iter().enumerate() {
                    li data-post=(p) {
                        span.title { (p) }
                        form.post-rename method="post" action=(rename)
                            hx-post=(rename) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                            hx-disabled-elt="find button" {
                            input type="hidden" name="csrf" value=(g.csrf);
                            input type="hidden" name="post" value=(p);
                            label for={ "pn-" (i) } { (t.rename_post_label) }
                            div.row {
                                input id={ "pn-" (i) } type="text" name="name" value=(p) required maxlength="50";
                                button.secondary id=(control_id(&rename, &[("post", p)])) type="submit" { (t.rename_post) (spinner()) }
                            }
                        }
                        (button_form(g.csrf, &delete, &[("post", p.as_str())], t.delete_post, true))
                    }
                }
            }
            form.post-add method="post" action=(add)
                hx-post=(add) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                hx-disabled-elt="find button" {
                input type="hidden" name="csrf" value=(g.csrf);
                label for="new-post" { (t.new_post_name) }
                div.row {
                    input #new-post type="text" name="name" required maxlength="50";
                    button #add-post type="submit" { (t.add_post) (spinner()) }
                }
            }
        }
    }
}

fn applications(lang: Lang, g: &GroupView) -> Markup {
    let t = lang.t();
    let list = g.with_status(&["APPLIED"]);
    let group_field = [("group", g.id())];
    html! {
        section #applications aria-labelledby="applications-title" {
            h2 #applications-title { (t.applications) }
            @if g.members.is_none() { p { (t.members_hidden) } }
            @else if list.is_empty() { p { (t.no_applications) } }
            ul.cards #application-list {
                @for m in &list {
                    @let id = m["id"].as_str().unwrap_or("");
                    li id={ "application-" (id) } data-membership=(id) {
                        (g.name_of(lang, m))
                        div.controls {
                            (button_form(g.csrf, &membership_href(g.realm, id, "accept"), &group_field, t.accept, false))
                            (confirmed_form(g.csrf, &membership_href(g.realm, id, "reject"), &group_field, (t.reject, t.reject_confirm, t.reject_yes)))
                        }
                    }
                }
            }
        }
    }
}

fn invitations(lang: Lang, g: &GroupView, archived: bool) -> Markup {
    let t = lang.t();
    let list = g.with_status(&["INVITED"]);
    let group_field = [("group", g.id())];
    let page = group_href(g.realm, g.id());
    let invite = format!("{page}/invite");
    html! {
        section #invitations aria-labelledby="invitations-title" {
            h2 #invitations-title { (t.invitations) }
            @if g.members.is_none() { p { (t.members_hidden) } }
            @else if list.is_empty() { p { (t.no_invitations) } }
            ul.cards #invitation-list {
                @for m in &list {
                    @let id = m["id"].as_str().unwrap_or("");
                    li id={ "invitation-" (id) } data-membership=(id) {
                        (g.name_of(lang, m))
                        @let p = posts_text(lang, m);
                        @if !p.is_empty() { dl.facts { dt { (t.posts) } dd { (p) } } }
                        (button_form(g.csrf, &membership_href(g.realm, id, "cancel"), &group_field, t.cancel_invitation, true))
                    }
                }
            }
            @if !archived {
                h3 #invite-title { (t.invite_title) }
                form.search method="get" action=(page)
                    hx-get=(page) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                    hx-disabled-elt="find button" {
                    label for="find" { (t.invite_search_label) }
                    div.row {
                        input #find type="search" name="find" value=(g.find.unwrap_or("")) autocomplete="off" maxlength="200";
                        button #find-button type="submit" { (t.search_button) (spinner()) }
                    }
                }
                @if let Some(e) = g.found_error { p { (e) } }
                @if let Some(found) = g.found {
                    @let items = found["items"].as_array().cloned().unwrap_or_default();
                    @if items.is_empty() { p { (t.no_people) } }
                    @let labels = views::distinct_labels_json(lang, &items);
                    ul.cards #invite-results {
                        @for u in &items {
                            @let uid = u["id"].as_str().unwrap_or("");
                            li {
                                a.title href={ "/people/" (enc(uid)) } {
                                    (labels.get(uid).cloned().unwrap_or_else(|| views::person_name_json(lang, u)))
                                }
                                (button_form(g.csrf, &invite, &[("userId", uid)], t.invite, false))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn edit_form(lang: Lang, g: &GroupView) -> Markup {
    let t = lang.t();
    let action = format!("{}/edit", group_href(g.realm, g.id()));
    let purpose = g.group["purpose"].as_str().unwrap_or("");
    html! {
        section #edit-group aria-labelledby="edit-group-title" {
            h2 #edit-group-title { (t.edit_group) }
            form.group-edit method="post" action=(action)
                hx-post=(action) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                hx-disabled-elt="find button" {
                input type="hidden" name="csrf" value=(g.csrf);
                div.field {
                    label for="g-name" { (t.group_name) }
                    input #g-name type="text" name="name" required maxlength="200"
                        value=(g.group["name"].as_str().unwrap_or(""));
                }
                div.field {
                    label for="g-purpose" { (t.purpose) }
                    select #g-purpose name="purpose" {
                        @for (v, hu, en) in i18n::PURPOSES {
                            option value=(v) selected[*v == purpose] { (match lang { Lang::Hu => *hu, Lang::En => *en }) }
                        }
                    }
                }
                div.field {
                    label for="g-description" { (t.description) }
                    textarea #g-description name="description" rows="5" maxlength="10000" {
                        (g.group["description"].as_str().unwrap_or(""))
                    }
                }
                input type="hidden" name="switches" value="on";
                div.check {
                    input #g-listed type="checkbox" name="listed" value="on"
                        checked[g.group["listed"].as_bool().unwrap_or(true)];
                    label for="g-listed" { (lang.admin().listed_label) }
                }
                div.check {
                    input #g-apply type="checkbox" name="usersCanApply" value="on"
                        checked[g.group["usersCanApply"].as_bool().unwrap_or(true)];
                    label for="g-apply" { (lang.admin().users_can_apply_label) }
                }
                button #save-group type="submit" { (t.save) (spinner()) }
            }
            div #archive {
                @if g.group["archived"].as_bool().unwrap_or(false) {
                    (button_form(g.csrf, &format!("{}/unarchive", group_href(g.realm, g.id())), &[], t.unarchive, true))
                } @else {
                    (confirmed_form(g.csrf, &format!("{}/archive", group_href(g.realm, g.id())), &[], (t.archive, t.archive_confirm, t.archive_yes)))
                }
            }
        }
        @if !g.group["archived"].as_bool().unwrap_or(false) { (sub_group_form(lang, g)) }
    }
}

/// Creating a group under this one (the API lets whoever may edit this group).
fn sub_group_form(lang: Lang, g: &GroupView) -> Markup {
    let a = lang.admin();
    let t = lang.t();
    let action = format!("{}/subgroup", group_href(g.realm, g.id()));
    html! {
        section aria-labelledby="new-sub-group-title" {
            h2 #new-sub-group-title { (a.new_sub_group) }
            form.group-new method="post" action=(action) {
                input type="hidden" name="csrf" value=(g.csrf);
                div.field {
                    label for="sg-name" { (t.group_name) }
                    input #sg-name type="text" name="name" required maxlength="200";
                }
                div.field {
                    label for="sg-purpose" { (t.purpose) }
                    select #sg-purpose name="purpose" {
                        @for (v, hu, en) in i18n::PURPOSES {
                            option value=(v) { (match lang { Lang::Hu => *hu, Lang::En => *en }) }
                        }
                    }
                }
                button type="submit" { (a.create_sub_group) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_held_outside_the_groups_names_are_kept_apart() {
        let m = json!({ "posts": ["leader", "pr", "régi"] });
        assert_eq!(unlisted_posts(&m, &["pr".to_string()]), vec!["régi"]);
        assert!(holds(&m, "pr") && !holds(&m, "gazdaságis"));
    }

    #[test]
    fn the_page_offers_the_status_changes_the_api_allows() {
        assert_eq!(next_statuses("NEWBIE"), ["ACTIVE", "FORMER"]);
        assert_eq!(next_statuses("ACTIVE"), ["FORMER"]);
        assert_eq!(next_statuses("FORMER"), ["ARCHIVED"]);
        assert_eq!(next_statuses("ARCHIVED"), ["FORMER"]);
        assert!(next_statuses("APPLIED").is_empty());
    }
}
