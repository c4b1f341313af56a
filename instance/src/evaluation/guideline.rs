//! Guideline collections (one per group and semester) and their guidelines: what points
//! can be requested for, in category WORK or RESPONSIBILITY, with a maximum per member
//! and a maximum in total per scoreboard.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::season::Act;
use super::{
    as_reference, mapped, may_view_scores, previous_semester, require_season, require_semester,
};
use crate::db::RealmTx;
use crate::error::{Error, Result};
use crate::group;
use crate::policy::{self, Grants, Permission, Target};
use crate::text::{Line, Prose};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Work,
    Responsibility,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Work => "WORK",
            Category::Responsibility => "RESPONSIBILITY",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    pub id: Uuid,
    pub realm_id: String,
    pub group_id: Uuid,
    pub semester_id: Uuid,
    pub name: String,
    pub description: String,
    pub created_by: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Guideline {
    pub id: Uuid,
    pub realm_id: String,
    pub collection_id: Uuid,
    pub group_id: Uuid,
    pub semester_id: Uuid,
    pub title: String,
    pub description: String,
    /// WORK or RESPONSIBILITY.
    pub category: String,
    /// The most points one member may be requested under this guideline.
    pub max_per_member: i32,
    /// The most points requested under this guideline on one scoreboard, all members
    /// together.
    pub max_per_guideline: i32,
    pub created_by: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl Guideline {
    pub fn category(&self) -> Category {
        if self.category == "RESPONSIBILITY" {
            Category::Responsibility
        } else {
            Category::Work
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionWithGuidelines {
    #[serde(flatten)]
    pub collection: Collection,
    pub guidelines: Vec<Guideline>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCollection {
    pub group_id: Uuid,
    pub semester_id: Uuid,
    pub name: Line<200>,
    pub description: Option<Prose<10_000>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewGuideline {
    pub title: Line<200>,
    pub description: Option<Prose<10_000>>,
    pub category: Category,
    pub max_per_member: i32,
    pub max_per_guideline: i32,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CopyCollection {
    pub group_id: Uuid,
    /// The semester the new collection is for (the one the realm is evaluating).
    pub semester_id: Uuid,
    /// Copy from this semester's collection (default: the semester before).
    pub from_semester_id: Option<Uuid>,
    /// The new collection's name (default: the copied one's).
    pub name: Option<String>,
}

/// Points on any guideline are bounded by this (a sanity bound, far above any realm's).
pub const MAX_GUIDELINE_POINTS: i32 = 100_000;

fn check_text(what: &str, s: &str, min: usize, max: usize) -> Result<String> {
    let t = s.trim();
    let n = t.chars().count();
    if n < min || n > max {
        return Err(Error::invalid(format!(
            "{what} must be {min}-{max} characters"
        )));
    }
    Ok(t.to_string())
}

pub async fn get_collection(tx: &mut RealmTx, id: Uuid) -> Result<Collection> {
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as!(
        Collection,
        "SELECT id, realm_id, group_id, semester_id, name, description, created_by, created_at
           FROM guideline_collections WHERE realm_id = $1 AND id = $2",
        realm,
        id
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::not_found(format!("guideline collection {id} in realm {realm}")))
}

pub async fn get(tx: &mut RealmTx, id: Uuid) -> Result<Guideline> {
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as!(
        Guideline,
        "SELECT id, realm_id, collection_id, group_id, semester_id, title,
                description, category, max_per_member, max_per_guideline, created_by,
                created_at FROM guidelines WHERE realm_id = $1 AND id = $2",
        realm,
        id
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::not_found(format!("guideline {id} in realm {realm}")))
}

/// The guidelines of a group's collection for a semester (none without a collection).
pub async fn of_group_semester(
    tx: &mut RealmTx,
    group: Uuid,
    semester: Uuid,
) -> Result<Vec<Guideline>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        Guideline,
        "SELECT id, realm_id, collection_id, group_id, semester_id, title,
                description, category, max_per_member, max_per_guideline, created_by,
                created_at FROM guidelines
          WHERE realm_id = $1 AND group_id = $2 AND semester_id = $3
          ORDER BY category DESC, title",
        realm,
        group,
        semester
    )
    .fetch_all(tx.conn())
    .await?)
}

async fn guidelines_of(tx: &mut RealmTx, collection: Uuid) -> Result<Vec<Guideline>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        Guideline,
        "SELECT id, realm_id, collection_id, group_id, semester_id, title,
                description, category, max_per_member, max_per_guideline, created_by,
                created_at FROM guidelines WHERE realm_id = $1 AND collection_id = $2
          ORDER BY category DESC, title",
        realm,
        collection
    )
    .fetch_all(tx.conn())
    .await?)
}

/// A collection the viewer may see (404 otherwise), with its guidelines.
pub async fn get_visible(
    tx: &mut RealmTx,
    grants: &Grants,
    id: Uuid,
) -> Result<CollectionWithGuidelines> {
    let collection = get_collection(tx, id).await?;
    if !may_view_scores(tx, grants, collection.group_id).await? {
        return Err(Error::not_found(format!(
            "guideline collection {id} in realm {}",
            tx.realm()
        )));
    }
    let guidelines = guidelines_of(tx, id).await?;
    Ok(CollectionWithGuidelines {
        collection,
        guidelines,
    })
}

/// The collections of one group (optionally one semester) the viewer may see.
pub async fn list_for_group(
    tx: &mut RealmTx,
    grants: &Grants,
    group_id: Uuid,
    semester_id: Option<Uuid>,
) -> Result<Vec<CollectionWithGuidelines>> {
    group::get_visible(tx, grants, group_id).await?;
    if !may_view_scores(tx, grants, group_id).await? {
        return Err(Error::Forbidden(format!(
            "you may not see the scores of group {group_id} in realm {}",
            tx.realm()
        )));
    }
    let realm = tx.realm().as_str().to_string();
    let rows: Vec<Collection> = sqlx::query_as!(
        Collection,
        "SELECT id, realm_id, group_id, semester_id, name, description, created_by, created_at
           FROM guideline_collections
          WHERE realm_id = $1 AND group_id = $2 AND ($3::uuid IS NULL OR semester_id = $3)
          ORDER BY created_at, id",
        realm,
        group_id,
        semester_id
    )
    .fetch_all(tx.conn())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        let guidelines = guidelines_of(tx, c.id).await?;
        out.push(CollectionWithGuidelines {
            collection: c,
            guidelines,
        });
    }
    Ok(out)
}

/// Guidelines may change only while no scoreboard of the group and semester is
/// submitted or accepted (those are read-only and were checked against them).
async fn require_unlocked(tx: &mut RealmTx, c: &Collection) -> Result<()> {
    let realm = tx.realm().as_str().to_string();
    let locked: Option<String> = sqlx::query_scalar!(
        "SELECT status FROM scoreboards
          WHERE realm_id = $1 AND group_id = $2 AND semester_id = $3
            AND status IN ('NOT_YET_EVALUATED', 'ACCEPTED')
          LIMIT 1",
        realm,
        c.group_id,
        c.semester_id
    )
    .fetch_optional(tx.conn())
    .await?;
    match locked {
        Some(status) => Err(Error::conflict_because(
            "scoreboard_locked",
            format!(
                "the group's scoreboard for this semester is {status}, so its guidelines are \
                 read-only"
            ),
        )),
        None => Ok(()),
    }
}

pub async fn create_collection(
    tx: &mut RealmTx,
    grants: &Grants,
    new: NewCollection,
) -> Result<CollectionWithGuidelines> {
    let g = as_reference(group::get(tx, new.group_id).await)?;
    policy::require(tx, grants, Permission::EditScores, Target::Group(g.id)).await?;
    require_semester(tx, new.semester_id).await?;
    require_season(tx, new.semester_id, Act::EditGuidelines).await?;
    let name = check_text("collection name", &new.name, 1, 200)?;
    let description = new.description.unwrap_or_default();
    if description.chars().count() > 10_000 {
        return Err(Error::invalid(
            "description must be at most 10000 characters",
        ));
    }
    let realm = tx.realm().as_str().to_string();
    let collection: Collection = mapped(
        sqlx::query_as!(
            Collection,
            "INSERT INTO guideline_collections (realm_id, group_id, semester_id, name, description,
                                            created_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, realm_id, group_id, semester_id, name, description, created_by, created_at",
            realm,
            g.id,
            new.semester_id,
            name,
            description.as_str(),
            grants.viewer
        )
        .fetch_one(tx.conn())
        .await,
    )?;
    Ok(CollectionWithGuidelines {
        collection,
        guidelines: Vec::new(),
    })
}

/// A guideline's title and description as stored, once its fields pass the checks that
/// adding and editing share.
fn checked(new: &NewGuideline) -> Result<(String, String)> {
    let title = check_text("guideline title", &new.title, 1, 200)?;
    let description = new.description.as_deref().unwrap_or_default();
    if description.chars().count() > 10_000 {
        return Err(Error::invalid(
            "description must be at most 10000 characters",
        ));
    }
    if !(1..=MAX_GUIDELINE_POINTS).contains(&new.max_per_member) {
        return Err(Error::invalid(format!(
            "maxPerMember must be between 1 and {MAX_GUIDELINE_POINTS}"
        )));
    }
    if new.max_per_guideline < new.max_per_member || new.max_per_guideline > MAX_GUIDELINE_POINTS {
        return Err(Error::invalid(format!(
            "maxPerGuideline must be at least maxPerMember ({}) and at most {MAX_GUIDELINE_POINTS}",
            new.max_per_member
        )));
    }
    Ok((title, description.to_string()))
}

pub async fn add_guideline(
    tx: &mut RealmTx,
    grants: &Grants,
    collection_id: Uuid,
    new: NewGuideline,
) -> Result<Guideline> {
    let c = get_visible(tx, grants, collection_id).await?.collection;
    policy::require(
        tx,
        grants,
        Permission::EditScores,
        Target::Group(c.group_id),
    )
    .await?;
    require_unlocked(tx, &c).await?;
    require_season(tx, c.semester_id, Act::EditGuidelines).await?;
    let (title, description) = checked(&new)?;
    let realm = tx.realm().as_str().to_string();
    mapped(
        sqlx::query_as!(
            Guideline,
            "INSERT INTO guidelines (realm_id, collection_id, group_id, semester_id, title,
                                 description, category, max_per_member, max_per_guideline,
                                 created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING id, realm_id, collection_id, group_id, semester_id, title, description,
                   category, max_per_member, max_per_guideline, created_by, created_at",
            realm,
            c.id,
            c.group_id,
            c.semester_id,
            title,
            description.as_str(),
            new.category.as_str(),
            new.max_per_member,
            new.max_per_guideline,
            grants.viewer
        )
        .fetch_one(tx.conn())
        .await,
    )
}

/// The guideline `id`, if the caller may change it now: one they cannot see is not
/// found; changing it needs editScores on its group, an unlocked collection and the
/// season that allows editing guidelines.
async fn editable(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Guideline> {
    let g = get(tx, id).await?;
    if !may_view_scores(tx, grants, g.group_id).await? {
        return Err(Error::not_found(format!(
            "guideline {id} in realm {}",
            tx.realm()
        )));
    }
    policy::require(
        tx,
        grants,
        Permission::EditScores,
        Target::Group(g.group_id),
    )
    .await?;
    let c = get_collection(tx, g.collection_id).await?;
    require_unlocked(tx, &c).await?;
    require_season(tx, c.semester_id, Act::EditGuidelines).await?;
    Ok(g)
}

/// Replaces a guideline's title, description, kind and maxima (editScores on its group, in
/// the SUBMISSION season, while the group's scoreboard is not submitted). Points already
/// requested stay; the formula clamps them to the new maximum.
pub async fn update_guideline(
    tx: &mut RealmTx,
    grants: &Grants,
    id: Uuid,
    new: NewGuideline,
) -> Result<Guideline> {
    editable(tx, grants, id).await?;
    let (title, description) = checked(&new)?;
    let realm = tx.realm().as_str().to_string();
    mapped(
        sqlx::query_as!(
            Guideline,
            "UPDATE guidelines
                SET title = $3, description = $4, category = $5, max_per_member = $6,
                    max_per_guideline = $7
              WHERE realm_id = $1 AND id = $2
          RETURNING id, realm_id, collection_id, group_id, semester_id, title, description,
                    category, max_per_member, max_per_guideline, created_by, created_at",
            realm,
            id,
            title,
            description.as_str(),
            new.category.as_str(),
            new.max_per_member,
            new.max_per_guideline
        )
        .fetch_one(tx.conn())
        .await,
    )
}

pub async fn delete_guideline(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<()> {
    editable(tx, grants, id).await?;
    let realm = tx.realm().as_str().to_string();
    mapped(
        sqlx::query!(
            "DELETE FROM guidelines WHERE realm_id = $1 AND id = $2",
            realm,
            id
        )
        .execute(tx.conn())
        .await,
    )?;
    Ok(())
}

/// Copies a group's guideline collection of an earlier semester (by default the one
/// before) into a new collection for `semesterId`, guidelines and maxima included, in
/// one call (editScores on the group, in the SUBMISSION season).
pub async fn copy_collection(
    tx: &mut RealmTx,
    grants: &Grants,
    input: CopyCollection,
) -> Result<CollectionWithGuidelines> {
    let g = as_reference(group::get(tx, input.group_id).await)?;
    policy::require(tx, grants, Permission::EditScores, Target::Group(g.id)).await?;
    require_semester(tx, input.semester_id).await?;
    require_season(tx, input.semester_id, Act::EditGuidelines).await?;
    let from = match input.from_semester_id {
        Some(f) => {
            require_semester(tx, f).await?;
            f
        }
        None => previous_semester(tx, input.semester_id)
            .await?
            .ok_or_else(|| {
                Error::Unprocessable(format!(
                    "semester {} is the realm's first; there is no earlier one to copy from",
                    input.semester_id
                ))
            })?,
    };
    if from == input.semester_id {
        return Err(Error::invalid("copy from another semester than the target"));
    }
    let realm = tx.realm().as_str().to_string();
    let source: Collection = sqlx::query_as!(
        Collection,
        "SELECT id, realm_id, group_id, semester_id, name, description, created_by, created_at
           FROM guideline_collections
          WHERE realm_id = $1 AND group_id = $2 AND semester_id = $3",
        realm,
        g.id,
        from
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| {
        Error::Unprocessable(format!(
            "group {} has no guideline collection in semester {from} to copy",
            g.id
        ))
    })?;
    let name = match &input.name {
        Some(n) => check_text("collection name", n, 1, 200)?,
        None => source.name.clone(),
    };
    let collection: Collection = mapped(
        sqlx::query_as!(
            Collection,
            "INSERT INTO guideline_collections (realm_id, group_id, semester_id, name, description,
                                            created_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, realm_id, group_id, semester_id, name, description, created_by, created_at",
            realm,
            g.id,
            input.semester_id,
            name,
            source.description,
            grants.viewer
        )
        .fetch_one(tx.conn())
        .await,
    )?;
    mapped(
        sqlx::query!(
            "INSERT INTO guidelines (realm_id, collection_id, group_id, semester_id, title,
                                 description, category, max_per_member, max_per_guideline,
                                 created_by)
         SELECT realm_id, $3, group_id, $4, title, description, category, max_per_member,
                max_per_guideline, $5
           FROM guidelines WHERE realm_id = $1 AND collection_id = $2",
            realm,
            source.id,
            collection.id,
            input.semester_id,
            grants.viewer
        )
        .execute(tx.conn())
        .await,
    )?;
    let guidelines = guidelines_of(tx, collection.id).await?;
    Ok(CollectionWithGuidelines {
        collection,
        guidelines,
    })
}
