//! A group's guidelines (irányelvek) for the semester the realm evaluates
//! (`/realms/{realm}/groups/{id}/guidelines`): start a collection or copy the previous
//! semester's, add and remove guidelines. The API decides who may (editScores on the
//! group) and when (the scoring season); the page offers the forms to whoever the API
//! says may edit the group's scores, and shows a refusal as the API gives it.

use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::api::{enc, Api, ApiError};
use super::signed_in::SignedIn;
use super::{views, Ctx};
use crate::evaluation::guideline::CollectionWithGuidelines;
use crate::realm::RealmId;

#[derive(Deserialize)]
pub(super) struct GuidelinesQuery {
    done: Option<String>,
}

fn page_path(realm: &RealmId, group: Uuid) -> String {
    format!("/realms/{}/groups/{group}/guidelines", enc(realm.as_str()))
}

fn target(realm: &str, id: &str) -> Option<(RealmId, Uuid)> {
    Some((RealmId::parse(realm).ok()?, Uuid::parse_str(id).ok()?))
}

fn not_found() -> ApiError {
    ApiError::Status(StatusCode::NOT_FOUND, String::new())
}

pub(super) async fn guidelines_page(
    SignedIn { ctx, api }: SignedIn,
    Path((realm, id)): Path<(String, String)>,
    Query(q): Query<GuidelinesQuery>,
) -> Response {
    let Some((realm, group)) = target(&realm, &id) else {
        return ctx.fail(&api, not_found()).await;
    };
    let a = ctx.lang.admin();
    let done = match q.done.as_deref() {
        Some("collection") => Some(a.done_collection),
        Some("guideline") => Some(a.done_guideline),
        Some("removed") => Some(a.done_removed),
        Some("copied") => Some(a.done_copied),
        Some("edited") => Some(a.done_edited),
        _ => None,
    };
    render(&ctx, &api, &realm, group, done, None).await
}

async fn render(
    ctx: &Ctx,
    api: &Api,
    realm: &RealmId,
    group: Uuid,
    done: Option<&'static str>,
    refused: Option<(StatusCode, String)>,
) -> Response {
    let base = format!("/api/v1/realms/{realm}");
    let (me, g, settings, semesters, edit) = tokio::join!(
        api.me(),
        api.group(realm, group),
        api.evaluation_settings(realm),
        api.semesters(realm),
        api.allowed(realm.as_str(), "editScores", Some(group)),
    );
    let (me, g, settings) = match (me, g, settings) {
        (Ok(m), Ok(g), Ok(s)) => (m, g, s),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return ctx.fail(api, e).await,
    };
    let semesters = semesters.unwrap_or_default();
    let semester = settings
        .semester_id
        .and_then(|id| semesters.iter().find(|s| s.id == id));
    let collections = match semester {
        Some(s) => {
            let path = format!(
                "{base}/groups/{group}/guideline-collections?semesterId={}",
                s.id
            );
            match api.get::<Vec<CollectionWithGuidelines>>(&path).await {
                Ok(c) => c,
                Err(e) => return ctx.fail(api, e).await,
            }
        }
        None => Vec::new(),
    };
    let status = refused.as_ref().map(|(s, _)| *s).unwrap_or(StatusCode::OK);
    let name = g.name;
    let view = views::guidelines::Guidelines {
        realm,
        group,
        group_name: &name,
        semester,
        season: settings.season,
        collections: &collections,
        edit,
        csrf: &ctx.csrf,
        done,
        refused: refused.as_ref().map(|(s, m)| (*s, m.as_str())),
    };
    ctx.page(
        status,
        ctx.lang.admin().guidelines,
        Some(&me),
        views::guidelines::page(ctx.lang, &view),
    )
}

/// A guideline form as the API's input (adding and editing send the same fields).
fn guideline_input<'a>(
    field: &impl Fn(&str) -> &'a str,
    number: impl Fn(&str) -> Option<i64>,
) -> Value {
    json!({
        "title": field("title"),
        "category": field("category"),
        "maxPerMember": number("maxPerMember"),
        "maxPerGuideline": number("maxPerGuideline"),
        "description": Some(field("description")).filter(|d| !d.is_empty()),
    })
}

/// `POST /realms/{realm}/groups/{id}/guidelines/{action}`: collection (start one for
/// the semester evaluated), copy (the previous semester's), add (a guideline to
/// `collection`), edit and remove (guideline `guideline`).
pub(super) async fn guidelines_action(
    SignedIn { mut ctx, api }: SignedIn,
    Path((realm, id, action)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some((realm, group)) = target(&realm, &id) else {
        return ctx.fail(&api, not_found()).await;
    };
    ctx.here = page_path(&realm, group);
    let f: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
        .collect();
    let field = |name: &str| {
        f.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let number = |name: &str| field(name).parse::<i64>().ok();
    let base = format!("/api/v1/realms/{realm}");
    let semester = Uuid::parse_str(field("semesterId")).ok();
    let (method, path, input, done) = match action.as_str() {
        "collection" => (
            Method::POST,
            format!("{base}/guideline-collections"),
            Some(json!({"groupId": group, "semesterId": semester, "name": field("name")})),
            "collection",
        ),
        "copy" => (
            Method::POST,
            format!("{base}/guideline-collections/copy"),
            Some(json!({"groupId": group, "semesterId": semester})),
            "copied",
        ),
        "add" => (
            Method::POST,
            format!(
                "{base}/guideline-collections/{}/guidelines",
                enc(field("collection"))
            ),
            Some(guideline_input(&field, number)),
            "guideline",
        ),
        "edit" => (
            Method::PUT,
            format!("{base}/guidelines/{}", enc(field("guideline"))),
            Some(guideline_input(&field, number)),
            "edited",
        ),
        "remove" => (
            Method::DELETE,
            format!("{base}/guidelines/{}", enc(field("guideline"))),
            None,
            "removed",
        ),
        _ => return ctx.fail(&api, not_found()).await,
    };
    let answer = match api.raw(method, &path, input).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(&api, e).await,
    };
    match answer {
        (s, _) if s.is_success() => {
            Redirect::to(&format!("{}?done={done}", page_path(&realm, group))).into_response()
        }
        (StatusCode::UNAUTHORIZED, _) => ctx.fail(&api, ApiError::SignedOut).await,
        (s, bytes) => {
            let message = api.refusal(&bytes);
            if s.is_client_error() {
                render(&ctx, &api, &realm, group, None, Some((s, message))).await
            } else {
                ctx.fail(&api, ApiError::Status(s, message)).await
            }
        }
    }
}
