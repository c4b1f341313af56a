//! Realms: the realm table. On a worker it holds the worker's own realm; on the hub it is
//! also the registry of worker realms (those with an endpoint) and of realms hosted
//! locally. Realm ids themselves are [`RealmId`]s (see `realm_id`).

pub use crate::realm_id::{RealmId, HUB};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{Db, GlobalTx};
use crate::error::{Error, Result, ResultExt};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RealmInfo {
    pub id: String,
    pub display_name: String,
    /// Worker URL; absent for realms served by this instance.
    pub endpoint: Option<String>,
    pub version: Option<String>,
    /// active, maintenance or down.
    pub status: String,
    pub registered_at: chrono::DateTime<chrono::Utc>,
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Kubernetes UID of the Realm that registered this worker realm (operator-registered
    /// realms only); registrations and deregistrations from another owner are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<String>,
    /// The sign-in providers whose sessions may use this realm; absent: every global
    /// provider of the hub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub providers: Option<Vec<String>>,
}

/// Creates a realm served from this database (if absent) with its GOD policy, and makes
/// `god` (when given) a GOD of it. Idempotent.
pub async fn ensure_local(
    db: &Db,
    id: &RealmId,
    display_name: &str,
    god: Option<Uuid>,
) -> Result<()> {
    let name = display_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::Unprocessable(
            "display name must be 1-200 characters".into(),
        ));
    }
    let mut g = db.global().await?;
    sqlx::query!(
        "INSERT INTO realms (id, display_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        id.as_str(),
        name
    )
    .execute(g.conn())
    .await?;
    g.commit().await?;
    let mut tx = db.realm(id).await?;
    let god_policy = crate::policy::ensure_god_policy(&mut tx).await?;
    if let Some(user) = god {
        // The realm's creator (or the platform's bootstrap) takes the role on by making
        // the realm: an accepted grant.
        sqlx::query!(
            "INSERT INTO policy_assignments (realm_id, user_id, policy_id, accepted_at)
             VALUES ($1, $2, $3, now())
             ON CONFLICT (realm_id, user_id, policy_id) DO UPDATE SET accepted_at = now()
                 WHERE policy_assignments.accepted_at IS NULL",
            id.as_str(),
            user,
            god_policy
        )
        .execute(tx.conn())
        .await
        .on_constraint("realm_members_user_id_fkey", |_| {
            Error::Unprocessable("no such user".into())
        })?;
    }
    tx.commit().await
}

/// Hub: every realm in the registry.
pub async fn list(g: &mut GlobalTx) -> Result<Vec<RealmInfo>> {
    Ok(sqlx::query_as!(
        RealmInfo,
        "SELECT id, display_name, endpoint, version, status, registered_at, last_seen_at,
                owner_uid, providers
               FROM realms ORDER BY id"
    )
    .fetch_all(g.conn())
    .await?)
}

/// Creates a realm hosted by the hub itself, and makes `creator` its GOD: only a GOD of the
/// hub realm may (403 otherwise); 409 when the id is taken.
pub async fn create_hosted(
    db: &Db,
    creator: Uuid,
    id: &RealmId,
    display_name: &str,
) -> Result<RealmInfo> {
    use crate::policy::{self, Grants, Permission, Target};
    let mut tx = db.realm(&RealmId::hub()).await?;
    let grants = Grants::load(&mut tx, creator).await?;
    policy::require(&mut tx, &grants, Permission::ManageRealm, Target::Realm).await?;
    if !grants.god {
        return Err(Error::forbidden(
            "create realms (GOD of the hub realm only)",
        ));
    }
    tx.commit().await?;
    let mut g = db.global().await?;
    let exists = list(&mut g).await?.iter().any(|r| r.id == id.as_str());
    g.commit().await?;
    if exists {
        return Err(Error::Conflict(format!("realm {id} already exists")));
    }
    ensure_local(db, id, display_name, Some(creator)).await?;
    let mut g = db.global().await?;
    let info = list(&mut g)
        .await?
        .into_iter()
        .find(|r| r.id == id.as_str())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("realm vanished after creation")))?;
    g.commit().await?;
    Ok(info)
}

/// Hub: ids of realms whose data lives in this database.
pub async fn local_ids(g: &mut GlobalTx) -> Result<Vec<RealmId>> {
    let ids: Vec<String> = sqlx::query_scalar!("SELECT id FROM realms WHERE endpoint IS NULL")
        .fetch_all(g.conn())
        .await?;
    Ok(ids.into_iter().map(RealmId::stored).collect())
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registration {
    pub display_name: crate::text::Line<200>,
    /// Base URL of the worker, e.g. `http://realm-kir-dev.pek.svc:8080`.
    pub endpoint: crate::text::Line<500>,
    pub version: Option<crate::text::Line<100>>,
    /// Kubernetes UID of the Realm registering it. Recorded on the first registration that
    /// names one; afterwards a registration naming another owner is a 409.
    pub owner_uid: Option<crate::text::Line<100>>,
    /// Sign-in provider ids whose sessions may use this realm (the Realm's
    /// `spec.providers`); absent: every global provider. At most 16.
    pub providers: Option<Vec<crate::text::Line<64>>>,
}

fn check_endpoint(url: &str) -> Result<()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 500
        && url.len() > "https://".len()
        && !url.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "endpoint must be an http(s) URL, got {url:?}"
        )))
    }
}

/// Hub admin API: registers or updates a worker realm. Returns true when created.
pub async fn register(g: &mut GlobalTx, id: &RealmId, reg: &Registration) -> Result<bool> {
    if id.is_hub() {
        return Err(Error::Conflict("the hub realm cannot be registered".into()));
    }
    check_endpoint(&reg.endpoint)?;
    let name = reg.display_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::Unprocessable(
            "displayName must be 1-200 characters".into(),
        ));
    }
    let providers: Option<Vec<String>> = match &reg.providers {
        None => None,
        Some(list) => {
            if list.is_empty() || list.len() > 16 {
                return Err(Error::Unprocessable(
                    "providers must list 1-16 sign-in provider ids (or be left out: every \
                     global provider)"
                        .into(),
                ));
            }
            let mut ids: Vec<String> = Vec::with_capacity(list.len());
            for p in list {
                let p = p.trim();
                if !crate::login::valid_provider_id(p) {
                    return Err(Error::Unprocessable(format!(
                        "providers: {p:?} is not a provider id (1-64 of a-z, 0-9, '-')"
                    )));
                }
                if !ids.iter().any(|have| have == p) {
                    ids.push(p.to_string());
                }
            }
            Some(ids)
        }
    };
    let existing: Option<Option<String>> = sqlx::query_scalar!(
        "SELECT endpoint FROM realms WHERE id = $1 FOR UPDATE",
        id.as_str()
    )
    .fetch_optional(g.conn())
    .await?;
    if let Some(None) = existing {
        return Err(Error::Conflict(format!(
            "realm {id} is hosted by the hub itself and cannot be registered as a worker"
        )));
    }
    sqlx::query!(
        "INSERT INTO realms (id, display_name, endpoint, version, status, last_seen_at,
                             providers)
         VALUES ($1, $2, $3, $4, 'active', now(), $5)
         ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name,
             endpoint = EXCLUDED.endpoint, version = EXCLUDED.version,
             providers = EXCLUDED.providers",
        id.as_str(),
        name,
        reg.endpoint.as_str(),
        reg.version.as_deref(),
        providers.as_deref()
    )
    .execute(g.conn())
    .await?;
    Ok(existing.is_none())
}

/// Hub admin API: refuses (409) when `id` is registered by an owner other than `owner_uid`.
/// Locks the entry for the rest of the transaction, so the answer holds until commit.
pub async fn check_owner(g: &mut GlobalTx, id: &RealmId, owner_uid: &str) -> Result<()> {
    let recorded: Option<Option<String>> = sqlx::query_scalar!(
        "SELECT owner_uid FROM realms WHERE id = $1 FOR UPDATE",
        id.as_str()
    )
    .fetch_optional(g.conn())
    .await?;
    match recorded {
        Some(Some(owner)) if owner != owner_uid => Err(owned_by_another(id, &owner, owner_uid)),
        _ => Ok(()),
    }
}

fn owned_by_another(id: &RealmId, owner: &str, caller: &str) -> Error {
    Error::Conflict(format!(
        "realm {id} is registered by the Realm with uid {owner}; refusing a change from the \
         Realm with uid {caller} (two Realms with the same realmId). Delete or rename the \
         duplicate Realm; if the owner is gone for good, remove the entry with \
         DELETE /internal/v1/realms/{id} (without ownerUid)"
    ))
}

/// Hub admin API: records `owner_uid` as the owner of the registration of `id` (after
/// [`register`], in the same transaction). A 409 when another owner got there first (two
/// first registrations at once: the later one waited for the earlier one's row).
pub async fn claim(g: &mut GlobalTx, id: &RealmId, owner_uid: &str) -> Result<()> {
    let claimed = sqlx::query!(
        "UPDATE realms SET owner_uid = $2
          WHERE id = $1 AND (owner_uid IS NULL OR owner_uid = $2)",
        id.as_str(),
        owner_uid
    )
    .execute(g.conn())
    .await?
    .rows_affected();
    if claimed == 1 {
        return Ok(());
    }
    let owner: Option<String> =
        sqlx::query_scalar!("SELECT owner_uid FROM realms WHERE id = $1", id.as_str())
            .fetch_optional(g.conn())
            .await?
            .flatten();
    Err(owned_by_another(
        id,
        owner.as_deref().unwrap_or("(unknown)"),
        owner_uid,
    ))
}

/// Hub admin API: removes a worker realm from the registry (absent is fine).
pub async fn deregister(g: &mut GlobalTx, id: &RealmId) -> Result<()> {
    let endpoint: Option<Option<String>> =
        sqlx::query_scalar!("SELECT endpoint FROM realms WHERE id = $1", id.as_str())
            .fetch_optional(g.conn())
            .await?;
    match endpoint {
        None => Ok(()),
        Some(None) => Err(Error::Conflict(format!(
            "realm {id} is hosted by the hub itself; it is not a registered worker"
        ))),
        Some(Some(_)) => {
            sqlx::query!("DELETE FROM realms WHERE id = $1", id.as_str())
                .execute(g.conn())
                .await?;
            Ok(())
        }
    }
}
