//! Typed extractors. Every rejection becomes our one error shape with a clear message.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use uuid::Uuid;

use super::AppState;
use crate::error::Error;
use crate::realm::RealmId;

/// JSON body: malformed → 400, wrong shape / unknown field → 422, too large → 413.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Error::Unprocessable(format!(
                "invalid request body: {}",
                e.body_text().trim_start_matches(
                    "Failed to deserialize the JSON body into the target type: "
                )
            )),
            JsonRejection::JsonSyntaxError(_) => {
                Error::BadRequest("request body is not valid JSON".into())
            }
            JsonRejection::MissingJsonContentType(_) => {
                Error::BadRequest("expected Content-Type: application/json".into())
            }
            JsonRejection::BytesRejection(e)
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Error::PayloadTooLarge("request body too large".into())
            }
            other => Error::BadRequest(other.body_text()),
        }
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

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
