//! The person's own ways to sign in, on their page: their identities, a button to link
//! each other provider (a form post from this signed-in session: the link finishes only
//! in it), unlink buttons (not for the last one), and the record of every link and
//! unlink. Everything goes through the JSON API (`/api/v1/me/identities`) except
//! starting a link, which sends the browser to the provider.

use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde_json::Value;

use super::api::{enc, ApiError};
use super::i18n::Lang;
use super::signed_in::SignedIn;

/// The section of the person's own page.
pub(super) fn section(lang: Lang, v: &Value, csrf: &str) -> Markup {
    let t = lang.t();
    let identities: Vec<&Value> = v["identities"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let providers: Vec<&Value> = v["providers"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let name_of = |id: &str| -> String {
        providers
            .iter()
            .find(|p| p["id"].as_str() == Some(id))
            .and_then(|p| p["displayName"].as_str())
            .unwrap_or(id)
            .to_string()
    };
    let linked: Vec<&str> = identities
        .iter()
        .filter_map(|i| i["provider"].as_str())
        .collect();
    let last = identities.len() <= 1;
    html! {
        section #identities aria-labelledby="identities-title" {
            h2 #identities-title { (t.identities_title) }
            p.muted { (t.identities_intro) }
            ul.identities {
                @for i in &identities {
                    li {
                        strong { (name_of(i["provider"].as_str().unwrap_or(""))) }
                        " " span.muted { (i["subject"].as_str().unwrap_or("")) }
                        @if !last {
                            form.inline method="post"
                                action={ "/me/identities/" (enc(i["key"].as_str().unwrap_or(""))) "/unlink" } {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { (t.identity_unlink) }
                            }
                        }
                    }
                }
            }
            @for p in providers.iter().filter(|p| !linked.contains(&p["id"].as_str().unwrap_or(""))) {
                form.inline method="post" action="/me/identities/link" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="provider" value=(p["id"].as_str().unwrap_or(""));
                    button type="submit" {
                        (t.identity_link_with) " " (p["displayName"].as_str().unwrap_or(""))
                    }
                }
            }
            @if let Some(events) = v["events"].as_array().filter(|e| !e.is_empty()) {
                h3 { (t.identity_events) }
                ul.identity-events {
                    @for e in events {
                        li {
                            time { (e["at"].as_str().unwrap_or("").chars().take(16).collect::<String>().replace('T', " ")) }
                            " " (name_of(e["provider"].as_str().unwrap_or("")))
                            " " span.muted { (e["subject"].as_str().unwrap_or("")) }
                            " "
                            (match e["action"].as_str() {
                                Some("unlink") => t.identity_unlinked,
                                Some("merge") => t.identity_merged,
                                _ => t.identity_linked,
                            })
                        }
                    }
                }
            }
        }
    }
}

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
