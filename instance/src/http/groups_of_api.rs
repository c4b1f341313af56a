//! Whose groups: a person's memberships in one realm (realm route, the same on hub and
//! workers) and across the realms (BFF routes on the hub: my own groups in every realm I
//! am in, someone else's in the realms we share). Someone else's membership is shown
//! only where the caller may view the group's members — the same rule as reading one
//! membership — so a list never reveals more than the single reads would.

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{AppState, Caller, Json, Path, Query, RealmScope};
use crate::bff::{self, BackendRequest, Federated};
use crate::error::{Error, ErrorBody, Result};
use crate::membership::{self, GroupMembership};
use crate::page::{Page, PageParams};
use crate::realm::RealmId;

/// Realm routes (every instance).
pub fn realm_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(user_memberships))
}

/// BFF routes (hub only).
pub fn bff_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_groups))
        .routes(routes!(my_policy_offers))
        .routes(routes!(user_groups))
        .routes(routes!(my_judging))
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct UserPath {
    realm: String,
    id: Uuid,
}

/// A person's memberships in this realm, ordered by group name: all of them for the
/// person themself, otherwise those in groups whose members the caller may view.
#[utoipa::path(get, path = "/api/v1/realms/{realm}/users/{id}/memberships", tag = "memberships",
    params(("realm" = String, Path), ("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<GroupMembership>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn user_memberships(
    RealmScope { mut tx, grants }: RealmScope,
    Path(UserPath { id, .. }): Path<UserPath>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<GroupMembership>>> {
    let out = membership::of_user(&mut tx, &grants, id, page.limit()?, page.cursor()?).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// A membership with its realm's display name, as the BFF merges them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RealmGroupMembership {
    #[serde(flatten)]
    pub membership: GroupMembership,
    pub realm_name: String,
}

/// The caller's groups in every realm they are in, ordered by realm, then group name —
/// with what waits for their own decision in any realm, also one they are not in yet:
/// invitations (INVITED), their applications (APPLIED), offers to bring back an archived
/// membership (`reopenOfferedAt`). Realms that do not answer are listed in `unavailable`.
#[utoipa::path(get, path = "/api/v1/me/groups", tag = "bff",
    responses((status = 200, body = Federated<RealmGroupMembership>),
              (status = 401, body = ErrorBody)))]
async fn my_groups(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
) -> Result<Json<Federated<RealmGroupMembership>>> {
    let bff = bff_of(&s)?;
    let realms = own_realms(bff, me).await?;
    Ok(Json(memberships_in(&s, &realms, me, me, &headers).await?))
}

/// The realms a person is in, and those where something waits for their decision.
async fn own_realms(bff: &bff::Bff, me: Uuid) -> Result<Vec<RealmId>> {
    let mut realms = bff.caller_realms(me).await?;
    realms.extend(crate::federation::pending_realms(&bff.db, me).await?);
    realms.sort();
    realms.dedup();
    Ok(realms)
}

/// A role offered to the caller, with its realm's display name.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RealmPolicyOffer {
    pub policy_id: Uuid,
    pub policy_name: String,
    pub realm_id: String,
    pub realm_name: String,
    pub assigned_by: Option<Uuid>,
    pub assigned_at: chrono::DateTime<chrono::Utc>,
}

/// Roles offered to the caller in any realm and not answered yet (accept or decline
/// with `POST /api/v1/realms/{realm}/me/policy-offers/{policy}/accept|decline`). An offer
/// grants nothing, and shows the caller to nobody, until accepted.
#[utoipa::path(get, path = "/api/v1/me/policy-offers", tag = "bff",
    responses((status = 200, body = Federated<RealmPolicyOffer>),
              (status = 401, body = ErrorBody)))]
async fn my_policy_offers(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
) -> Result<Json<Federated<RealmPolicyOffer>>> {
    let bff = bff_of(&s)?;
    let realms = crate::federation::pending_realms(&bff.db, me).await?;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Offer {
        policy_id: Uuid,
        policy_name: String,
        assigned_by: Option<Uuid>,
        assigned_at: chrono::DateTime<chrono::Utc>,
    }
    let offers = gather(
        &s,
        &realms,
        me,
        &headers,
        |r| format!("/api/v1/realms/{r}/me/policy-offers"),
        |body| serde_json::from_slice::<Vec<Offer>>(body).map(|o| (o, false)),
        |realm, realm_name, o| RealmPolicyOffer {
            policy_id: o.policy_id,
            policy_name: o.policy_name,
            realm_id: realm.to_string(),
            realm_name: realm_name.to_string(),
            assigned_by: o.assigned_by,
            assigned_at: o.assigned_at,
        },
    )
    .await?;
    Ok(Json(offers))
}

/// One realm's judging queue (see `GET /api/v1/realms/{realm}/me/judging`).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RealmJudgingQueue {
    pub realm_id: String,
    pub realm_name: String,
    #[serde(flatten)]
    pub queue: crate::evaluation::JudgingQueue,
}

/// The caller's judging queue in every realm of the federation: one item per realm that
/// answered (a realm in another season answers an empty queue; one where the caller is
/// nobody has nothing), and which realms were left out and why.
#[utoipa::path(get, path = "/api/v1/me/judging", tag = "bff",
    responses((status = 200, body = Federated<RealmJudgingQueue>),
              (status = 401, body = ErrorBody)))]
async fn my_judging(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
) -> Result<Json<Federated<RealmJudgingQueue>>> {
    let bff = bff_of(&s)?;
    let mut realms: Vec<RealmId> = bff.registry.all().await.keys().cloned().collect();
    realms.push(RealmId::hub());
    realms.sort();
    realms.dedup();
    let queues = gather(
        &s,
        &realms,
        me,
        &headers,
        |r| format!("/api/v1/realms/{r}/me/judging"),
        |body| {
            serde_json::from_slice::<crate::evaluation::JudgingQueue>(body)
                .map(|q| (vec![q], false))
        },
        |realm, realm_name, queue| RealmJudgingQueue {
            realm_id: realm.to_string(),
            realm_name: realm_name.to_string(),
            queue,
        },
    )
    .await?;
    Ok(Json(queues))
}

/// Someone's groups in the realms the caller shares with them (only groups whose
/// members the caller may view there); 404 when they share no realm.
#[utoipa::path(get, path = "/api/v1/users/{id}/groups", tag = "bff",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Federated<RealmGroupMembership>),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn user_groups(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Json<Federated<RealmGroupMembership>>> {
    let bff = bff_of(&s)?;
    let realms = if id == me {
        bff.caller_realms(me).await?
    } else {
        crate::profile::shared_realms(&s.db, me, id).await?
    };
    if realms.is_empty() && id != me {
        return Err(Error::not_found(format!("user {id}")));
    }
    Ok(Json(memberships_in(&s, &realms, me, id, &headers).await?))
}

fn bff_of(s: &AppState) -> Result<&std::sync::Arc<bff::Bff>> {
    s.bff
        .as_ref()
        .ok_or_else(|| Error::NotFound("no such route on a worker".into()))
}

async fn memberships_in(
    s: &AppState,
    realms: &[RealmId],
    me: Uuid,
    user: Uuid,
    headers: &HeaderMap,
) -> Result<Federated<RealmGroupMembership>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        items: Vec<GroupMembership>,
        next_cursor: Option<String>,
    }
    gather(
        s,
        realms,
        me,
        headers,
        |r| {
            format!(
                "/api/v1/realms/{r}/users/{user}/memberships?limit={}",
                crate::page::MAX_LIMIT
            )
        },
        |body| serde_json::from_slice::<Answer>(body).map(|a| (a.items, a.next_cursor.is_some())),
        |_, realm_name, membership| RealmGroupMembership {
            membership,
            realm_name: realm_name.to_string(),
        },
    )
    .await
}

/// One GET per realm, concurrently, as the caller; each realm's items tagged with the
/// realm's display name by `tag`, merged by the one BFF merge. A realm where the caller
/// has nothing (403), or that does not know what was asked about (404), has nothing.
async fn gather<T, U>(
    s: &AppState,
    realms: &[RealmId],
    me: Uuid,
    headers: &HeaderMap,
    path: impl Fn(&RealmId) -> String,
    read: impl Fn(&[u8]) -> serde_json::Result<(Vec<T>, bool)>,
    tag: impl Fn(&RealmId, &str, T) -> U,
) -> Result<Federated<U>> {
    let bff = bff_of(s)?;
    let caller = super::bff_api::caller(me, headers);
    let request_id = headers.get("x-request-id").cloned();
    let rules = bff::merge::Rules {
        not_found_is_nothing: true,
        ..bff::merge::Rules::default()
    };
    let merged = bff
        .fan_out_merged(
            realms,
            |r| BackendRequest {
                request_id: request_id.clone(),
                ..BackendRequest::get(path(r), caller.clone())
            },
            rules,
            |_, r| read(&r.body).map_err(|e| e.to_string()),
        )
        .await?;
    let registry = bff.registry.all().await;
    Ok(merged.federated(|answers| {
        answers
            .into_iter()
            .flat_map(|(realm, items)| {
                let realm_name = registry
                    .get(&realm)
                    .map(|e| e.display_name.clone())
                    .unwrap_or_else(|| realm.to_string());
                items
                    .into_iter()
                    .map(|item| tag(&realm, &realm_name, item))
                    .collect::<Vec<_>>()
            })
            .collect()
    }))
}
