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
//! know which controls to offer, and a refused action shows the API's answer. The
//! markup is `views/group.rs`.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::api::{enc, Api, ApiError};
use super::i18n::Lang;
use super::signed_in::SignedIn;
use super::views::group::{GroupView, Notice};
use super::{views, Ctx};
use crate::membership::Membership;
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
    let (me, group, children, members, mine, edit_members, edit_group, posts) = tokio::join!(
        api.me(),
        api.group(&realm, id),
        api.sub_groups(&realm, id, 200),
        api.group_members(&realm, id, MEMBERS_PAGE),
        api.my_memberships(&realm),
        api.allowed(realm.as_str(), "editMembers", Some(id)),
        api.allowed(realm.as_str(), "editGroup", Some(id)),
        api.posts(&realm, id),
    );
    // The group's own post names (the built-in leader post apart): what posts are given
    // from, and what its "Posztok" section manages.
    let post_names: Vec<String> = match posts {
        Ok(p) => p
            .items
            .into_iter()
            .filter(|p| !p.builtin)
            .map(|p| p.name)
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
        Ok(page) => (Some(page.items), page.next_cursor.is_some()),
        Err(ApiError::Status(StatusCode::FORBIDDEN | StatusCode::NOT_FOUND, _)) => (None, false),
        Err(e) => return ctx.fail(api, e).await,
    };
    let find = find.map(str::trim).filter(|f| !f.is_empty());
    let parent = async {
        match group.parent_id {
            Some(p) => api.group(&realm, p).await.ok(),
            None => None,
        }
    };
    // Everyone's name in one call, each as the API lets this person see them.
    let names = async {
        let ids: Vec<Uuid> = members.iter().flatten().map(|m| m.user_id).collect();
        if ids.is_empty() {
            return HashMap::new();
        }
        match api.lookup_users(&ids).await {
            Ok(list) => views::distinct_labels(ctx.lang, &list.items),
            Err(e) => {
                tracing::warn!(error = ?e, "looking up the members' names");
                HashMap::new()
            }
        }
    };
    let found = async {
        match find {
            Some(q) if edit_members && q.chars().count() >= 2 => {
                Some(api.search_users(q, FIND_PAGE, None).await)
            }
            _ => None,
        }
    };
    let (parent, labels, found, realm_names) =
        tokio::join!(parent, names, found, api.realm_names());
    let (found, found_error) = match found {
        Some(Ok(v)) => (Some(v), None),
        Some(Err(ApiError::Status(s, m))) if s.is_client_error() => (None, Some(m)),
        Some(Err(e)) => return ctx.fail(api, e).await,
        None if find.is_some() && edit_members => (None, Some(ctx.lang.t().too_short.into())),
        None => (None, None),
    };
    // This person's live membership here, else their latest ended one.
    let mine: Vec<Membership> = mine
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.group_id == id)
        .collect();
    let mine = mine
        .iter()
        .find(|m| {
            matches!(
                m.status.as_str(),
                "APPLIED" | "INVITED" | "NEWBIE" | "ACTIVE"
            )
        })
        .or_else(|| mine.last());
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
        members: members.as_deref(),
        members_more,
        post_names,
        labels,
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
        &group.name,
        Some(&me),
        views::group::page(ctx.lang, &view),
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
