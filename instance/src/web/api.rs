//! The pages' one way to data: the hub's own JSON API, called in-process through the
//! same router (and so the same BFF fan-out, forwarding and permission checks) that
//! serves API clients, with the signed-in person's token. A page can therefore never
//! show more than the API would answer that person.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::Router;
use serde::de::DeserializeOwned;
use tower::ServiceExt;
use uuid::Uuid;

use super::i18n::{self, Lang};
use crate::bff::Federated;
use crate::evaluation::request::CellComment;
use crate::evaluation::scoreboard::{Scoreboard, ScoreboardDetail};
use crate::evaluation::Settings;
use crate::group::DirectoryPage;
use crate::group::Group;
use crate::http::auth_api::DevPeople;
use crate::http::bff_api::{MyPoints, PersonPoints, UserList, UserPage};
use crate::http::groups_of_api::{RealmGroupMembership, RealmJudgingQueue, RealmPolicyOffer};
use crate::http::hub_api::FederationRealms;
use crate::http::identities_api::MyIdentities;
use crate::http::realm_api::Allowed;
use crate::membership::Membership;
use crate::page::Page;
use crate::post::Posts;
use crate::profile::UserView;
use crate::realm::RealmId;
use crate::semester::Semester;

/// The router the pages call (set once the whole router is built, since it contains
/// the pages themselves).
#[derive(Clone, Default)]
pub struct ApiHandle(Arc<OnceLock<Router>>);

impl ApiHandle {
    pub fn set(&self, router: Router) {
        let _ = self.0.set(router);
    }
}

/// What went wrong calling the API, as the page should show it.
#[derive(Debug)]
pub enum ApiError {
    /// 401: the session is missing or expired.
    SignedOut,
    /// Any other error status, with what to say of it in the page's language beyond the
    /// status (see [`Api::refusal`]; often nothing).
    Status(StatusCode, String),
}

/// A caller of the API on behalf of one signed-in person.
#[derive(Clone)]
pub struct Api {
    router: Router,
    /// The session token; None for the few routes one calls signed out.
    token: Option<String>,
    request_id: Option<HeaderValue>,
    /// The page's language, which the API's refusals are said in.
    lang: Lang,
}

impl Api {
    pub fn new(
        handle: &ApiHandle,
        token: String,
        request_id: Option<HeaderValue>,
        lang: Lang,
    ) -> Option<Api> {
        Some(Api {
            router: handle.0.get()?.clone(),
            token: Some(token),
            request_id,
            lang,
        })
    }

    /// A caller without a session, for the routes one calls signed out (the
    /// development sign-in's people).
    pub fn anonymous(
        handle: &ApiHandle,
        request_id: Option<HeaderValue>,
        lang: Lang,
    ) -> Option<Api> {
        Some(Api {
            router: handle.0.get()?.clone(),
            token: None,
            request_id,
            lang,
        })
    }

    /// What a page says of the API's error answer `body` beyond its status, in the
    /// page's language: the sentence for the refusal's `reason` when the API gives one;
    /// otherwise the API's own message on an English page (the API speaks English) and
    /// nothing on a Hungarian one, which says what failed by the status alone.
    pub fn refusal(&self, body: &[u8]) -> String {
        let reason = serde_json::from_slice::<ErrorAnswer>(body)
            .ok()
            .and_then(|a| a.error.reason);
        if let Some(text) = reason.and_then(|r| i18n::reason_text(self.lang, &r)) {
            return text.to_string();
        }
        match self.lang {
            Lang::En => api_message(body),
            Lang::Hu => String::new(),
        }
    }

    /// Calls the API; the status and the raw body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, bytes::Bytes), ApiError> {
        let mut b = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(id) = &self.request_id {
            b = b.header("x-request-id", id.clone());
        }
        let body = match body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&v).unwrap_or_default())
            }
            None => Body::empty(),
        };
        let req = b
            .body(body)
            .map_err(|e| ApiError::Status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
            .await
            .map_err(|e| ApiError::Status(StatusCode::BAD_GATEWAY, e.to_string()))?;
        Ok((status, bytes))
    }

    /// Calls the API and reads a successful JSON answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ApiError> {
        let (status, bytes) = self.raw(method, path, body).await?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(ApiError::SignedOut);
        }
        if !status.is_success() {
            return Err(ApiError::Status(status, self.refusal(&bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            tracing::warn!(path, error = %e, "unexpected API answer for a page");
            ApiError::Status(StatusCode::BAD_GATEWAY, "unexpected answer".into())
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(Method::GET, path, None).await
    }

    // --- the API's answers, typed: one method per route the pages read ---------------

    /// `GET /api/v1/me`: the signed-in person.
    pub async fn me(&self) -> Result<UserView, ApiError> {
        self.get("/api/v1/me").await
    }

    /// `GET /api/v1/users/{id}`: a person as I may see them.
    pub async fn user(&self, id: Uuid) -> Result<UserView, ApiError> {
        self.get(&format!("/api/v1/users/{id}")).await
    }

    /// `GET /api/v1/users?q=…`: people who share a realm with me, found by name.
    pub async fn search_users(
        &self,
        q: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<UserPage, ApiError> {
        self.get(&format!(
            "/api/v1/users?q={}&limit={limit}{}",
            enc(q),
            cursor
                .map(|c| format!("&cursor={}", enc(c)))
                .unwrap_or_default()
        ))
        .await
    }

    /// `GET /api/v1/directory`: a page of the listed groups of every realm.
    pub async fn directory(
        &self,
        q: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<DirectoryPage, ApiError> {
        let q = match q.is_empty() {
            true => String::new(),
            false => format!("&q={}", enc(q)),
        };
        self.get(&format!(
            "/api/v1/directory?limit={limit}{q}{}",
            cursor
                .map(|c| format!("&cursor={}", enc(c)))
                .unwrap_or_default()
        ))
        .await
    }

    /// `GET /auth/dev-login/people`: whom the development sign-in offers.
    pub async fn dev_people(&self) -> Result<DevPeople, ApiError> {
        self.get("/auth/dev-login/people").await
    }

    /// `GET /api/v1/federation/realms`: every realm of the federation, with its name.
    pub async fn federation_realms(&self) -> Result<FederationRealms, ApiError> {
        self.get("/api/v1/federation/realms").await
    }

    /// Realms' display names by id, for headings and notices (from the federation's realm
    /// list): a realm the list does not name, or every realm when it cannot be read, by
    /// its id.
    pub async fn realm_names(&self) -> impl Fn(&str) -> String {
        let names: HashMap<String, String> = match self.federation_realms().await {
            Ok(list) => list
                .items
                .into_iter()
                .map(|r| (r.id.to_string(), r.display_name))
                .collect(),
            Err(e) => {
                tracing::warn!(error = ?e, "reading the realms' names");
                HashMap::new()
            }
        };
        move |r: &str| names.get(r).cloned().unwrap_or_else(|| r.to_string())
    }

    /// `GET /api/v1/me/judging`: my judging queue in every realm.
    pub async fn my_judging(&self) -> Result<Federated<RealmJudgingQueue>, ApiError> {
        self.get("/api/v1/me/judging").await
    }

    /// `GET /api/v1/me/groups`: my memberships in every realm.
    pub async fn my_groups(&self) -> Result<Federated<RealmGroupMembership>, ApiError> {
        self.get("/api/v1/me/groups").await
    }

    /// `GET /api/v1/me/policy-offers`: roles offered to me in any realm.
    pub async fn my_policy_offers(&self) -> Result<Federated<RealmPolicyOffer>, ApiError> {
        self.get("/api/v1/me/policy-offers").await
    }

    /// `GET /api/v1/users/{id}/groups`: a person's groups, as far as I may see them.
    pub async fn user_groups(&self, id: Uuid) -> Result<Federated<RealmGroupMembership>, ApiError> {
        self.get(&format!("/api/v1/users/{id}/groups")).await
    }

    /// `GET /api/v1/me/identities`: my ways to sign in, their record, the providers.
    pub async fn my_identities(&self) -> Result<MyIdentities, ApiError> {
        self.get("/api/v1/me/identities").await
    }

    /// `GET /api/v1/me/points`: my semester points across the federation.
    pub async fn my_points(&self) -> Result<MyPoints, ApiError> {
        self.get("/api/v1/me/points").await
    }

    /// `GET /api/v1/users/{id}/points`: a person's points as far as I may see them.
    pub async fn user_points(&self, id: Uuid) -> Result<PersonPoints, ApiError> {
        self.get(&format!("/api/v1/users/{id}/points")).await
    }

    /// `POST /api/v1/users/lookup`: people by id, as I may see them (at most 200).
    pub async fn lookup_users(&self, ids: &[Uuid]) -> Result<UserList, ApiError> {
        self.call(
            Method::POST,
            "/api/v1/users/lookup",
            Some(serde_json::json!({ "ids": ids })),
        )
        .await
    }

    /// `GET …/permissions`: whether the API lets me do `action` on the group (or on the
    /// realm, without one). A failed question is a no.
    pub async fn allowed(&self, realm: &str, action: &str, group: Option<Uuid>) -> bool {
        let target = group.map(|g| format!("&groupId={g}")).unwrap_or_default();
        self.get::<Allowed>(&format!(
            "/api/v1/realms/{}/permissions?action={}{target}",
            enc(realm),
            enc(action)
        ))
        .await
        .is_ok_and(|a| a.allowed)
    }

    /// `GET /api/v1/realms/{realm}/groups/{id}`.
    pub async fn group(&self, realm: &RealmId, id: Uuid) -> Result<Group, ApiError> {
        self.get(&format!("/api/v1/realms/{realm}/groups/{id}"))
            .await
    }

    /// `GET /api/v1/realms/{realm}/groups?parentId={id}`: a page of a group's sub-groups.
    pub async fn sub_groups(
        &self,
        realm: &RealmId,
        id: Uuid,
        limit: u32,
    ) -> Result<Page<Group>, ApiError> {
        self.get(&format!(
            "/api/v1/realms/{realm}/groups?parentId={id}&limit={limit}"
        ))
        .await
    }

    /// `GET /api/v1/realms/{realm}/groups/{id}/posts`: the group's post names.
    pub async fn posts(&self, realm: &RealmId, id: Uuid) -> Result<Posts, ApiError> {
        self.get(&format!("/api/v1/realms/{realm}/groups/{id}/posts"))
            .await
    }

    /// `GET /api/v1/realms/{realm}/me/memberships`: my memberships in the realm,
    /// applications and invitations included.
    pub async fn my_memberships(&self, realm: &RealmId) -> Result<Vec<Membership>, ApiError> {
        self.get(&format!("/api/v1/realms/{realm}/me/memberships"))
            .await
    }

    /// `GET /api/v1/realms/{realm}/groups/{id}/members`: a page of the group's members.
    pub async fn group_members(
        &self,
        realm: &RealmId,
        id: Uuid,
        limit: u32,
    ) -> Result<Page<Membership>, ApiError> {
        self.get(&format!(
            "/api/v1/realms/{realm}/groups/{id}/members?limit={limit}"
        ))
        .await
    }

    /// `GET /api/v1/realms/{realm}/evaluation-settings`.
    pub async fn evaluation_settings(&self, realm: &RealmId) -> Result<Settings, ApiError> {
        self.get(&format!("/api/v1/realms/{realm}/evaluation-settings"))
            .await
    }

    /// `GET /api/v1/realms/{realm}/semesters`.
    pub async fn semesters(&self, realm: &RealmId) -> Result<Vec<Semester>, ApiError> {
        self.get(&format!("/api/v1/realms/{realm}/semesters")).await
    }

    /// `GET /api/v1/realms/{realm}/scoreboards?{query}`: a page of scoreboards.
    pub async fn scoreboards(
        &self,
        realm: &RealmId,
        query: &str,
    ) -> Result<Page<Scoreboard>, ApiError> {
        self.get(&format!("/api/v1/realms/{realm}/scoreboards?{query}"))
            .await
    }

    /// `GET /api/v1/realms/{realm}/scoreboards/{id}`: a scoreboard with its requests,
    /// guidelines and every member's points.
    pub async fn scoreboard(
        &self,
        realm: &RealmId,
        id: Uuid,
    ) -> Result<ScoreboardDetail, ApiError> {
        self.get(&format!("/api/v1/realms/{realm}/scoreboards/{id}"))
            .await
    }

    /// `GET …/scoreboards/{id}/point-requests/{membership}/{guideline}/comments`.
    pub async fn cell_comments(
        &self,
        realm: &RealmId,
        id: Uuid,
        membership: Uuid,
        guideline: Uuid,
    ) -> Result<Vec<CellComment>, ApiError> {
        self.get(&format!(
            "/api/v1/realms/{realm}/scoreboards/{id}/point-requests/{membership}/{guideline}/comments"
        ))
        .await
    }
}

/// The API's own (English) message in an error answer, for what a page reads out of it.
pub fn api_message(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorAnswer>(body)
        .map(|a| a.error.message)
        .unwrap_or_default()
}

/// The API's error answer ([`crate::error::ErrorBody`]) as the pages read it.
#[derive(serde::Deserialize)]
struct ErrorAnswer {
    error: ErrorAnswerDetail,
}

#[derive(serde::Deserialize)]
struct ErrorAnswerDetail {
    #[serde(default)]
    message: String,
    reason: Option<String>,
}

/// Percent-encodes a query value.
pub fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the API leaves out of an answer (empty lists, false flags, no cursor) reads
    /// back as the pages' typed answer.
    #[test]
    fn answers_read_back_without_their_omitted_fields() {
        let merged: Federated<RealmGroupMembership> = serde_json::from_value(
            serde_json::to_value(Federated::<RealmGroupMembership> {
                items: Vec::new(),
                coverage: Default::default(),
                truncated: false,
            })
            .expect("serialize"),
        )
        .expect("a merged answer without its empty fields");
        assert!(!merged.truncated && merged.coverage.sign_in_required.is_empty());
        let page: Page<Scoreboard> = serde_json::from_str(r#"{"items": []}"#).expect("a last page");
        assert!(page.next_cursor.is_none());
    }
}
