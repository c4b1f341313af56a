//! The web interface: server-rendered pages served by the hub at `/`, for the people who
//! use PéK every day (sign in, my groups across realms, search, people, groups).
//!
//! Every page gets its data from the hub's own JSON API, called in-process with the
//! signed-in person's session token (see [`api`]), so pages go through the same BFF
//! fan-out, forwarding and permission checks as API clients and show exactly what the
//! API would answer — a 404 there is a 404 here. Pages work without JavaScript; htmx
//! (vendored, embedded) makes search update as you type and the group page's and the
//! scoreboard's actions happen in place, where `assets/app.js` keeps the person's focus
//! and place and the page's live region (`#announce`, filled out of band) says what
//! happened. Static files are served under content-hashed names ([`static_files`]) and
//! the pages gzip-compressed.
//!
//! Security: the session is the hub's `pek_session` cookie (HttpOnly, Secure,
//! SameSite=Lax); every state-changing request and every htmx request carries a CSRF
//! token bound to the browser's `pek_csrf` cookie and its session; a strict
//! Content-Security-Policy allows scripts and styles from this origin only (no inline
//! ones anywhere); maud escapes every value it renders.

pub mod api;
mod directory;
mod evaluation;
mod groups;
mod guidelines;
pub mod i18n;
mod identities;
mod realm_admin;
mod signed_in;
mod static_files;
mod views;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::Markup;
use serde::Deserialize;

use self::api::{enc, Api, ApiError, ApiHandle};
use self::i18n::Lang;
use self::signed_in::{SignedIn, Visitor};
use crate::csrf::{csrf_ok, csrf_token, new_csrf_secret, CSRF_COOKIE, CSRF_HEADER};
use crate::http::{cookie, AppState, SESSION_COOKIE};
use crate::profile::UserView;

const LANG_COOKIE: &str = "pek_lang";

#[cfg(test)]
const HTMX_VERSION: &str = "2.0.11";

/// Scripts and styles from this origin only; nothing inline, nothing from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The pages (hub only). `api` is set to the finished router once it is built.
pub fn routes(state: AppState, api: ApiHandle) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in_page))
        .route("/sign-in/dev", post(dev_sign_in))
        .route("/sign-out", post(sign_out))
        .route("/search", get(search))
        .route("/groups", get(directory::directory_page))
        .route("/realms/{realm}/admin", get(realm_admin::admin_page))
        .route(
            "/realms/{realm}/groups/{id}/guidelines",
            get(guidelines::guidelines_page),
        )
        .route(
            "/realms/{realm}/groups/{id}/guidelines/{action}",
            post(guidelines::guidelines_action),
        )
        .route(
            "/realms/{realm}/admin/{action}",
            post(realm_admin::admin_action),
        )
        .route(
            "/realms/{realm}/policy-offers/{policy}/{action}",
            post(policy_offer_action),
        )
        .route("/people/{id}", get(person))
        .route("/people/{id}/profile", post(save_profile))
        .route("/me/identities/link", post(identities::link))
        .route("/me/identities/{key}/unlink", post(identities::unlink))
        .route("/realms/{realm}/groups/{id}", get(groups::group_page))
        .route(
            "/realms/{realm}/groups/{id}/{action}",
            post(groups::group_action),
        )
        .route(
            "/realms/{realm}/memberships/{id}/{action}",
            post(groups::membership_action),
        )
        .route("/profiles/{id}", get(old_person_link))
        .route("/korok/showuser/id/{id}", get(old_person_link))
        .route("/groups/{id}", get(old_group_link))
        .route("/korok/showgroup/id/{id}", get(old_group_link))
        .route("/lang", get(set_lang))
        .route("/assets/{name}", get(asset))
        .route("/favicon.ico", get(favicon))
        .merge(evaluation::routes())
        .layer(axum::middleware::from_fn_with_state(state, guard))
        .layer(Extension(api))
        // Pages and the style sheet and script gzip-compressed for browsers that ask
        // (htmx is compressed ahead of time; the layer leaves encoded answers alone).
        .layer(tower_http::compression::CompressionLayer::new())
}

// --- request context ----------------------------------------------------------------

/// The browser's CSRF secret (from its cookie, or minted for this response).
#[derive(Clone)]
struct CsrfSecret(String);

pub(crate) fn cookie_header(name: &str, value: &str, max_age: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    ))
    .ok()
}

/// Every page request: mints the CSRF cookie when missing, checks the CSRF token of
/// every state-changing and every htmx request, and adds the security headers.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let minted = cookie(&headers, CSRF_COOKIE).is_none();
    let secret = cookie(&headers, CSRF_COOKIE).unwrap_or_else(new_csrf_secret);
    let session = cookie(&headers, SESSION_COOKIE);
    let mut req = req;
    let is_htmx = headers.contains_key("hx-request");
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe || is_htmx {
        let mut presented = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        if presented.is_none() && !safe {
            // A form: the token is its `csrf` field.
            let (parts, body) = req.into_parts();
            let bytes = match axum::body::to_bytes(body, 64 * 1024).await {
                Ok(b) => b,
                Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            };
            presented = url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned());
            req = Request::from_parts(parts, Body::from(bytes));
        }
        let ok = !minted
            && presented
                .as_deref()
                .is_some_and(|p| csrf_ok(&secret, session.as_deref(), p));
        if !ok && session.is_none() && !minted && req.uri().path() != "/sign-in/dev" {
            // The form was made for a session that has ended since (its cookie expired):
            // say that, and offer the sign-in that comes back to the page.
            let lang = lang_of(&headers);
            let back = headers
                .get("hx-current-url")
                .and_then(|v| v.to_str().ok())
                .and_then(|u| url::Url::parse(u).ok())
                .map(|u| match u.query() {
                    Some(q) => format!("{}?{q}", u.path()),
                    None => u.path().to_string(),
                })
                .or_else(|| referer_path(&headers))
                .unwrap_or_else(|| "/".into());
            let sign_in = signed_out_location(&back, true);
            let mut resp = if is_htmx {
                let mut r = html(StatusCode::OK, views::session_ended(lang, &sign_in));
                let h = r.headers_mut();
                h.insert("hx-retarget", HeaderValue::from_static("#session-notice"));
                h.insert("hx-reswap", HeaderValue::from_static("innerHTML"));
                h.insert("hx-reselect", HeaderValue::from_static("#session-ended"));
                r
            } else {
                Redirect::to(&sign_in).into_response()
            };
            secure_headers(resp.headers_mut(), false);
            return resp;
        }
        if !ok {
            let lang = lang_of(&headers);
            let t = lang.t();
            let body = views::error_body(lang, t.csrf_failed, "");
            let frame = views::Frame {
                lang,
                title: t.error_title,
                csrf: "",
                me: None,
                here: "/",
                announce: None,
            };
            let mut resp = html(StatusCode::FORBIDDEN, views::page(&frame, body));
            secure_headers(resp.headers_mut(), false);
            return resp;
        }
    }
    req.extensions_mut().insert(CsrfSecret(secret.clone()));
    let asset = req.uri().path().starts_with("/assets/");
    let renewed = match &session {
        Some(token) if !asset && req.uri().path() != "/sign-out" => renewal(&state, token).await,
        _ => None,
    };
    let mut resp = next.run(req).await;
    if let Some((token, ttl)) = renewed {
        // Unless the page itself has just ended the session.
        let cleared = resp.headers().get_all(header::SET_COOKIE).iter().any(|c| {
            c.as_bytes()
                .starts_with(format!("{SESSION_COOKIE}=").as_bytes())
        });
        if !cleared {
            if let Some(c) = cookie_header(SESSION_COOKIE, &token, ttl) {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
        }
    }
    if minted && !asset {
        if let Some(c) = cookie_header(CSRF_COOKIE, &secret, 365 * 24 * 3600) {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    secure_headers(resp.headers_mut(), asset);
    if !asset {
        if let Some(csp) = state.login.as_deref().and_then(page_csp) {
            resp.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, csp);
        }
    }
    resp
}

/// The pages' CSP with the sign-in providers' origins in `form-action`: the "link" form
/// posts to this site and is answered with a redirect to the provider, and browsers check
/// `form-action` on every redirect of a form's navigation, so `'self'` alone would stop it.
fn page_csp(login: &crate::login::Login) -> Option<HeaderValue> {
    let origins = login.authorization_origins();
    if origins.is_empty() {
        return None;
    }
    let form_action = format!("form-action 'self' {}", origins.join(" "));
    HeaderValue::from_str(&CSP.replace("form-action 'self'", &form_action)).ok()
}

/// A renewed session token for an active person (see [`crate::login::Login::renew`]).
async fn renewal(state: &AppState, token: &str) -> Option<(String, u64)> {
    let login = state.login.as_deref()?;
    let claims = state.verifier.verify(token).await.ok()?;
    match login.renew(&state.db, &claims).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "renewing a session token");
            None
        }
    }
}

fn secure_headers(h: &mut HeaderMap, asset: bool) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::VARY,
            HeaderValue::from_static("Cookie, Accept-Language, HX-Request"),
        );
    }
}

fn lang_of(headers: &HeaderMap) -> Lang {
    if let Some(l) = cookie(headers, LANG_COOKIE).and_then(|c| Lang::parse(&c)) {
        return l;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::from_accept_language)
        .unwrap_or(Lang::Hu)
}

/// One page request's context.
struct Ctx {
    lang: Lang,
    csrf: String,
    session: Option<String>,
    here: String,
    /// The page to come back to after signing in: this page for a GET, the page the
    /// form was on (its same-origin `Referer`) for an action.
    back: String,
    /// An htmx request (it swaps a part of the page, so it gets no redirects).
    htmx: bool,
    request_id: Option<HeaderValue>,
    api: ApiHandle,
    state: AppState,
}

/// The path and query of a same-origin `Referer` (the page a form was sent from).
pub(super) fn referer_path(headers: &HeaderMap) -> Option<String> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let same = url.host_str().is_some_and(|h| {
        let with_port = match url.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        };
        with_port == host || h == host
    });
    if !same {
        return None;
    }
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    Some(crate::login::safe_return_path(Some(&path)))
}

impl Ctx {
    fn new(
        state: AppState,
        api: ApiHandle,
        req_headers: &HeaderMap,
        secret: &CsrfSecret,
        here: String,
    ) -> Ctx {
        let session = cookie(req_headers, SESSION_COOKIE);
        let htmx = req_headers.contains_key("hx-request");
        let from_page = req_headers
            .get("hx-current-url")
            .and_then(|v| v.to_str().ok())
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            })
            .map(|p| crate::login::safe_return_path(Some(&p)));
        // An action's handler names its page as `here`; htmx says which page it is on.
        let back = match from_page {
            Some(p) if htmx => p,
            _ => here.clone(),
        };
        Ctx {
            lang: lang_of(req_headers),
            csrf: csrf_token(&secret.0, session.as_deref()),
            session,
            here,
            back,
            htmx,
            request_id: req_headers.get("x-request-id").cloned(),
            api,
            state,
        }
    }

    /// The API as the signed-in person, or the answer that sends them to sign in.
    fn api(&self) -> Result<Api, Box<Response>> {
        let Some(token) = &self.session else {
            return Err(Box::new(self.signed_out(false)));
        };
        Api::new(&self.api, token.clone(), self.request_id.clone(), self.lang)
            .ok_or_else(|| Box::new(self.error(StatusCode::SERVICE_UNAVAILABLE, "")))
    }

    fn page(
        &self,
        status: StatusCode,
        title: &str,
        me: Option<&UserView>,
        body: Markup,
    ) -> Response {
        self.page_announcing(status, title, me, body, None)
    }

    /// [`Ctx::page`] saying in its live region what an action has just done.
    fn page_announcing(
        &self,
        status: StatusCode,
        title: &str,
        me: Option<&UserView>,
        body: Markup,
        announce: Option<&str>,
    ) -> Response {
        let id = me.map(|m| m.id.to_string()).unwrap_or_default();
        let name = me.map(|m| views::person_name(self.lang, m));
        let frame = views::Frame {
            lang: self.lang,
            title,
            csrf: &self.csrf,
            me: name.map(|n| (id.as_str(), n)),
            here: &self.here,
            announce,
        };
        html(status, views::page(&frame, body))
    }

    fn error(&self, status: StatusCode, detail: &str) -> Response {
        self.error_as(None, status, detail)
    }

    fn error_as(&self, me: Option<&UserView>, status: StatusCode, detail: &str) -> Response {
        let t = self.lang.t();
        let message = match status {
            StatusCode::NOT_FOUND => t.not_found,
            StatusCode::FORBIDDEN => t.forbidden,
            StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT => t.unavailable,
            s if s.is_client_error() => t.bad_request,
            _ => t.internal,
        };
        // What the API said of a 4xx, in the page's language (see `Api::refusal`); for
        // 404 nothing (it would only restate the path).
        let detail = if status == StatusCode::NOT_FOUND || status.is_server_error() {
            ""
        } else {
            detail
        };
        self.page(
            status,
            t.error_title,
            me,
            views::error_body(self.lang, message, detail),
        )
    }

    /// The answer for a failed API call (with the menu, when the person is signed in).
    async fn fail(&self, api: &Api, e: ApiError) -> Response {
        match e {
            ApiError::SignedOut => self.signed_out(true),
            ApiError::Status(s, m) => {
                let me = api.me().await.ok();
                self.error_as(me.as_ref(), s, &m)
            }
        }
    }

    /// The answer when there is no live session: the sign-in page, which brings the
    /// person back to this page. An htmx action is not redirected (the part of the page
    /// it would replace holds what the person typed): the page's notice area says the
    /// session has ended, with the sign-in link, and the form stays as it was.
    fn signed_out(&self, expired: bool) -> Response {
        let expired = expired || self.session.is_some();
        let sign_in = signed_out_location(&self.back, expired);
        let mut r = if self.htmx {
            let mut r = html(StatusCode::OK, views::session_ended(self.lang, &sign_in));
            let h = r.headers_mut();
            h.insert("hx-retarget", HeaderValue::from_static("#session-notice"));
            h.insert("hx-reswap", HeaderValue::from_static("innerHTML"));
            h.insert("hx-reselect", HeaderValue::from_static("#session-ended"));
            r
        } else {
            Redirect::to(&sign_in).into_response()
        };
        if self.session.is_some() {
            if let Some(c) = cookie_header(SESSION_COOKIE, "", 0) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
        }
        r
    }
}

/// The sign-in page that comes back to `back` afterwards.
fn signed_out_location(back: &str, expired: bool) -> String {
    let back = crate::login::safe_return_path(Some(back));
    format!(
        "/sign-in?{}back={}",
        if expired { "expired=1&" } else { "" },
        enc(&back)
    )
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn here(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into())
}

// --- pages --------------------------------------------------------------------------

async fn home(SignedIn { ctx, api }: SignedIn, uri: axum::http::Uri) -> Response {
    let (me, groups, offers) = tokio::join!(api.me(), api.my_groups(), api.my_policy_offers());
    let (me, groups, offers) = match (me, groups, offers) {
        (Ok(m), Ok(g), Ok(o)) => (m, g, o),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return ctx.fail(&api, e).await,
    };
    let names = api.realm_names().await;
    let t = ctx.lang.t();
    let done = match uri.query().unwrap_or("") {
        "done=role-accept" => Some(t.done_role_accepted),
        "done=role-decline" => Some(t.done_role_declined),
        _ => None,
    };
    ctx.page(
        StatusCode::OK,
        t.home,
        Some(&me),
        views::home(ctx.lang, &ctx.csrf, done, &me, &groups, &offers, &names),
    )
}

/// Accepting or declining a role offered to the signed-in person (from the home page).
async fn policy_offer_action(
    SignedIn { mut ctx, api }: SignedIn,
    Path((realm, policy, action)): Path<(String, String, String)>,
) -> Response {
    ctx.here = "/".into();
    let (Ok(realm), Ok(policy)) = (
        crate::realm::RealmId::parse(&realm),
        uuid::Uuid::parse_str(&policy),
    ) else {
        return ctx.error(StatusCode::NOT_FOUND, "");
    };
    if !matches!(action.as_str(), "accept" | "decline") {
        return ctx.error(StatusCode::NOT_FOUND, "");
    }
    let path = format!("/api/v1/realms/{realm}/me/policy-offers/{policy}/{action}");
    let (status, answer) = match api.raw(Method::POST, &path, None).await {
        Ok(r) => r,
        Err(e) => return ctx.fail(&api, e).await,
    };
    if status.is_success() {
        return Redirect::to(&format!("/?done=role-{action}")).into_response();
    }
    if status == StatusCode::UNAUTHORIZED {
        return ctx.fail(&api, ApiError::SignedOut).await;
    }
    ctx.fail(&api, ApiError::Status(status, api.refusal(&answer)))
        .await
}

#[derive(Deserialize)]
struct SignInQuery {
    expired: Option<String>,
    /// The page to come back to.
    back: Option<String>,
}

async fn sign_in_page(Visitor { ctx }: Visitor, Query(q): Query<SignInQuery>) -> Response {
    let t = ctx.lang.t();
    let Some(login) = ctx.state.login.as_deref() else {
        return ctx.error(StatusCode::NOT_FOUND, "");
    };
    // The development sign-in's people from the API's dev-login route, like every page's
    // data (the page has no session yet, so it asks without one, as the route allows).
    let dev = if login.dev_login_enabled() {
        let people = match Api::anonymous(&ctx.api, ctx.request_id.clone(), ctx.lang) {
            Some(api) => api.dev_people().await,
            None => Err(ApiError::Status(
                StatusCode::SERVICE_UNAVAILABLE,
                String::new(),
            )),
        };
        match people {
            Ok(p) => Some(
                p.items
                    .into_iter()
                    .map(|p| (p.auth_sch_id, p.name))
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = ?e, "listing people for the development sign-in");
                Some(Vec::new())
            }
        }
    } else {
        None
    };
    let body = views::sign_in(
        ctx.lang,
        &views::SignIn {
            providers: login
                .providers()
                .into_iter()
                .map(|p| (p.id, p.display_name))
                .collect(),
            dev,
            csrf: &ctx.csrf,
            message: q.expired.is_some().then_some(t.session_expired),
            back: &crate::login::safe_return_path(q.back.as_deref()),
        },
    );
    ctx.page(StatusCode::OK, t.sign_in, None, body)
}

async fn dev_sign_in(Visitor { mut ctx }: Visitor, body: axum::body::Bytes) -> Response {
    ctx.here = "/sign-in".into();
    let Some(login) = ctx.state.login.as_deref().filter(|l| l.dev_login_enabled()) else {
        return ctx.error(StatusCode::NOT_FOUND, "");
    };
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    };
    let id = field("authSchId").unwrap_or_default();
    let back = crate::login::safe_return_path(field("back").as_deref());
    if id.is_empty() || id.len() > 200 {
        return ctx.error(StatusCode::BAD_REQUEST, "");
    }
    let identity = crate::login::Identity {
        id,
        ..Default::default()
    };
    match login.sign_in(&ctx.state.db, &identity).await {
        Ok(result) => {
            let mut r = Redirect::to(&back).into_response();
            if let Some(c) = cookie_header(SESSION_COOKIE, &result.token, login.token_ttl()) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            r
        }
        Err(e) => {
            let status = e.status();
            ctx.error(status, &e.to_string())
        }
    }
}

/// Ends the session (its token is refused from then on) and clears the cookie. The
/// pages are `no-store`, so the browser's Back button cannot show them again.
async fn sign_out(Visitor { mut ctx }: Visitor, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = crate::http::end_session(&ctx.state, &token).await {
            // The session still holds: say so rather than pretend it ended.
            ctx.here = "/".into();
            return ctx.error(e.status(), &e.to_string());
        }
    }
    let mut r = Redirect::to("/sign-in").into_response();
    if let Some(c) = cookie_header(SESSION_COOKIE, "", 0) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

#[derive(Deserialize)]
struct LangQuery {
    to: Option<String>,
    back: Option<String>,
}

async fn set_lang(Query(q): Query<LangQuery>) -> Response {
    let back = crate::login::safe_return_path(q.back.as_deref());
    let mut r = Redirect::to(&back).into_response();
    if let Some(lang) = q.to.as_deref().and_then(Lang::parse) {
        if let Some(c) = cookie_header(LANG_COOKIE, lang.code(), 365 * 24 * 3600) {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    r
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    /// The people search's cursor (next page of people).
    people: Option<String>,
    /// The merged cross-realm group cursor (next page of groups).
    groups: Option<String>,
}

const SEARCH_PAGE: u32 = 20;

async fn search(
    SignedIn { ctx, api }: SignedIn,
    headers: HeaderMap,
    Query(sq): Query<SearchQuery>,
) -> Response {
    let t = ctx.lang.t();
    let q = sq.q.unwrap_or_default();
    let q = q.trim().to_string();
    let (mut people, mut people_error, mut groups) = (None, None, None);
    let me = api.me();
    if q.is_empty() {
        let me = match me.await {
            Ok(m) => m,
            Err(e) => return ctx.fail(&api, e).await,
        };
        let view = views::SearchView {
            q: &q,
            people: None,
            people_error: None,
            groups: None,
        };
        let names = api.realm_names().await;
        return ctx.page(
            StatusCode::OK,
            t.search,
            Some(&me),
            views::search(ctx.lang, &view, &names),
        );
    }
    // A "more groups" page shows groups only, a "more people" page people only.
    let want_people = sq.groups.is_none();
    let want_groups = sq.people.is_none();
    let people_call = async {
        if want_people && q.chars().count() >= 2 {
            Some(
                api.search_users(&q, SEARCH_PAGE, sq.people.as_deref())
                    .await,
            )
        } else {
            None
        }
    };
    // Groups from the directory: every realm's listed groups, not only the person's.
    let groups_call = async {
        if want_groups {
            Some(api.directory(&q, SEARCH_PAGE, sq.groups.as_deref()).await)
        } else {
            None
        }
    };
    let (me, p, g) = tokio::join!(me, people_call, groups_call);
    let me = match me {
        Ok(m) => m,
        Err(e) => return ctx.fail(&api, e).await,
    };
    match p {
        Some(Ok(v)) => people = Some(v),
        Some(Err(ApiError::Status(StatusCode::BAD_REQUEST, _))) => {
            people_error = Some(t.too_short.to_string())
        }
        Some(Err(e)) => return ctx.fail(&api, e).await,
        None if want_people => people_error = Some(t.too_short.to_string()),
        None => {}
    }
    match g {
        Some(Ok(v)) => groups = Some(v),
        Some(Err(e)) => return ctx.fail(&api, e).await,
        None => {}
    }
    let view = views::SearchView {
        q: &q,
        people: people.as_ref(),
        people_error,
        groups: groups.as_ref(),
    };
    let names = api.realm_names().await;
    if headers.contains_key("hx-request") && !headers.contains_key("hx-boosted") {
        // htmx asked for the results only (search as you type).
        return html(
            StatusCode::OK,
            views::search_results(ctx.lang, &view, &names),
        );
    }
    ctx.page(
        StatusCode::OK,
        t.search,
        Some(&me),
        views::search(ctx.lang, &view, &names),
    )
}

#[derive(Deserialize)]
struct PersonQuery {
    saved: Option<String>,
}

/// A pek-next or korok profile link: to the person's page here (permanently).
async fn old_person_link(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let found = match crate::legacy::parse(&id) {
        Some(n) => crate::legacy::person(&s.db, n).await,
        None => Ok(None),
    };
    match found {
        Ok(Some(uuid)) => Redirect::permanent(&format!("/people/{uuid}")).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such person").into_response(),
        Err(e) => e.into_response(),
    }
}

/// A pek-next or korok group link: to the group's page here (permanently).
async fn old_group_link(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let found = match crate::legacy::parse(&id) {
        Some(n) => crate::legacy::group(&s.db, n).await,
        None => Ok(None),
    };
    match found {
        Ok(Some((realm, uuid))) => {
            Redirect::permanent(&format!("/realms/{realm}/groups/{uuid}")).into_response()
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no such group").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn person(
    SignedIn { ctx, api }: SignedIn,
    Path(id): Path<String>,
    Query(pq): Query<PersonQuery>,
) -> Response {
    render_person(&ctx, &api, &id, pq.saved.is_some(), None, None).await
}

async fn render_person(
    ctx: &Ctx,
    api: &Api,
    id: &str,
    saved: bool,
    error: Option<(StatusCode, String)>,
    form: Option<&views::ProfileForm>,
) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return ctx
            .fail(api, ApiError::Status(StatusCode::NOT_FOUND, String::new()))
            .await;
    };
    let (me, user, groups, points) = tokio::join!(
        api.me(),
        api.user(id),
        api.user_groups(id),
        api.user_points(id)
    );
    let (me, user, groups) = match (me, user, groups) {
        (Ok(m), Ok(u), Ok(g)) => (m, u, g),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return ctx.fail(api, e).await,
    };
    let is_me = me.id == id;
    let names = api.realm_names().await;
    let title = views::person_name(ctx.lang, &user);
    let status = error.as_ref().map(|(s, _)| *s).unwrap_or(StatusCode::OK);
    let body = views::person(
        ctx.lang,
        &views::PersonView {
            user: &user,
            groups: &groups,
            is_me,
            csrf: &ctx.csrf,
            saved,
            error: error.as_ref().map(|(_, m)| m.as_str()),
            form,
        },
        &names,
    );
    // Community points only when the API shows them to this person (403/404: not).
    let body = match points {
        Ok(p) => maud::html! {
            (body) (views::evaluation::person_points(ctx.lang, &(&p).into(), &names))
        },
        Err(_) => body,
    };
    // One's own ways to sign in, and the record of their links and unlinks.
    let body = match is_me {
        true => match api.my_identities().await {
            Ok(v) => maud::html! { (body) (views::identities::section(ctx.lang, &v, &ctx.csrf)) },
            Err(_) => body,
        },
        false => body,
    };
    ctx.page(status, &title, Some(&me), body)
}

/// The profile form as the API's profile input (empty fields are null).
fn profile_input(body: &[u8]) -> views::ProfileForm {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
        .collect();
    let one = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let all = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let external_accounts = all("accountProtocol")
        .into_iter()
        .zip(all("accountName"))
        .filter(|(_, name)| !name.is_empty())
        .map(|(protocol, account_name)| views::AccountField {
            protocol,
            account_name,
        })
        .collect();
    views::ProfileForm {
        first_name: one("firstName"),
        last_name: one("lastName"),
        nickname: one("nickname"),
        cell_phone: one("cellPhone"),
        room: one("room"),
        dormitory: one("dormitory"),
        gender: one("gender"),
        student_status: one("studentStatus"),
        external_accounts,
    }
}

async fn save_profile(
    SignedIn { mut ctx, api }: SignedIn,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    ctx.here = format!("/people/{}", enc(&id));
    let me = match api.me().await {
        Ok(m) => m,
        Err(e) => return ctx.fail(&api, e).await,
    };
    if me.id.to_string() != id {
        // This page edits only one's own profile.
        return ctx
            .fail(&api, ApiError::Status(StatusCode::FORBIDDEN, String::new()))
            .await;
    }
    let input = profile_input(&body);
    let Ok(json) = serde_json::to_value(&input) else {
        return ctx.error(StatusCode::INTERNAL_SERVER_ERROR, "");
    };
    match api
        .call::<serde::de::IgnoredAny>(Method::PUT, "/api/v1/me/profile", Some(json))
        .await
    {
        Ok(_) => Redirect::to(&format!("/people/{}?saved=1", enc(&id))).into_response(),
        Err(ApiError::Status(status, message)) if status.is_client_error() => {
            render_person(
                &ctx,
                &api,
                &id,
                false,
                Some((status, message)),
                Some(&input),
            )
            .await
        }
        Err(e) => ctx.fail(&api, e).await,
    }
}

/// The browser's tab icon at `/favicon.ico`, where browsers look without asking.
async fn favicon() -> Response {
    static_files::favicon()
}

/// Error answers a browser would otherwise show as raw JSON or as an empty page (an
/// unknown address, a wrong method, a body too large, a failure — of a page or of an API
/// address opened in the browser, like an export link): an HTML page in the person's
/// language. API clients, which do not ask for `text/html`, get the API's JSON as ever;
/// the pages' own error pages pass unchanged.
pub async fn browser_errors(req: Request, next: Next) -> Response {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !wants_html || req.headers().contains_key("hx-request") {
        return next.run(req).await;
    }
    let lang = lang_of(req.headers());
    let resp = next.run(req).await;
    let status = resp.status();
    let html_already = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || html_already {
        return resp;
    }
    let t = lang.t();
    let message = match status {
        StatusCode::NOT_FOUND => t.not_found,
        StatusCode::METHOD_NOT_ALLOWED => t.method_not_allowed,
        StatusCode::PAYLOAD_TOO_LARGE => t.too_large,
        StatusCode::UNAUTHORIZED => t.session_expired,
        StatusCode::FORBIDDEN => t.forbidden,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
            t.unavailable
        }
        s if s.is_server_error() => t.internal,
        _ => t.bad_request,
    };
    let frame = views::Frame {
        lang,
        title: t.error_title,
        csrf: "",
        me: None,
        here: "/",
        announce: None,
    };
    let mut out = html(
        status,
        views::page(&frame, views::error_body(lang, message, "")),
    );
    // What the answer said beyond its body stays: the allowed methods, the request id.
    for name in [
        header::ALLOW,
        header::HeaderName::from_static("x-request-id"),
    ] {
        if let Some(v) = resp.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    secure_headers(out.headers_mut(), false);
    out
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if name == "htmx.LICENSE" {
        return (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            include_str!("assets/htmx.LICENSE"),
        )
            .into_response();
    }
    static_files::serve(&name, &headers).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_form_becomes_the_api_input() {
        let v = profile_input(
            b"csrf=x&firstName=%C3%81ron&lastName=+&nickname=ari&dormitory=SCH\
              &accountProtocol=SCH_MAIL&accountName=ari%40sch&accountProtocol=GMAIL&accountName=",
        );
        assert_eq!(
            v,
            views::ProfileForm {
                first_name: Some("Áron".into()),
                nickname: Some("ari".into()),
                dormitory: Some("SCH".into()),
                external_accounts: vec![views::AccountField {
                    protocol: "SCH_MAIL".into(),
                    account_name: "ari@sch".into(),
                }],
                ..Default::default()
            }
        );
        // As the API's input: every field named as the API names it, empty ones null.
        let json = serde_json::to_value(&v).expect("serialize");
        assert_eq!(
            json,
            serde_json::json!({"firstName": "Áron", "lastName": null, "nickname": "ari",
                "cellPhone": null, "room": null, "dormitory": "SCH", "gender": null,
                "studentStatus": null,
                "externalAccounts": [{"protocol": "SCH_MAIL", "accountName": "ari@sch"}]})
        );
    }

    #[test]
    fn the_htmx_asset_is_the_vendored_version() {
        let text = include_str!("assets/htmx.min.js");
        assert!(text.contains(&format!("version:\"{HTMX_VERSION}\"")));
    }
}
