//! What every JSON route demands before any handler (or the hub's forwarding) runs:
//!
//! - **No cross-site writes with the session cookie.** Browsers send the `pek_session`
//!   cookie (SameSite=Lax) with a form another site posts — including every other host
//!   of the same site, such as any `*.sch.bme.hu` — so a state-changing `/api/…` call
//!   that the cookie authenticates (no `Authorization` header) must carry the CSRF
//!   token the web pages use (`x-csrf-token`, bound to the `pek_csrf` cookie and the
//!   session; `GET /auth/csrf` gives it to scripts) and come from this origin:
//!   `Sec-Fetch-Site: same-origin`, or without that header an `Origin` naming the
//!   request's own host or `PEK_PUBLIC_URL`'s origin. A bearer token is never sent by a
//!   browser on its own, so bearer calls are not affected.
//! - **JSON bodies only.** A non-empty body that is not `application/json` is a 415,
//!   also on routes that take no body (an HTML form can send one anywhere).
//! - **`Cache-Control: no-store`** on every `/api/…` answer: they are one person's data,
//!   and must not be kept by the browser (the Back button after sign-out) or a proxy.

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{cookie, AppState, SESSION_COOKIE};
use crate::csrf::{csrf_ok, CSRF_COOKIE, CSRF_HEADER};
use crate::error::Error;

/// The origin (`scheme://host[:port]`, default port left out) of a base URL such as
/// `PEK_PUBLIC_URL`; None for a URL without one.
pub fn origin_of(url: &str) -> anyhow::Result<Option<String>> {
    let u = url::Url::parse(url).map_err(|e| anyhow::anyhow!("PEK_PUBLIC_URL {url:?}: {e}"))?;
    let origin = u.origin();
    Ok(origin
        .is_tuple()
        .then(|| origin.ascii_serialization().to_ascii_lowercase()))
}

fn is_json_route(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/internal/") || path.starts_with("/auth/")
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn api_guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !is_json_route(path) {
        return next.run(req).await;
    }
    let api = path.starts_with("/api/");
    if !is_safe(req.method()) {
        if api {
            if let Err(e) = same_origin_session(&s, &req) {
                return no_store(e.into_response());
            }
        }
        // `buffer_body` has read the body already, so its size is exact.
        let has_body = req.body().size_hint().exact() != Some(0);
        if has_body && !super::extract::is_json_content_type(req.headers()) {
            let given = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            let e = Error::UnsupportedMediaType(format!(
                "unsupported Content-Type {given:?}: this route takes a JSON body \
                 (Content-Type: application/json) or none"
            ));
            return no_store(e.into_response());
        }
    }
    let resp = next.run(req).await;
    if api {
        no_store(resp)
    } else {
        resp
    }
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A state-changing API call authenticated by the session cookie must prove it comes
/// from this site's own pages or scripts (see the module docs).
fn same_origin_session(s: &AppState, req: &Request) -> Result<(), Error> {
    let headers = req.headers();
    if headers.contains_key(header::AUTHORIZATION) {
        return Ok(());
    }
    let Some(session) = cookie(headers, SESSION_COOKIE) else {
        // No credentials at all: the handler answers 401.
        return Ok(());
    };
    let token_ok = match (
        cookie(headers, CSRF_COOKIE),
        headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
    ) {
        (Some(secret), Some(presented)) => csrf_ok(&secret, Some(&session), presented),
        _ => false,
    };
    if !token_ok {
        return Err(Error::Forbidden(
            "cross-site request refused: an API call authenticated by the session cookie \
             must send the `x-csrf-token` header (GET /auth/csrf gives it), or use \
             `Authorization: Bearer`"
                .into(),
        ));
    }
    if !from_this_origin(s, req) {
        return Err(Error::Forbidden(
            "cross-site request refused: an API call authenticated by the session cookie \
             must come from this site (Sec-Fetch-Site: same-origin, or an Origin naming \
             this host)"
                .into(),
        ));
    }
    Ok(())
}

fn from_this_origin(s: &AppState, req: &Request) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes().eq_ignore_ascii_case(b"same-origin");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if s.public_origin
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    {
        return true;
    }
    let Ok(origin) = url::Url::parse(origin) else {
        return false;
    };
    match request_host(headers, req.uri()) {
        Some(host) => url::Url::parse(&format!("{}://{host}", origin.scheme())).is_ok_and(|own| {
            own.host_str() == origin.host_str()
                && own.port_or_known_default() == origin.port_or_known_default()
        }),
        None => false,
    }
}

/// The host the request was sent to: `Host`, or the URI's authority (HTTP/2).
fn request_host(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| uri.authority().map(|a| a.as_str().to_string()))
        .filter(|h| !h.is_empty() && !h.contains(['/', '@', '?', '#']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_origins() {
        assert_eq!(
            origin_of("https://Pek.Example.org/")
                .ok()
                .flatten()
                .as_deref(),
            Some("https://pek.example.org")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/x")
                .ok()
                .flatten()
                .as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert!(origin_of("not a url").is_err());
    }
}
