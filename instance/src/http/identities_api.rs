//! Hub-only: a person's sign-in identities — list them with the record of links and
//! unlinks, link another provider (from a signed-in session only), unlink one but the
//! last. See `identity.rs`; the link itself finishes at `/auth/callback`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth_api::{live_session, login_of, set_cookie, LOGIN_COOKIE};
use super::{AppState, Caller, Json, Path};
use crate::error::{Error, ErrorBody, Result};
use crate::identity::{IdentityEvent, IdentityView};
use crate::login::ProviderInfo;
use crate::text::Line;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_identities, link_identity))
        .routes(routes!(unlink_identity))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MyIdentities {
    /// The caller's identities, AuthSCH first.
    pub identities: Vec<IdentityView>,
    /// Every link and unlink of the caller's identities, newest first.
    pub events: Vec<IdentityEvent>,
    /// The hub's sign-in providers (to link one more).
    pub providers: Vec<ProviderInfo>,
    /// The people a hub administrator merged into the caller (who, when, and each
    /// realm's progress), newest first.
    #[serde(default)]
    pub merges: Vec<crate::person_merge::MergeView>,
}

/// The caller's sign-in identities, the record of their links, unlinks and merges, the
/// people merged into them, and the providers one more could be linked from.
#[utoipa::path(get, path = "/api/v1/me/identities", tag = "auth",
    responses((status = 200, body = MyIdentities), (status = 401, body = ErrorBody)))]
async fn my_identities(
    State(s): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<MyIdentities>> {
    let mut g = s.db.global().await?;
    let identities = crate::identity::list(&mut g, me).await?;
    let events = crate::identity::events(&mut g, me).await?;
    g.commit().await?;
    let providers = s.login.as_ref().map(|l| l.providers()).unwrap_or_default();
    let merges = crate::person_merge::merges_into(&s.db, me).await?;
    Ok(Json(MyIdentities {
        identities,
        events,
        providers,
        merges,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LinkRequest {
    /// The provider to link (`GET /auth/providers`).
    provider: Line<64>,
    /// Path on the frontend to return to once linked (default `/`).
    return_to: Option<Line<1000>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct LinkStarted {
    /// Send the browser here (it carries the `pek_login` cookie set with this answer);
    /// the provider comes back to `/auth/callback`, which links the identity when it
    /// comes back to this same session.
    authorization_url: String,
}

/// Starts linking another sign-in provider to the caller: only from a signed-in session
/// (a token minted without one cannot link), and the link finishes only in that same
/// session. An identity that belongs to someone else is refused at the callback.
#[utoipa::path(post, path = "/api/v1/me/identities", tag = "auth", request_body = LinkRequest,
    responses((status = 200, body = LinkStarted), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "no such provider"),
              (status = 503, body = ErrorBody)))]
async fn link_identity(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Json(body): Json<LinkRequest>,
) -> Result<Response> {
    let token = super::presented_token(&headers).unwrap_or_default();
    let (url, state) =
        start_link(&s, me, &token, &body.provider, body.return_to.as_deref()).await?;
    let login = login_of(&s)?;
    let mut resp = Json(LinkStarted {
        authorization_url: url,
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &state, "/auth", login.state_ttl())?,
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The profile page's "link" button: a 303 to the provider that binds the link to the
/// browser, as `/auth/login` does.
pub(crate) async fn link_redirect(
    s: &AppState,
    me: uuid::Uuid,
    token: &str,
    provider: &str,
    return_to: Option<&str>,
) -> Result<Response> {
    let (url, state) = start_link(s, me, token, provider, return_to).await?;
    super::auth_api::to_provider(login_of(s)?, &url, &state)
}

/// Starts a link for the signed-in session of `token`: the authorization URL and the
/// state to bind to the browser.
async fn start_link(
    s: &AppState,
    me: uuid::Uuid,
    token: &str,
    provider: &str,
    return_to: Option<&str>,
) -> Result<(String, String)> {
    let login = login_of(s)?;
    let session = live_session(s, token)
        .await
        .filter(|c| c.sub == me)
        .and_then(|c| c.sid)
        .ok_or_else(|| {
            Error::Unauthorized("linking a provider needs a signed-in session; sign in".into())
        })?;
    login
        .start(&s.db, Some(provider), return_to, Some((me, session)))
        .await
}

/// Unlinks one of the caller's identities (`key` from `GET /api/v1/me/identities`);
/// the last one stays (409, reason `last_identity`). Recorded.
#[utoipa::path(delete, path = "/api/v1/me/identities/{key}", tag = "auth",
    params(("key" = String, Path)),
    responses((status = 204, description = "unlinked"), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn unlink_identity(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(key): Path<Line<64>>,
) -> Result<axum::http::StatusCode> {
    let mut g = s.db.global().await?;
    crate::identity::unlink(&mut g, me, &key, me).await?;
    g.commit().await?;
    tracing::info!(user = %me, "identity unlinked");
    Ok(axum::http::StatusCode::NO_CONTENT)
}
