//! Typed extractors. Every rejection becomes our one error shape with a clear message.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use uuid::Uuid;

use super::AppState;
use crate::error::Error;
use crate::realm::RealmId;

/// JSON body: malformed → 400, wrong shape / unknown field → 422, too large → 413. An
/// object schema takes a JSON object only, at the top and nested (see `strict_json.rs`).
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Error> {
        if !is_json_content_type(req.headers()) {
            return Err(Error::BadRequest(
                "expected Content-Type: application/json".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge("request body too large".into())
                } else {
                    Error::BadRequest(e.body_text())
                }
            })?;
        let value = super::strict_json::from_slice(&bytes)?;
        Ok(Json(value))
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Whether a `Content-Type` says JSON: `application/json` or `application/…+json`, any
/// parameters (`; charset=utf-8`), any case.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// Query string: a malformed or invalid parameter → 400. Percent-escapes must decode to
/// UTF-8 (`?q=%FF` is a 400, never text with replacement characters).
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        if let Some(query) = parts.uri.query() {
            if !query_is_utf8(query) {
                return Err(Error::BadRequest(
                    "invalid query: percent-encoded text is not valid UTF-8".into(),
                ));
            }
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// Whether every name and value of a query decodes (percent-escapes and all) to UTF-8.
fn query_is_utf8(query: &str) -> bool {
    query.split('&').flat_map(|p| p.split('=')).all(|part| {
        let raw = part.as_bytes();
        let mut bytes = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let hex = |b: Option<u8>| b.and_then(|b| (b as char).to_digit(16));
            match (
                raw[i],
                hex(raw.get(i + 1).copied()),
                hex(raw.get(i + 2).copied()),
            ) {
                (b'%', Some(h), Some(l)) => {
                    bytes.push((h * 16 + l) as u8);
                    i += 3;
                }
                (b, ..) => {
                    bytes.push(b);
                    i += 1;
                }
            }
        }
        std::str::from_utf8(&bytes).is_ok()
    })
}

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Self {
        Error::BadRequest(format!("invalid query: {}", r.body_text()))
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

impl From<PathRejection> for Error {
    fn from(r: PathRejection) -> Self {
        Error::BadRequest(format!("invalid path: {}", r.body_text()))
    }
}

/// Name of the cookie that carries the hub JWT for browsers (set by the hub's login).
pub const SESSION_COOKIE: &str = "pek_session";

/// The credentials of an `Authorization` value with the `Bearer` scheme. The scheme name
/// is case-insensitive (RFC 9110 §11.1), so `bearer x` and `BEARER x` count too.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

/// The `Bearer` credentials of a request's `Authorization` header.
pub fn bearer_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer)
}

/// The token a request presents: `Authorization: Bearer …` first, then the session
/// cookie.
pub fn presented_token(headers: &HeaderMap) -> Option<String> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return bearer_header(headers).map(String::from);
    }
    cookie(headers, SESSION_COOKIE)
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// The authenticated caller (from `Authorization: Bearer <hub JWT>` or the session
/// cookie). Verification may fetch the hub's JWKS (an unknown key id, bounded).
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Uuid);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = match presented_token(&parts.headers) {
            Some(t) => t,
            None if parts
                .headers
                .contains_key(axum::http::header::AUTHORIZATION) =>
            {
                return Err(Error::Unauthorized(
                    "expected `Authorization: Bearer <token>`".into(),
                ))
            }
            None => return Err(Error::Unauthorized("missing bearer token".into())),
        };
        let claims = state.verifier.verify(&token).await?;
        if let (Some(sid), Some(sessions)) = (claims.sid, &state.sessions) {
            sessions.check(sid, claims.sub).await?;
        }
        Ok(Caller(claims.sub))
    }
}

/// A realm from the path that this instance serves (404 otherwise).
pub struct LocalRealm(pub RealmId);

impl<S: Send + Sync> FromRequestParts<S> for LocalRealm
where
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        use axum::extract::FromRef;
        let state = AppState::from_ref(state);
        let Path(p): Path<std::collections::HashMap<String, String>> =
            Path::from_request_parts(parts, &state).await?;
        let raw = p
            .get("realm")
            .cloned()
            .ok_or_else(|| Error::BadRequest("missing realm in path".into()))?;
        let id = RealmId::parse(&raw)?;
        if state.serves(&id).await {
            Ok(LocalRealm(id))
        } else {
            Err(Error::NotFound(format!(
                "realm {id} is not served by this instance"
            )))
        }
    }
}
