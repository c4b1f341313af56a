//! The group directory page (`/groups`): the listed groups of every realm, searched as
//! you type, each with an "apply" button — where a freshman finds a group to join.
//! What is listed and who may apply is the API's (`/api/v1/directory`, the realms'
//! rule in `policy.rs`); the page only shows it, with the person's own membership
//! where they have one.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::signed_in::SignedIn;
use super::{html, views};

/// Groups per page.
const PAGE: u32 = 30;

#[derive(Deserialize)]
pub(super) struct DirectoryQuery {
    q: Option<String>,
    cursor: Option<String>,
}

pub(super) async fn directory_page(
    SignedIn { ctx, api }: SignedIn,
    headers: HeaderMap,
    Query(dq): Query<DirectoryQuery>,
) -> Response {
    let q = dq.q.unwrap_or_default().trim().to_string();
    let (me, groups, mine) = tokio::join!(
        api.me(),
        api.directory(&q, PAGE, dq.cursor.as_deref()),
        api.my_groups(),
    );
    let (me, groups) = match (me, groups) {
        (Ok(m), Ok(g)) => (m, g),
        (Err(e), _) | (_, Err(e)) => return ctx.fail(&api, e).await,
    };
    // The person's own membership per (realm, group), to show instead of "apply".
    let mine: HashMap<(String, String), String> = mine
        .map(|page| page.items)
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let m = m.membership;
            ((m.realm_id, m.group_id.to_string()), m.status)
        })
        .collect();
    let names = api.realm_names().await;
    let view = views::directory::Directory {
        q: &q,
        page: &groups,
        mine: &mine,
        csrf: &ctx.csrf,
        notice: views::coverage_notice(ctx.lang, &groups.coverage, &names),
    };
    if ctx.htmx && !headers.contains_key("hx-boosted") {
        // Search as you type: the results only.
        return html(StatusCode::OK, views::directory::results(ctx.lang, &view));
    }
    ctx.page(
        StatusCode::OK,
        ctx.lang.dir().title,
        Some(&me),
        views::directory::page(ctx.lang, &view),
    )
}
