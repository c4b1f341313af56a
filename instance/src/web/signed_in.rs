//! [`SignedIn`]: "a signed-in person's page request" as one extractor — the page's
//! context (language, CSRF token, the way back) and the JSON API as that person — so a
//! page handler starts with its data, not with a preamble:
//!
//! ```ignore
//! async fn page(SignedIn { ctx, api }: SignedIn) -> Response {
//!     match api.get::<Thing>("/api/v1/…").await {
//!         Ok(v) => ctx.page(StatusCode::OK, "…", None, views::thing(ctx.lang, &v)),
//!         Err(e) => ctx.fail(&api, e).await,
//!     }
//! }
//! ```
//!
//! Without a session its rejection is the sign-in page, which brings the person back to
//! the page they were on (for an htmx action: a notice on that page, which keeps what
//! they typed).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use axum::response::Response;

use super::api::{Api, ApiHandle};
use super::{here, referer_path, CsrfSecret, Ctx};
use crate::http::AppState;

pub(super) struct SignedIn {
    pub ctx: Ctx,
    pub api: Api,
}

/// A page request's context without requiring a session: the pages one reaches signed
/// out (the sign-in page, signing in and out).
pub(super) struct Visitor {
    pub ctx: Ctx,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let handle = parts
            .extensions
            .get::<ApiHandle>()
            .cloned()
            .unwrap_or_default();
        let secret = parts
            .extensions
            .get::<CsrfSecret>()
            .cloned()
            .unwrap_or_else(|| CsrfSecret(String::new()));
        let mut ctx = Ctx::new(
            state.clone(),
            handle,
            &parts.headers,
            &secret,
            here(&parts.uri),
        );
        // A plain form's way back is the page it was on.
        if parts.method != Method::GET && !ctx.htmx {
            if let Some(p) = referer_path(&parts.headers) {
                ctx.back = p;
            }
        }
        Ok(Visitor { ctx })
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Visitor { ctx } = Visitor::from_request_parts(parts, state).await?;
        let api = ctx.api().map_err(|r| *r)?;
        Ok(SignedIn { ctx, api })
    }
}
