//! Memberships: a user in a group of this realm, with a status and posts.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::group;
use crate::page::{Cursor, Page};
use crate::policy::{self, Grants, Permission, Target};
use crate::text::Line;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Newbie,
    Active,
    Former,
    Archived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Newbie => "NEWBIE",
            Status::Active => "ACTIVE",
            Status::Former => "FORMER",
            Status::Archived => "ARCHIVED",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub id: Uuid,
    pub realm_id: String,
    pub group_id: Uuid,
    pub user_id: Uuid,
    /// NEWBIE, ACTIVE, FORMER or ARCHIVED.
    pub status: String,
    /// Posts held in the group, e.g. `leader`.
    pub posts: Vec<String>,
    pub start_at: chrono::DateTime<chrono::Utc>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const COLS: &str =
    "id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at";

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMembership {
    pub user_id: Uuid,
    pub status: Option<Status>,
    pub posts: Option<Vec<Line<50>>>,
    #[serde(default, deserialize_with = "crate::text::date::opt_timestamp")]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MembershipPatch {
    pub status: Option<Status>,
    pub posts: Option<Vec<Line<50>>>,
    #[serde(default, deserialize_with = "crate::text::date::opt_timestamp")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

fn check_posts(posts: &[Line<50>]) -> Result<Vec<String>> {
    if posts.len() > 20 {
        return Err(Error::invalid("at most 20 posts per membership"));
    }
    let mut out: Vec<String> = Vec::new();
    for p in posts {
        let p = p.trim();
        if p.is_empty() {
            return Err(Error::invalid("each post must be 1-50 characters"));
        }
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    Ok(out)
}

pub async fn get(tx: &mut RealmTx, id: Uuid) -> Result<Membership> {
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM memberships WHERE realm_id = $1 AND id = $2"
    ))
    .bind(&realm)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::not_found(format!("membership {id} in realm {realm}")))
}

pub async fn add(
    tx: &mut RealmTx,
    grants: &Grants,
    group_id: Uuid,
    new: NewMembership,
) -> Result<Membership> {
    let g = group::get_visible(tx, grants, group_id).await?;
    policy::require(tx, grants, Permission::EditMembers, Target::Group(group_id)).await?;
    if g.archived {
        return Err(Error::invalid(
            "the group is archived; it takes no new members",
        ));
    }
    let posts = check_posts(&new.posts.unwrap_or_default())?;
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as(&format!(
        "INSERT INTO memberships (realm_id, group_id, user_id, status, posts, start_at)
         VALUES ($1, $2, $3, $4, $5, COALESCE($6, now())) RETURNING {COLS}"
    ))
    .bind(&realm)
    .bind(group_id)
    .bind(new.user_id)
    .bind(new.status.unwrap_or(Status::Newbie).as_str())
    .bind(&posts)
    .bind(new.start_at)
    .fetch_one(tx.conn())
    .await?)
}

pub async fn update(
    tx: &mut RealmTx,
    grants: &Grants,
    id: Uuid,
    patch: MembershipPatch,
) -> Result<Membership> {
    let m = get(tx, id).await?;
    policy::require(
        tx,
        grants,
        Permission::EditMembers,
        Target::Group(m.group_id),
    )
    .await?;
    let posts = patch.posts.as_deref().map(check_posts).transpose()?;
    // Leaving (FORMER/ARCHIVED) closes the membership unless an end is given.
    let closes = matches!(patch.status, Some(Status::Former | Status::Archived));
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as(&format!(
        "UPDATE memberships SET
             status = COALESCE($3, status),
             posts = COALESCE($4, posts),
             until = COALESCE($5, CASE WHEN $6 AND until IS NULL THEN greatest(now(), start_at)
                                       ELSE until END),
             updated_at = now()
          WHERE realm_id = $1 AND id = $2 RETURNING {COLS}"
    ))
    .bind(&realm)
    .bind(id)
    .bind(patch.status.map(|s| s.as_str()))
    .bind(&posts)
    .bind(patch.until)
    .bind(closes)
    .fetch_one(tx.conn())
    .await?)
}

pub async fn remove(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<()> {
    let m = get(tx, id).await?;
    policy::require(
        tx,
        grants,
        Permission::EditMembers,
        Target::Group(m.group_id),
    )
    .await?;
    let realm = tx.realm().as_str().to_string();
    sqlx::query("DELETE FROM memberships WHERE realm_id = $1 AND id = $2")
        .bind(&realm)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn list_for_group(
    tx: &mut RealmTx,
    grants: &Grants,
    group_id: Uuid,
    limit: i64,
    cursor: Option<Cursor>,
) -> Result<Page<Membership>> {
    group::get_visible(tx, grants, group_id).await?;
    policy::require(tx, grants, Permission::ViewMembers, Target::Group(group_id)).await?;
    let realm = tx.realm().as_str().to_string();
    let (after_key, after_id) = match cursor {
        Some(c) => (Some(c.key), Some(c.id)),
        None => (None, None),
    };
    let rows: Vec<Membership> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM memberships
          WHERE realm_id = $1 AND group_id = $2
            AND ($3::text IS NULL OR (user_id::text, id) > ($3, $4::uuid))
          ORDER BY user_id::text, id LIMIT $5"
    ))
    .bind(&realm)
    .bind(group_id)
    .bind(after_key)
    .bind(after_id)
    .bind(limit + 1)
    .fetch_all(tx.conn())
    .await?;
    Ok(Page::from_rows(rows, limit, |m| {
        (m.user_id.to_string(), m.id)
    }))
}
