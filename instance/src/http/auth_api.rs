//! Hub-only auth routes: the JWK Set, OAuth2/OIDC login, logout, and (only when
//! `PEK_DEV_LOGIN=true`) the development login.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{cookie, presented_token, AppState, Json, Query, SESSION_COOKIE};
use crate::error::{Error, ErrorBody, Result};
use crate::login::{Callback, Finished, Identity, Login, LoginResult, ProviderInfo};
use crate::text::Line;

/// Binds a login in progress to the browser that started it.
pub(super) const LOGIN_COOKIE: &str = "pek_login";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(login))
        .routes(routes!(providers))
        .routes(routes!(callback))
        .routes(routes!(logout))
        .routes(routes!(csrf))
}

/// Only mounted with `PEK_DEV_LOGIN=true` (otherwise the path is a 404).
pub fn dev_login_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/auth/dev-login", axum::routing::post(dev_login))
        .route("/auth/dev-login/people", axum::routing::get(dev_people))
}

pub(super) fn login_of(s: &AppState) -> Result<&Login> {
    s.login
        .as_deref()
        .ok_or_else(|| Error::NotFound("login is served by the hub only".into()))
}

pub(super) fn set_cookie(name: &str, value: &str, path: &str, max_age: u64) -> Result<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    ))
    .map_err(|_| Error::Internal(anyhow::anyhow!("cookie value is not a header value")))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

#[derive(Serialize, utoipa::ToSchema)]
struct JwkSet {
    /// Public keys (kty, kid, alg, use=sig; n/e for RSA, crv/x for Ed25519).
    #[schema(value_type = Vec<Object>)]
    keys: Vec<serde_json::Value>,
}

/// The hub's token verification keys as a JWK Set (the first one signs new tokens).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, body = JwkSet)))]
async fn jwks(State(s): State<AppState>) -> Result<Response> {
    let keys = s
        .keys
        .as_ref()
        .ok_or_else(|| Error::NotFound("the JWKS is served by the hub only".into()))?;
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(keys.jwks()),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
struct LoginQuery {
    /// Path on the frontend to return to after login (default `/`).
    return_to: Option<Line<2000>>,
    /// The sign-in provider's id (`GET /auth/providers`); default: the default provider.
    provider: Option<Line<64>>,
}

/// Starts a login: redirects to the sign-in provider (the default one, AuthSCH or the
/// configured OIDC provider, or `provider`) with PKCE, `state` and (OIDC) `nonce`.
#[utoipa::path(get, path = "/auth/login", tag = "auth", params(LoginQuery),
    responses((status = 303, description = "redirect to the login provider"),
              (status = 404, body = ErrorBody, description = "login not configured, or no such provider"),
              (status = 503, body = ErrorBody)))]
async fn login(State(s): State<AppState>, Query(q): Query<LoginQuery>) -> Result<Response> {
    let login = login_of(&s)?;
    let (url, state) = login
        .start(&s.db, q.provider.as_deref(), q.return_to.as_deref(), None)
        .await?;
    to_provider(login, &url, &state)
}

/// A 303 to the provider's authorization URL, binding the login to this browser.
pub(super) fn to_provider(login: &Login, url: &str, state: &str) -> Result<Response> {
    let location = HeaderValue::from_str(url)
        .map_err(|_| Error::Internal(anyhow::anyhow!("authorization URL is not a header value")))?;
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut().insert(header::LOCATION, location);
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, state, "/auth", login.state_ttl())?,
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Serialize, utoipa::ToSchema)]
struct Providers {
    /// The default provider first.
    items: Vec<ProviderInfo>,
}

/// The sign-in providers of this hub (`/auth/login?provider=…`).
#[utoipa::path(get, path = "/auth/providers", tag = "auth",
    responses((status = 200, body = Providers)))]
async fn providers(State(s): State<AppState>) -> Result<Json<Providers>> {
    let items = s.login.as_ref().map(|l| l.providers()).unwrap_or_default();
    Ok(Json(Providers { items }))
}

fn signed_in(login: &Login, result: LoginResult, json: bool) -> Result<Response> {
    let session = set_cookie(SESSION_COOKIE, &result.token, "/", login.token_ttl())?;
    let clear = set_cookie(LOGIN_COOKIE, "", "/auth", 0)?;
    let mut resp = if json {
        axum::Json(&result).into_response()
    } else {
        let location = HeaderValue::from_str(&login.frontend_location(&result.return_to))
            .map_err(|_| Error::Internal(anyhow::anyhow!("frontend URL is not a header value")))?;
        let mut r = StatusCode::SEE_OTHER.into_response();
        r.headers_mut().insert(header::LOCATION, location);
        r
    };
    resp.headers_mut().append(header::SET_COOKIE, session);
    resp.headers_mut().append(header::SET_COOKIE, clear);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The provider's redirect back: exchanges the code, reads the profile, upserts the
/// user and issues a hub token — as JSON when the client asks for `application/json`,
/// otherwise as the `pek_session` cookie with a redirect to the frontend. Bad, replayed
/// or expired state and provider errors are 400s.
#[utoipa::path(get, path = "/auth/callback", tag = "auth", params(Callback),
    responses((status = 200, body = LoginResult, description = "with Accept: application/json"),
              (status = 303, description = "to the frontend, session cookie set"),
              (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "login not configured"),
              (status = 503, body = ErrorBody)))]
async fn callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Result<Response> {
    let login = login_of(&s)?;
    let bound = cookie(&headers, LOGIN_COOKIE);
    let current = match presented_token(&headers) {
        Some(t) => live_session(&s, &t).await,
        None => None,
    };
    match login
        .finish(&s.db, &cb, bound.as_deref(), current.as_ref())
        .await?
    {
        Finished::SignedIn(result) => signed_in(login, *result, wants_json(&headers)),
        Finished::Linked { return_to } => {
            let clear = set_cookie(LOGIN_COOKIE, "", "/auth", 0)?;
            let mut resp = if wants_json(&headers) {
                axum::Json(serde_json::json!({ "linked": true })).into_response()
            } else {
                let location = HeaderValue::from_str(&login.frontend_location(&return_to))
                    .map_err(|_| {
                        Error::Internal(anyhow::anyhow!("frontend URL is not a header value"))
                    })?;
                let mut r = StatusCode::SEE_OTHER.into_response();
                r.headers_mut().insert(header::LOCATION, location);
                r
            };
            resp.headers_mut().append(header::SET_COOKIE, clear);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(resp)
        }
    }
}

/// The claims of `token` when it is a live hub session's: a token of a session that is
/// signed out, or not a session's, is none.
pub(super) async fn live_session(s: &AppState, token: &str) -> Option<crate::auth::Claims> {
    let claims = s.verifier.verify(token).await.ok()?;
    let sid = claims.sid?;
    s.sessions.as_ref()?.check(sid, claims.sub).await.ok()?;
    Some(claims)
}

/// Signs out: ends the session of the presented token (the session cookie or
/// `Authorization: Bearer`), so that token is refused from then on, and clears the
/// session cookie. Without a valid session token it only clears the cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "session ended, session cookie cleared"),
              (status = 503, body = ErrorBody)))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if let Some(token) = presented_token(&headers) {
        end_session(&s, &token).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", "/", 0)?);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Ends the server-side session a token names (a no-op for an invalid token or one
/// without a session).
pub(crate) async fn end_session(s: &AppState, token: &str) -> Result<()> {
    let Ok(claims) = s.verifier.verify(token).await else {
        return Ok(());
    };
    if let (Some(sid), Some(sessions)) = (claims.sid, &s.sessions) {
        if sessions.revoke(sid, claims.sub, claims.sub).await? {
            tracing::info!(user = %claims.sub, "signed out");
        }
    }
    Ok(())
}

#[derive(Serialize, utoipa::ToSchema)]
struct CsrfToken {
    /// Send it as the `x-csrf-token` header with every state-changing `/api/…` call the
    /// session cookie authenticates. Bound to this browser's `pek_csrf` cookie and to its
    /// session: fetch it again after signing in.
    token: String,
}

/// The CSRF token for browser scripts that call the API with the session cookie (sets
/// the `pek_csrf` cookie when the browser has none). Calls with `Authorization: Bearer`
/// need no token.
#[utoipa::path(get, path = "/auth/csrf", tag = "auth",
    responses((status = 200, body = CsrfToken)))]
async fn csrf(headers: HeaderMap) -> Result<Response> {
    let existing = cookie(&headers, crate::csrf::CSRF_COOKIE);
    let secret = existing
        .clone()
        .unwrap_or_else(crate::csrf::new_csrf_secret);
    let session = cookie(&headers, SESSION_COOKIE);
    let token = crate::csrf::csrf_token(&secret, session.as_deref());
    let mut resp = axum::Json(CsrfToken { token }).into_response();
    if existing.is_none() {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            set_cookie(crate::csrf::CSRF_COOKIE, &secret, "/", 365 * 24 * 3600)?,
        );
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DevLogin {
    auth_sch_id: Line<200>,
    first_name: Option<Line<100>>,
    last_name: Option<Line<100>>,
    display_name: Option<Line<200>>,
    email: Option<Line<320>>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct DevPeople {
    pub items: Vec<crate::login::DevPerson>,
}

/// The people the development login offers (`PEK_DEV_LOGIN=true` only; no session
/// needed, as signing in as any of them needs none).
async fn dev_people(State(s): State<AppState>) -> Result<Json<DevPeople>> {
    let login = login_of(&s)?;
    if !login.dev_login_enabled() {
        return Err(Error::NotFound("no such route".into()));
    }
    let items = crate::login::dev_people(&s.db).await?;
    Ok(Json(DevPeople { items }))
}

/// Development login (`PEK_DEV_LOGIN=true` only): signs in as any provider id.
async fn dev_login(State(s): State<AppState>, Json(body): Json<DevLogin>) -> Result<Response> {
    let login = login_of(&s)?;
    if !login.dev_login_enabled() {
        return Err(Error::NotFound("no such route".into()));
    }
    let id = body.auth_sch_id.trim();
    if id.is_empty() || id.len() > 200 {
        return Err(Error::invalid("authSchId must be 1-200 characters"));
    }
    let result = login
        .sign_in(
            &s.db,
            &Identity {
                id: id.to_string(),
                display_name: body.display_name.map(String::from),
                first_name: body.first_name.map(String::from),
                last_name: body.last_name.map(String::from),
                email: body.email.map(String::from),
                email_verified: None,
                neptun: None,
            },
        )
        .await?;
    signed_in(login, result, true)
}
