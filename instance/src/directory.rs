//! Which people exist, for realm code that must not take a made-up user id (invitations)
//! and for the realm administrators named in configuration.
//!
//! Users live in the hub's database. The hub answers from it directly; a worker asks the
//! hub over its internal API, authenticated with the worker's realm token (the same
//! `HMAC(federation secret, realm id)` its membership reports carry), and remembers the
//! people it has seen (users are never deleted through the API, so a "yes" stays true).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::realm::RealmId;

/// A worker's way to the hub's user directory.
pub struct HubUsers {
    pub hub_url: String,
    pub realm: RealmId,
    pub token: String,
    pub http: reqwest::Client,
    known: moka::future::Cache<Uuid, ()>,
}

impl HubUsers {
    pub fn new(hub_url: String, realm: RealmId, token: String, http: reqwest::Client) -> Self {
        HubUsers {
            hub_url: hub_url.trim_end_matches('/').to_string(),
            realm,
            token,
            http,
            known: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
        }
    }

    fn url(&self, rest: &str) -> String {
        format!(
            "{}/internal/v1/realms/{}/users{rest}",
            self.hub_url, self.realm
        )
    }

    fn unavailable(&self, why: impl std::fmt::Display) -> Error {
        Error::Unavailable(format!(
            "cannot check with the hub which users exist ({why}); try again later"
        ))
    }
}

pub enum Users {
    /// The hub: its own database, and how names map to identities.
    Hub(Db, crate::identity::Naming),
    /// A worker: the hub, when PEK_HUB_URL and PEK_HUB_TOKEN_FILE are set.
    Worker(Option<HubUsers>),
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserRef {
    pub id: Uuid,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthSchRef {
    /// The person's AuthSCH id, `authsch:<id>`, or `<provider>:<subject>` for another
    /// sign-in provider of the hub.
    pub auth_sch_id: String,
}

impl Users {
    /// Ok when `user` exists; 422 when it does not; 503 when it cannot be checked.
    pub async fn require_exists(&self, user: Uuid) -> Result<()> {
        let exists = match self {
            Users::Hub(db, _) => {
                let mut g = db.global().await?;
                let yes = crate::profile::user_exists(&mut g, user).await?;
                g.commit().await?;
                yes
            }
            Users::Worker(None) => {
                return Err(Error::Unavailable(
                    "this worker cannot check that a user exists: PEK_HUB_URL and \
                     PEK_HUB_TOKEN_FILE are not set"
                        .into(),
                ))
            }
            Users::Worker(Some(hub)) => {
                if hub.known.get(&user).await.is_some() {
                    return Ok(());
                }
                let resp = hub
                    .http
                    .get(hub.url(&format!("/{user}")))
                    .bearer_auth(&hub.token)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map_err(|e| hub.unavailable(e))?;
                match resp.status() {
                    s if s.is_success() => {
                        hub.known.insert(user, ()).await;
                        true
                    }
                    reqwest::StatusCode::NOT_FOUND => false,
                    s => return Err(hub.unavailable(format!("the hub answered {s}"))),
                }
            }
        };
        if exists {
            Ok(())
        } else {
            Err(Error::Unprocessable(format!("user {user} does not exist")))
        }
    }

    /// The user id of each AuthSCH id, creating users for people who never logged in
    /// (so what is granted to them works at their first login).
    pub async fn resolve_auth_sch(&self, ids: &[String]) -> Result<Vec<Uuid>> {
        let mut out = Vec::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        match self {
            Users::Hub(db, naming) => {
                let mut g = db.global().await?;
                for id in ids {
                    out.push(crate::identity::ensure_named(&mut g, naming, id).await?);
                }
                g.commit().await?;
            }
            Users::Worker(None) => {
                return Err(Error::Unavailable(
                    "realm administrators on a worker need PEK_HUB_URL and PEK_HUB_TOKEN_FILE"
                        .into(),
                ))
            }
            Users::Worker(Some(hub)) => {
                for id in ids {
                    let resp = hub
                        .http
                        .post(hub.url(""))
                        .bearer_auth(&hub.token)
                        .timeout(Duration::from_secs(10))
                        .json(&AuthSchRef {
                            auth_sch_id: id.clone(),
                        })
                        .send()
                        .await
                        .map_err(|e| hub.unavailable(e))?;
                    let status = resp.status();
                    if !status.is_success() {
                        let body = resp.text().await.unwrap_or_default();
                        return Err(hub.unavailable(format!(
                            "the hub answered {status}: {}",
                            body.chars().take(300).collect::<String>()
                        )));
                    }
                    let r: UserRef = resp.json().await.map_err(|e| hub.unavailable(e))?;
                    hub.known.insert(r.id, ()).await;
                    out.push(r.id);
                }
            }
        }
        Ok(out)
    }
}

/// Checks the configured administrators' AuthSCH ids (trimmed, empty entries dropped).
pub fn admin_ids(raw: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for a in raw.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
        anyhow::ensure!(
            a.chars().count() <= 200 && !a.chars().any(char::is_control),
            "PEK_REALM_ADMINS / --realm-admin: {a:?} is not an AuthSCH id (1-200 characters, \
             no control characters)"
        );
        if !out.iter().any(|o| o == a) {
            out.push(a.to_string());
        }
    }
    Ok(out)
}

/// Makes the configured administrators of `realm` hold its GOD policy, and revokes
/// what an earlier configuration granted to people no longer listed.
pub async fn apply_admins(
    db: &Db,
    users: &Users,
    realm: &RealmId,
    auth_sch_ids: &[String],
) -> Result<()> {
    let ids = users.resolve_auth_sch(auth_sch_ids).await?;
    let mut tx = db.realm(realm).await?;
    let (granted, revoked) = crate::policy::reconcile_config_gods(&mut tx, &ids).await?;
    tx.commit().await?;
    tracing::info!(
        realm = %realm,
        admins = ids.len(),
        granted,
        revoked,
        "realm administrators from configuration hold the GOD policy"
    );
    Ok(())
}

/// A worker: [`apply_admins`] until it succeeds (the hub may not be up yet).
pub async fn apply_admins_until_done(
    db: Db,
    users: std::sync::Arc<Users>,
    realm: RealmId,
    auth_sch_ids: Vec<String>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match apply_admins(&db, &users, &realm, &auth_sch_ids).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "realm administrators not applied yet; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
