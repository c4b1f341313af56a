//! The pages' static files (style sheet, scripts, icon) under content-hashed addresses:
//! a build that changes a file changes its address, so a browser may keep each one for a
//! year without asking again (`Cache-Control: immutable`) and never runs a stale script
//! against a new page.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

pub(super) struct StaticFile {
    /// `/assets/{stem}-{hash}.{ext}`.
    pub href: String,
    body: &'static [u8],
    /// The same bytes gzip-compressed ahead of time (the compression layer skips an
    /// answer that already has a `Content-Encoding`).
    gzip: Option<&'static [u8]>,
    content_type: &'static str,
}

/// The first 10 hex digits of the file's SHA-256: enough to tell builds apart.
fn hashed(stem: &str, ext: &str, body: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, body);
    let hex: String = d.as_ref()[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("/assets/{stem}-{hex}.{ext}")
}

fn file(
    stem: &str,
    ext: &str,
    body: &'static [u8],
    gzip: Option<&'static [u8]>,
    content_type: &'static str,
) -> StaticFile {
    StaticFile {
        href: hashed(stem, ext, body),
        body,
        gzip,
        content_type,
    }
}

pub(super) static HTMX: LazyLock<StaticFile> = LazyLock::new(|| {
    file(
        "htmx",
        "min.js",
        include_bytes!("assets/htmx.min.js"),
        Some(include_bytes!("assets/htmx.min.js.gz")),
        "text/javascript; charset=utf-8",
    )
});

pub(super) static APP_JS: LazyLock<StaticFile> = LazyLock::new(|| {
    file(
        "app",
        "js",
        include_bytes!("assets/app.js"),
        None,
        "text/javascript; charset=utf-8",
    )
});

pub(super) static APP_CSS: LazyLock<StaticFile> = LazyLock::new(|| {
    file(
        "app",
        "css",
        include_bytes!("assets/app.css"),
        None,
        "text/css; charset=utf-8",
    )
});

pub(super) static FAVICON: LazyLock<StaticFile> = LazyLock::new(|| {
    file(
        "favicon",
        "svg",
        include_bytes!("assets/favicon.svg"),
        None,
        "image/svg+xml",
    )
});

/// The answer for `/assets/{name}`, or None for an unknown name (an old build's hash
/// included: its content is not here any more).
pub(super) fn serve(name: &str, headers: &HeaderMap) -> Option<Response> {
    let path = format!("/assets/{name}");
    let f = [&*HTMX, &*APP_JS, &*APP_CSS, &*FAVICON]
        .into_iter()
        .find(|f| f.href == path)?;
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut resp = match f.gzip {
        Some(gz) if gzip_ok => {
            let mut r = gz.into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        _ => f.body.into_response(),
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(f.content_type),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Some(resp)
}

/// The favicon at `/favicon.ico`, where browsers look without asking: not hashed, so
/// kept for a day only.
pub(super) fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_content() {
        assert_ne!(hashed("app", "css", b"a"), hashed("app", "css", b"b"));
        assert!(APP_CSS.href.starts_with("/assets/app-") && APP_CSS.href.ends_with(".css"));
        let name = APP_CSS.href.trim_start_matches("/assets/");
        let r = serve(name, &HeaderMap::new()).expect("the style sheet");
        assert_eq!(
            r.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(serve("app.css", &HeaderMap::new()).is_none());
    }
}
