//! Semesters: per realm, at most one current (a partial unique index guarantees it).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result, ResultExt};
use crate::policy::{self, Grants, Permission, Target};
use crate::text::Line;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Semester {
    pub id: Uuid,
    pub realm_id: String,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub is_current: bool,
}

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
    Ok(sqlx::query_as!(
        Semester,
        "SELECT id, realm_id, name, starts_on, ends_on, is_current
           FROM semesters WHERE realm_id = $1 ORDER BY starts_on DESC, name",
        realm
    )
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
    let s: Semester = sqlx::query_as!(
        Semester,
        "INSERT INTO semesters (realm_id, name, starts_on, ends_on) VALUES ($1, $2, $3, $4)
         RETURNING id, realm_id, name, starts_on, ends_on, is_current",
        realm,
        name,
        new.starts_on,
        new.ends_on
    )
    .fetch_one(tx.conn())
    .await
    .on_constraint("semesters_realm_id_name_key", |_| {
        Error::Conflict("a semester with this name already exists in this realm".into())
    })?;
    if new.current.unwrap_or(false) {
        return make_current(tx, grants, s.id).await;
    }
    Ok(s)
}

pub async fn make_current(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Semester> {
    policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?;
    let realm = tx.realm().as_str().to_string();
    sqlx::query!(
        "UPDATE semesters SET is_current = false WHERE realm_id = $1 AND is_current AND id <> $2",
        realm,
        id
    )
    .execute(tx.conn())
    .await?;
    sqlx::query_as!(
        Semester,
        "UPDATE semesters SET is_current = true WHERE realm_id = $1 AND id = $2
         RETURNING id, realm_id, name, starts_on, ends_on, is_current",
        realm,
        id
    )
    .fetch_optional(tx.conn())
    .await
    .on_constraint("semesters_one_current", |_| {
        Error::Conflict("another semester is already current in this realm".into())
    })?
    .ok_or_else(|| Error::not_found(format!("semester {id} in realm {realm}")))
}

/// The realm's current semester (anyone in the realm).
pub async fn current(tx: &mut RealmTx, grants: &Grants) -> Result<Semester> {
    policy::require_in_realm(tx, grants).await?;
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as!(
        Semester,
        "SELECT id, realm_id, name, starts_on, ends_on, is_current
           FROM semesters WHERE realm_id = $1 AND is_current",
        realm
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::NotFound(format!("realm {realm} has no current semester")))
}
