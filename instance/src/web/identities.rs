//! The person's own ways to sign in, on their page: their identities, a button to link
//! each other provider (a form post from this signed-in session: the link finishes only
//! in it), unlink buttons (not for the last one), the record of every link, unlink and
//! merge, and the people a hub administrator merged into this person. Everything goes
//! through the JSON API (`/api/v1/me/identities`) except starting a link, which sends the
//! browser to the provider.

use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::api::{enc, ApiError};
use super::signed_in::SignedIn;

/// "Link": to the provider, bound to this session and person.
pub(super) async fn link(SignedIn { ctx, api }: SignedIn, body: axum::body::Bytes) -> Response {
    let provider = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "provider")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let me = match api.me().await {
        Ok(m) => m,
        Err(e) => return ctx.fail(&api, e).await,
    };
    let id = me.id;
    let Some(token) = ctx.session.as_deref() else {
        return ctx.error(StatusCode::BAD_REQUEST, "");
    };
    let back = format!("/people/{id}");
    match crate::http::link_redirect(&ctx.state, id, token, &provider, Some(&back)).await {
        Ok(r) => r,
        Err(e) => ctx.error(e.status(), &e.to_string()),
    }
}

/// "Unlink" (the API refuses the last identity).
pub(super) async fn unlink(SignedIn { ctx, api }: SignedIn, Path(key): Path<String>) -> Response {
    let me = match api.me().await {
        Ok(m) => m,
        Err(e) => return ctx.fail(&api, e).await,
    };
    let path = format!("/api/v1/me/identities/{}", enc(&key));
    match api.raw(Method::DELETE, &path, None).await {
        Ok((s, _)) if s.is_success() => {
            Redirect::to(&format!("/people/{}#identities", me.id)).into_response()
        }
        Ok((StatusCode::UNAUTHORIZED, _)) => ctx.fail(&api, ApiError::SignedOut).await,
        Ok((s, body)) => {
            let m = api.refusal(&body);
            ctx.fail(&api, ApiError::Status(s, m)).await
        }
        Err(e) => ctx.fail(&api, e).await,
    }
}
