//! The directory for trusted services (see [`crate::service_directory`]): on the hub
//! `/internal/v1/directory/…` with per-service tokens ([`ServiceToken`]); on every
//! instance the realm part the hub asks for, `/internal/v1/realms/{realm}/directory/…`,
//! with the realm's token ([`HubScope`]).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{HubScope, ServiceToken};
use crate::bff::left_out::{Failure, Reason};
use crate::bff::merge::{self, Contribution};
use crate::bff::{BackendRequest, Outcome};
use crate::error::{Error, ErrorBody, Result};
use crate::http::{AppState, Json, Path, Query};
use crate::profile::{self, BasicProfile, ProfileData, Scope};
use crate::realm::RealmId;
use crate::service_directory::{self as directory, DirEntryAward, DirMembership};

/// Realm side, on every instance.
pub fn realm_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(realm_memberships))
        .routes(routes!(realm_entry_awards))
}

/// Hub side, for services.
pub fn hub_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(directory_user))
        .routes(routes!(directory_memberships))
        .routes(routes!(directory_entrants))
        .routes(routes!(directory_entrants_by_query))
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RealmUserPath {
    realm: String,
    id: Uuid,
}

/// A user's current memberships (NEWBIE / ACTIVE) in this realm, for the hub's directory.
#[utoipa::path(get, path = "/internal/v1/realms/{realm}/directory/users/{id}/memberships",
    tag = "directory", params(("realm" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<DirMembership>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn realm_memberships(
    HubScope { mut tx }: HubScope,
    Path(p): Path<RealmUserPath>,
) -> Result<Json<Vec<DirMembership>>> {
    let out = directory::memberships(&mut tx, p.id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct SemesterName {
    /// The semester's name (e.g. `2025/26/1`; the same in every realm).
    semester: String,
}

/// A user's accepted entry awards of a semester in this realm, for the hub's directory.
#[utoipa::path(get, path = "/internal/v1/realms/{realm}/directory/users/{id}/entry-awards",
    tag = "directory", params(("realm" = String, Path), ("id" = Uuid, Path), SemesterName),
    responses((status = 200, body = Vec<DirEntryAward>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn realm_entry_awards(
    HubScope { mut tx }: HubScope,
    Path(p): Path<RealmUserPath>,
    Query(q): Query<SemesterName>,
) -> Result<Json<Vec<DirEntryAward>>> {
    let out = directory::entry_awards(&mut tx, &q.semester, p.id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// A person as services see them.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DirUser {
    id: Uuid,
    /// Absent for people who sign in only through other providers.
    auth_sch_id: Option<String>,
    /// Names and nickname; absent when the person has not filled in a profile.
    profile: Option<BasicProfile>,
    /// The realms the person is in.
    realms: Vec<String>,
}

/// Items gathered from every realm of the person; `unavailable` realms did not answer.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DirList<T: utoipa::ToSchema> {
    user_id: Uuid,
    items: Vec<T>,
    partial: bool,
    unavailable: Vec<String>,
}

impl<T: utoipa::ToSchema> DirList<T> {
    fn new(user_id: Uuid, (items, unavailable): (Vec<T>, Vec<String>)) -> Json<Self> {
        Json(DirList {
            user_id,
            items,
            partial: !unavailable.is_empty(),
            unavailable,
        })
    }
}

#[derive(Deserialize)]
struct UserPath {
    id: String,
}

/// A person's profile basics (`pek-next`'s `/services/sync/:id`); `id` is the user id, the
/// AuthSCH id, the Neptun code or the person's pek-next id. Bearer: a directory service
/// token.
#[utoipa::path(get, path = "/internal/v1/directory/users/{id}", tag = "directory",
    params(("id" = String, Path, description = "user id, AuthSCH id, Neptun code or pek-next id")),
    responses((status = 200, body = DirUser), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn directory_user(
    ServiceToken(svc): ServiceToken,
    State(s): State<AppState>,
    Path(p): Path<UserPath>,
) -> Result<Json<DirUser>> {
    let (id, auth_sch_id) = directory::resolve_user(&s.db, &s.naming(), &p.id).await?;
    tracing::info!(service = %svc, user = %id, "directory: user");
    let view = profile::view_at(&s.db, id, Scope::Basic).await?;
    let profile = match view.profile {
        Some(ProfileData::Basic(b)) => Some(b),
        Some(ProfileData::Full(f)) => Some(f.basic),
        None => None,
    };
    let realms = crate::federation::user_realms(&s.db, id)
        .await?
        .into_iter()
        .map(|r| r.to_string())
        .collect();
    Ok(Json(DirUser {
        id,
        auth_sch_id,
        profile,
        realms,
    }))
}

/// Asks every realm of `user` for `what` (a path below the realm's directory): realms
/// this hub hosts directly, workers with their realm token.
async fn gather<T: serde::de::DeserializeOwned + Send>(
    s: &AppState,
    user: Uuid,
    what: &str,
    local: impl Fn(RealmId) -> futures::future::BoxFuture<'static, Result<Vec<T>>>,
) -> Result<(Vec<T>, Vec<String>)> {
    let realms = crate::federation::user_realms(&s.db, user).await?;
    let calls = realms.into_iter().map(|realm| {
        let what = what.to_string();
        let local = &local;
        async move {
            if s.serves(&realm).await {
                let c = match local(realm.clone()).await {
                    Ok(value) => Contribution::Answer { value, more: false },
                    Err(e) => Contribution::Failed(Failure::new(Reason::Failing, e.to_string())),
                };
                return (realm, c);
            }
            let (Some(bff), Some(secret)) = (&s.bff, &s.federation_secret) else {
                let why = "no federation secret to ask workers with";
                return (
                    realm,
                    Contribution::Failed(Failure::new(Reason::Failing, why)),
                );
            };
            let backend = match bff.reach(&realm).await {
                Some(Ok(b)) => b,
                Some(Err(why)) => return (realm, Contribution::Failed(why)),
                None => {
                    let why = Failure::new(Reason::Failing, "not registered");
                    return (realm, Contribution::Failed(why));
                }
            };
            let token = crate::federation::realm_token(secret, &realm);
            let req = BackendRequest {
                service_bearer: Some(token),
                ..BackendRequest::get(
                    format!("/internal/v1/realms/{realm}/directory/users/{user}/{what}"),
                    None,
                )
            };
            // Unlike a person's fan-out, every status but 200 is a failure here, and so is
            // a realm the hub cannot ask: the person is in it, so a service must learn
            // that the answer lacks it rather than read it as empty.
            let c = match bff.call(&backend, req).await {
                Outcome::Answered(r) if r.status == StatusCode::OK => {
                    match serde_json::from_slice::<Vec<T>>(&r.body) {
                        Ok(value) => Contribution::Answer { value, more: false },
                        Err(e) => {
                            Contribution::Failed(Failure::new(Reason::BadAnswer, e.to_string()))
                        }
                    }
                }
                Outcome::Answered(r) => Contribution::Failed(Failure::new(
                    Reason::Failing,
                    format!("HTTP {}", r.status),
                )),
                Outcome::Forbidden => {
                    Contribution::Failed(Failure::new(Reason::Failing, "not registered"))
                }
                Outcome::Unavailable(why) => Contribution::Failed(why),
            };
            (realm, c)
        }
    });
    let merged = merge::combine(futures::future::join_all(calls).await);
    let unavailable = merged.unavailable.iter().map(|r| r.to_string()).collect();
    let items = merged.answers.into_iter().flat_map(|(_, v)| v).collect();
    Ok((items, unavailable))
}

/// A person's current memberships with posts in every realm
/// (`pek-next`'s `/services/sync/:id/memberships`). Bearer: a directory service token.
#[utoipa::path(get, path = "/internal/v1/directory/users/{id}/memberships", tag = "directory",
    params(("id" = String, Path, description = "user id or AuthSCH id")),
    responses((status = 200, body = DirList<DirMembership>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn directory_memberships(
    ServiceToken(svc): ServiceToken,
    State(s): State<AppState>,
    Path(p): Path<UserPath>,
) -> Result<Json<DirList<DirMembership>>> {
    let (id, _) = directory::resolve_user(&s.db, &s.naming(), &p.id).await?;
    tracing::info!(service = %svc, user = %id, "directory: memberships");
    let db = s.db.clone();
    let (items, unavailable) = gather(&s, id, "memberships", move |realm| {
        let db = db.clone();
        Box::pin(async move { directory::memberships_in(&db, &realm, id).await })
    })
    .await?;
    Ok(DirList::new(id, (items, unavailable)))
}

#[derive(Deserialize)]
struct EntrantPath {
    semester: String,
    id: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct EntrantQuery {
    /// The semester's name, e.g. `2025/26/1`.
    semester: String,
}

/// A person's accepted entry awards (KDO / KB / AB) of a semester in every realm
/// (`pek-next`'s `/services/entrants/get/:semester/:id`), the semester by name in the
/// path. Names with a `/` (`2025/26/1`) cannot travel in a path segment (encoded `/` is
/// refused everywhere, see the canonical-path rule): use the `?semester=` form for them.
/// Bearer: a directory service token.
#[utoipa::path(get, path = "/internal/v1/directory/entrants/{semester}/{id}", tag = "directory",
    params(("semester" = String, Path), ("id" = String, Path, description = "user id or AuthSCH id")),
    responses((status = 200, body = DirList<DirEntryAward>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn directory_entrants(
    ServiceToken(svc): ServiceToken,
    State(s): State<AppState>,
    Path(p): Path<EntrantPath>,
) -> Result<Json<DirList<DirEntryAward>>> {
    entrants(s, svc, p.id, p.semester).await
}

/// The same as `/internal/v1/directory/entrants/{semester}/{id}`, the semester name as a
/// query parameter (`?semester=2025%2F26%2F1`). Bearer: a directory service token.
#[utoipa::path(get, path = "/internal/v1/directory/entrants/{id}", tag = "directory",
    params(("id" = String, Path, description = "user id or AuthSCH id"), EntrantQuery),
    responses((status = 200, body = DirList<DirEntryAward>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn directory_entrants_by_query(
    ServiceToken(svc): ServiceToken,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EntrantQuery>,
) -> Result<Json<DirList<DirEntryAward>>> {
    entrants(s, svc, id, q.semester).await
}

async fn entrants(
    s: AppState,
    svc: String,
    user: String,
    semester: String,
) -> Result<Json<DirList<DirEntryAward>>> {
    let (id, _) = directory::resolve_user(&s.db, &s.naming(), &user).await?;
    let semester = semester.trim().to_string();
    if semester.is_empty()
        || semester.chars().count() > 50
        || semester.chars().any(char::is_control)
    {
        return Err(Error::BadRequest(
            "semester must be a semester name of 1-50 characters".into(),
        ));
    }
    tracing::info!(service = %svc, user = %id, semester = %semester, "directory: entrants");
    let what = format!(
        "entry-awards?semester={}",
        url::form_urlencoded::byte_serialize(semester.as_bytes()).collect::<String>()
    );
    let db = s.db.clone();
    let sem = semester.clone();
    let (items, unavailable) = gather(&s, id, &what, move |realm| {
        let db = db.clone();
        let sem = sem.clone();
        Box::pin(async move { directory::entry_awards_in(&db, &realm, &sem, id).await })
    })
    .await?;
    Ok(DirList::new(id, (items, unavailable)))
}
