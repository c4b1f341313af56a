//! Feature flags per realm.

use serde::Serialize;
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::policy::{self, Grants, Permission, Target};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFlag {
    pub key: String,
    pub enabled: bool,
    pub updated_by: Uuid,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn check_key(key: &str) -> Result<()> {
    let ok = (1..=100).contains(&key.len())
        && key.as_bytes()[0].is_ascii_lowercase()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "invalid feature flag key {key:?}: lowercase letters, digits, '_', '.', '-', starting with a letter"
        )))
    }
}

/// The realm's feature flags (anyone in the realm).
pub async fn list(tx: &mut RealmTx, grants: &Grants) -> Result<Vec<FeatureFlag>> {
    policy::require_in_realm(tx, grants).await?;
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        FeatureFlag,
        "SELECT key, enabled, updated_by, updated_at FROM feature_flags WHERE realm_id = $1 ORDER BY key",
        realm
    )
    .fetch_all(tx.conn())
    .await?)
}

pub async fn set(
    tx: &mut RealmTx,
    grants: &Grants,
    key: &str,
    enabled: bool,
) -> Result<FeatureFlag> {
    check_key(key)?;
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        FeatureFlag,
        "INSERT INTO feature_flags (realm_id, key, enabled, updated_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (realm_id, key) DO UPDATE
             SET enabled = EXCLUDED.enabled, updated_by = EXCLUDED.updated_by, updated_at = now()
         RETURNING key, enabled, updated_by, updated_at",
        realm,
        key,
        enabled,
        grants.viewer
    )
    .fetch_one(tx.conn())
    .await?)
}

pub async fn delete(tx: &mut RealmTx, grants: &Grants, key: &str) -> Result<()> {
    check_key(key)?;
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let realm = tx.realm().as_str().to_string();
    let n = sqlx::query!(
        "DELETE FROM feature_flags WHERE realm_id = $1 AND key = $2",
        realm,
        key
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(Error::not_found(format!("feature flag {key:?}")));
    }
    Ok(())
}
