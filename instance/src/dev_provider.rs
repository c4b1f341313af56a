//! `pek local`'s sign-in providers: small OAuth2 providers on loopback, so a newcomer can
//! sign in through a real authorization-code flow and link a second provider in the
//! browser without an account anywhere. One speaks AuthSCH's dialect (plain OAuth2, the
//! profile with `internal_id`, `givenName`, `sn`, `mail`, the access token as a query
//! parameter); the other is an OpenID Connect-style provider with discovery and the
//! standard claims (`sub`, `given_name`, …). Both ask for nobody's password: their
//! sign-in page lets one pick a demo person or type any subject. Development only —
//! `pek local` is the only thing that starts them.
//!
//! The hub talks to them exactly as to real providers: the code is single-use, bound to
//! its redirect URI and PKCE challenge (S256), the client must authenticate, and access
//! tokens live five minutes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;

/// Which dialect a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// AuthSCH-like: plain OAuth2, AuthSCH's profile fields.
    AuthSch,
    /// OpenID Connect-style: discovery, standard claims.
    Oidc,
}

/// Someone the sign-in page offers.
#[derive(Debug, Clone)]
pub struct DevPerson {
    pub subject: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

/// A running provider.
pub struct DevProvider {
    /// Its base URL (also its issuer).
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
}

struct Grant {
    subject: String,
    redirect_uri: String,
    challenge: Option<String>,
    until: Instant,
}

struct Provider {
    dialect: Dialect,
    name: String,
    url: String,
    client_id: String,
    client_secret: String,
    people: Vec<DevPerson>,
    codes: Mutex<HashMap<String, Grant>>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

type Shared = Arc<Provider>;

/// Starts a provider on `ip` (any free port) with a fresh client secret.
pub async fn start(
    ip: IpAddr,
    dialect: Dialect,
    name: &str,
    people: Vec<DevPerson>,
) -> anyhow::Result<DevProvider> {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let client_id = "pek-local".to_string();
    let client_secret = random();
    let state = Arc::new(Provider {
        dialect,
        name: name.to_string(),
        url: url.clone(),
        client_id: client_id.clone(),
        client_secret: client_secret.clone(),
        people,
        codes: Mutex::new(HashMap::new()),
        tokens: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize_page).post(authorize))
        .route("/token", axum::routing::post(token))
        .route("/userinfo", get(userinfo))
        .with_state(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "development sign-in provider stopped");
        }
    });
    Ok(DevProvider {
        url,
        client_id,
        client_secret,
    })
}

fn random() -> String {
    let bytes: [u8; 24] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}

async fn discovery(State(p): State<Shared>) -> Response {
    if p.dialect != Dialect::Oidc {
        return StatusCode::NOT_FOUND.into_response();
    }
    Json(serde_json::json!({
        "issuer": p.url,
        "authorization_endpoint": format!("{}/authorize", p.url),
        "token_endpoint": format!("{}/token", p.url),
        "userinfo_endpoint": format!("{}/userinfo", p.url),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: Option<String>,
}

/// The sign-in page: pick a demo person or type a subject.
async fn authorize_page(State(p): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.client_id != p.client_id {
        return refuse(StatusCode::BAD_REQUEST, "unauthorized_client");
    }
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (p.name) " (development sign-in)" } }
            body {
                h1 { (p.name) }
                p { "A development sign-in provider of " code { "pek local" } ": nobody's password is asked." }
                form method="post" action="/authorize" {
                    input type="hidden" name="redirect_uri" value=(q.redirect_uri);
                    input type="hidden" name="state" value=(q.state);
                    input type="hidden" name="code_challenge" value=(q.code_challenge.clone().unwrap_or_default());
                    @for person in &p.people {
                        p { button type="submit" name="login" value=(person.subject) {
                            "Sign in as " (person.first_name) " " (person.last_name)
                            " (" (person.subject) ")"
                        } }
                    }
                    p {
                        label { "or any subject: " input name="other" autocomplete="off"; }
                        " " button type="submit" name="login" value="" { "Sign in" }
                    }
                }
            }
        }
    };
    Html(page.into_string()).into_response()
}

#[derive(Deserialize)]
struct AuthorizeForm {
    redirect_uri: String,
    state: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    other: String,
}

async fn authorize(State(p): State<Shared>, Form(f): Form<AuthorizeForm>) -> Response {
    let subject = if f.login.trim().is_empty() {
        f.other.trim().to_string()
    } else {
        f.login.trim().to_string()
    };
    if subject.is_empty() || subject.len() > 100 || subject.chars().any(char::is_control) {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let Ok(mut back) = url::Url::parse(&f.redirect_uri) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let code = random();
    if let Ok(mut codes) = p.codes.lock() {
        codes.retain(|_, g| g.until > Instant::now());
        codes.insert(
            code.clone(),
            Grant {
                subject,
                redirect_uri: f.redirect_uri.clone(),
                challenge: (!f.code_challenge.is_empty()).then(|| f.code_challenge.clone()),
                until: Instant::now() + Duration::from_secs(60),
            },
        );
    }
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &f.state);
    Redirect::to(back.as_str()).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    code: String,
    redirect_uri: String,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The client's credentials from HTTP Basic (form-urlencoded parts, as RFC 6749 says) or
/// the form.
fn client_ok(p: &Provider, headers: &HeaderMap, f: &TokenForm) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let dec = |x: &str| {
                url::form_urlencoded::parse(format!("x={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((dec(id)?, dec(secret)?))
        });
    let (id, secret) = match (basic, &f.client_id, &f.client_secret) {
        (Some(pair), _, _) => pair,
        (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
        _ => return false,
    };
    use subtle::ConstantTimeEq;
    id == p.client_id && bool::from(secret.as_bytes().ct_eq(p.client_secret.as_bytes()))
}

async fn token(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<TokenForm>) -> Response {
    if !client_ok(&p, &headers, &f) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let grant = p.codes.lock().ok().and_then(|mut c| c.remove(&f.code));
    let Some(grant) = grant.filter(|g| g.until > Instant::now()) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if grant.redirect_uri != f.redirect_uri {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    if let Some(challenge) = &grant.challenge {
        let verifier = f.code_verifier.unwrap_or_default();
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        if URL_SAFE_NO_PAD.encode(digest.as_ref()) != *challenge {
            return refuse(StatusCode::BAD_REQUEST, "invalid_grant");
        }
    }
    let access = random();
    if let Ok(mut tokens) = p.tokens.lock() {
        tokens.retain(|_, (_, until)| *until > Instant::now());
        tokens.insert(
            access.clone(),
            (grant.subject, Instant::now() + Duration::from_secs(300)),
        );
    }
    Json(serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 300,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct UserinfoQuery {
    access_token: Option<String>,
}

async fn userinfo(
    State(p): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<UserinfoQuery>,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or(q.access_token);
    let subject = presented.and_then(|t| {
        p.tokens
            .lock()
            .ok()?
            .get(&t)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(s, _)| s.clone())
    });
    let Some(subject) = subject else {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    let known = p.people.iter().find(|x| x.subject == subject);
    let first = known
        .map(|x| x.first_name.clone())
        .unwrap_or(subject.clone());
    let last = known.map(|x| x.last_name.clone()).unwrap_or_default();
    let email = known
        .map(|x| x.email.clone())
        .unwrap_or_else(|| format!("{subject}@example.org"));
    let name = format!("{first} {last}").trim().to_string();
    Json(match p.dialect {
        Dialect::AuthSch => serde_json::json!({
            "internal_id": subject, "displayName": name, "givenName": first, "sn": last,
            "mail": email,
        }),
        Dialect::Oidc => serde_json::json!({
            "sub": subject, "name": name, "given_name": first, "family_name": last,
            "email": email, "email_verified": false,
        }),
    })
    .into_response()
}
