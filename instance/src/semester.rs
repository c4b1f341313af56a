//! Semesters: per realm, at most one current (a partial unique index guarantees it).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::policy::{self, Grants, Permission, Target};
use crate::text::Line;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Semester {
    pub id: Uuid,
    pub realm_id: String,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub is_current: bool,
}

const COLS: &str = "id, realm_id, name, starts_on, ends_on, is_current";

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSemester {
    /// e.g. `2025/26/1`
    pub name: Line<200>,
    #[serde(deserialize_with = "crate::text::date::day")]
    pub starts_on: NaiveDate,
    #[serde(deserialize_with = "crate::text::date::day")]
    pub ends_on: NaiveDate,
    /// Make it the realm's current semester.
    pub current: Option<bool>,
}

/// The realm's semesters, newest first (anyone in the realm).
pub async fn list(tx: &mut RealmTx, grants: &Grants) -> Result<Vec<Semester>> {
    policy::require_in_realm(tx, grants).await?;
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM semesters WHERE realm_id = $1 ORDER BY starts_on DESC, name"
    ))
    .bind(&realm)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn create(tx: &mut RealmTx, grants: &Grants, new: NewSemester) -> Result<Semester> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(Error::invalid("semester name must be 1-50 characters"));
    }
    if new.ends_on <= new.starts_on {
        return Err(Error::invalid("a semester must end after it starts"));
    }
    let realm = tx.realm().as_str().to_string();
    let s: Semester = sqlx::query_as(&format!(
        "INSERT INTO semesters (realm_id, name, starts_on, ends_on) VALUES ($1, $2, $3, $4)
         RETURNING {COLS}"
    ))
    .bind(&realm)
    .bind(name)
    .bind(new.starts_on)
    .bind(new.ends_on)
    .fetch_one(tx.conn())
    .await?;
    if new.current.unwrap_or(false) {
        return make_current(tx, grants, s.id).await;
    }
    Ok(s)
}

pub async fn make_current(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Semester> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let realm = tx.realm().as_str().to_string();
    sqlx::query(
        "UPDATE semesters SET is_current = false WHERE realm_id = $1 AND is_current AND id <> $2",
    )
    .bind(&realm)
    .bind(id)
    .execute(tx.conn())
    .await?;
    sqlx::query_as(&format!(
        "UPDATE semesters SET is_current = true WHERE realm_id = $1 AND id = $2 RETURNING {COLS}"
    ))
    .bind(&realm)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::not_found(format!("semester {id} in realm {realm}")))
}

/// The realm's current semester (anyone in the realm).
pub async fn current(tx: &mut RealmTx, grants: &Grants) -> Result<Semester> {
    policy::require_in_realm(tx, grants).await?;
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM semesters WHERE realm_id = $1 AND is_current"
    ))
    .bind(&realm)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::NotFound(format!("realm {realm} has no current semester")))
}
