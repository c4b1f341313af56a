//! CSRF protection for whatever the session cookie authenticates: the web pages' forms
//! and htmx requests, and browser scripts calling the API with the cookie (see
//! `http::guard`, and `GET /auth/csrf`, which hands the token to scripts). Its own
//! module because both the API (`http`) and the pages (`web`) check these tokens, and
//! the API must not depend on the pages.

use serde_json::Value;

/// The browser's CSRF secret cookie.
pub const CSRF_COOKIE: &str = "pek_csrf";
/// The header an htmx request or a script presents the token in (a form: its `csrf`
/// field).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The token a form or htmx request must present: bound to the browser's CSRF cookie
/// and to its session, so it is useless to anyone who cannot read both.
pub fn csrf_token(secret: &str, session: Option<&str>) -> String {
    let mut data = Vec::with_capacity(secret.len() + 64);
    data.extend_from_slice(b"pek-csrf\0");
    data.extend_from_slice(secret.as_bytes());
    data.push(0);
    data.extend_from_slice(session.map(session_key).unwrap_or_default().as_bytes());
    let d = ring::digest::digest(&ring::digest::SHA256, &data);
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a CSRF token is bound to of a session cookie: the session's id (`sid`) when the
/// cookie is a session token, so the tokens of a page stay good when its session token is
/// renewed; else the cookie itself. Read without verifying: it only has to be the same
/// for the page and its forms, and whoever cannot read the cookie cannot learn it.
fn session_key(cookie: &str) -> String {
    use base64::Engine;
    let sid = cookie
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("sid").and_then(|s| s.as_str()).map(String::from));
    match sid {
        Some(sid) => format!("sid:{sid}"),
        None => cookie.to_string(),
    }
}

pub fn csrf_ok(secret: &str, session: Option<&str>, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let want = csrf_token(secret, session);
    want.len() == presented.len() && bool::from(want.as_bytes().ct_eq(presented.as_bytes()))
}

/// A fresh CSRF secret for the browser's `pek_csrf` cookie.
pub fn new_csrf_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_bound_to_the_cookie_and_the_session() {
        let t = csrf_token("secret", Some("session"));
        assert!(csrf_ok("secret", Some("session"), &t));
        assert!(!csrf_ok("other", Some("session"), &t));
        assert!(!csrf_ok("secret", Some("another session"), &t));
        assert!(!csrf_ok("secret", None, &t));
        assert!(!csrf_ok("secret", Some("session"), ""));
    }
}
