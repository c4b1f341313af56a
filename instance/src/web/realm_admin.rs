//! Running a realm from the browser (`/realms/{realm}/admin`): its semesters (create,
//! set the current one), the evaluation season in PéK's words — with the API's "this
//! would leave work unfinished" refusal turned into a confirmation — the CSV exports as
//! downloads, and new groups. The page asks the API what the person may do
//! (`manageRealm`) only to know which controls to offer; every change is the API's to
//! allow or refuse, and a refusal is shown on the page.

use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::api::{api_message, enc, Api, ApiError};
use super::signed_in::SignedIn;
use super::{views, Ctx};
use crate::evaluation::season::SeasonChange;
use crate::group::Group;
use crate::realm::RealmId;

#[derive(Deserialize)]
pub(super) struct AdminQuery {
    done: Option<String>,
}

fn admin_path(realm: &RealmId) -> String {
    format!("/realms/{}/admin", enc(realm.as_str()))
}

pub(super) async fn admin_page(
    SignedIn { ctx, api }: SignedIn,
    Path(realm): Path<String>,
    Query(q): Query<AdminQuery>,
) -> Response {
    let Ok(realm) = RealmId::parse(&realm) else {
        return ctx
            .fail(&api, ApiError::Status(StatusCode::NOT_FOUND, String::new()))
            .await;
    };
    let a = ctx.lang.admin();
    let done = match q.done.as_deref() {
        Some("semester") => Some(a.done_semester),
        Some("current") => Some(a.done_current),
        Some("season") => Some(a.done_season),
        Some("history") => Some(a.history_computed),
        _ => None,
    };
    render(&ctx, &api, &realm, done, None).await
}

/// What the page says after a refused change: the API's status and message, and for a
/// season change that would leave work unfinished, the change to confirm.
pub(super) struct Refusal {
    pub status: StatusCode,
    /// What to say of it beyond the status, in the page's language.
    pub message: String,
    /// The groups whose work a season change would leave unfinished.
    pub stranded: Vec<String>,
    pub confirm: Option<(String, Option<Uuid>)>,
}

async fn render(
    ctx: &Ctx,
    api: &Api,
    realm: &RealmId,
    done: Option<&'static str>,
    refusal: Option<Refusal>,
) -> Response {
    let (me, semesters, settings, manage) = tokio::join!(
        api.me(),
        api.semesters(realm),
        api.evaluation_settings(realm),
        api.allowed(realm.as_str(), "manageRealm", None),
    );
    let (me, semesters, settings) = match (me, semesters, settings) {
        (Ok(m), Ok(s), Ok(e)) => (m, s, e),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return ctx.fail(api, e).await,
    };
    let names = api.realm_names().await;
    let status = refusal.as_ref().map(|r| r.status).unwrap_or(StatusCode::OK);
    let view = views::realm_admin::Admin {
        realm,
        realm_name: names(realm.as_str()),
        semesters: &semesters,
        settings: &settings,
        manage,
        csrf: &ctx.csrf,
        done,
        refusal: refusal.as_ref(),
    };
    ctx.page(
        status,
        ctx.lang.admin().title,
        Some(&me),
        views::realm_admin::page(ctx.lang, &view),
    )
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `POST /realms/{realm}/admin/{action}`: semester (create one), current (make one the
/// current semester), season (change it; `force` after the confirmation), group
/// (create a root group).
pub(super) async fn admin_action(
    SignedIn { mut ctx, api }: SignedIn,
    Path((realm, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(realm) = RealmId::parse(&realm) else {
        return ctx
            .fail(&api, ApiError::Status(StatusCode::NOT_FOUND, String::new()))
            .await;
    };
    ctx.here = admin_path(&realm);
    let f = form(&body);
    let base = format!("/api/v1/realms/{realm}");
    let semester = field(&f, "semesterId").and_then(|s| Uuid::parse_str(s).ok());
    let (method, path, input, done) = match action.as_str() {
        "semester" => (
            Method::POST,
            format!("{base}/semesters"),
            json!({
                "name": field(&f, "name").unwrap_or(""),
                "startsOn": field(&f, "startsOn").unwrap_or(""),
                "endsOn": field(&f, "endsOn").unwrap_or(""),
                "current": field(&f, "current").is_some(),
            }),
            "semester",
        ),
        "current" => (
            Method::PUT,
            format!("{base}/semesters/current"),
            json!({ "semesterId": semester }),
            "current",
        ),
        "season" => (
            Method::PUT,
            format!("{base}/evaluation-season"),
            json!({
                "season": field(&f, "season").unwrap_or(""),
                "semesterId": semester,
                "force": field(&f, "force").is_some(),
            }),
            "season",
        ),
        "group" => (
            Method::POST,
            format!("{base}/groups"),
            json!({
                "name": field(&f, "name").unwrap_or(""),
                "purpose": field(&f, "purpose").filter(|p| !p.is_empty()),
                "description": field(&f, "description").unwrap_or(""),
            }),
            "group",
        ),
        _ => {
            return ctx
                .fail(&api, ApiError::Status(StatusCode::NOT_FOUND, String::new()))
                .await
        }
    };
    let (status, bytes) = match api.raw(method, &path, Some(input)).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(&api, e).await,
    };
    let answer = if status.is_success() {
        Ok(())
    } else if status == StatusCode::UNAUTHORIZED {
        Err(ApiError::SignedOut)
    } else {
        Err(ApiError::Status(status, api.refusal(&bytes)))
    };
    match answer {
        Ok(()) => {
            let to = match done {
                // A new group: its own page.
                "group" => match serde_json::from_slice::<Group>(&bytes) {
                    Ok(g) => format!("/realms/{}/groups/{}?done=saved", enc(realm.as_str()), g.id),
                    Err(_) => admin_path(&realm),
                },
                // Leaving the judging season computed the semester's point history.
                "season"
                    if serde_json::from_slice::<SeasonChange>(&bytes)
                        .is_ok_and(|c| c.history_rows.is_some()) =>
                {
                    format!("{}?done=history", admin_path(&realm))
                }
                d => format!("{}?done={d}", admin_path(&realm)),
            };
            Redirect::to(&to).into_response()
        }
        Err(ApiError::Status(status, message)) if status.is_client_error() => {
            // A season change that would leave work unfinished is offered again, with
            // the API's list of what, to be confirmed.
            let confirm = (done == "season" && status == StatusCode::CONFLICT)
                .then(|| (field(&f, "season").unwrap_or("").to_string(), semester));
            let refusal = Refusal {
                status,
                message,
                // The groups the API names (quoted) in its refusal of a season change.
                stranded: views::realm_admin::quoted(&api_message(&bytes))
                    .into_iter()
                    .map(String::from)
                    .collect(),
                confirm,
            };
            render(&ctx, &api, &realm, None, Some(refusal)).await
        }
        Err(e) => ctx.fail(&api, e).await,
    }
}
