//! Groups: a tree per realm (parent in the same realm, enforced by a composite foreign
//! key), names unique per realm, no new child under an archived parent.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result, ResultExt};
use crate::page::CursorText;
use crate::page::{Cursor, Page};
use crate::policy::{self, Grants, Permission, Target};
use crate::text::{fold, Line, Prose};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Purpose {
    Unknown,
    Circle,
    Committee,
    Department,
    Event,
    Project,
    Party,
    Resort,
    Other,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Unknown => "UNKNOWN",
            Purpose::Circle => "CIRCLE",
            Purpose::Committee => "COMMITTEE",
            Purpose::Department => "DEPARTMENT",
            Purpose::Event => "EVENT",
            Purpose::Project => "PROJECT",
            Purpose::Party => "PARTY",
            Purpose::Resort => "RESORT",
            Purpose::Other => "OTHER",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: Uuid,
    pub realm_id: String,
    pub parent_id: Option<Uuid>,
    pub name: String,
    /// One of the purposes (UNKNOWN, CIRCLE, COMMITTEE, ...).
    pub purpose: String,
    pub description: String,
    pub archived: bool,
    pub created_by: Uuid,
    pub owner_id: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    pub name_folded: String,
    /// In the group directory, where every signed-in person finds it (default true).
    pub listed: bool,
    /// People may apply to join (default true); when false only invitations bring
    /// members in.
    pub users_can_apply: bool,
    /// The name's place in Hungarian alphabetical order: lists sort by it, bytewise.
    pub sort_key: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewGroup {
    pub name: Line<200>,
    pub parent_id: Option<Uuid>,
    pub purpose: Option<Purpose>,
    pub description: Option<Prose<10_000>>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupPatch {
    pub name: Option<Line<200>>,
    pub purpose: Option<Purpose>,
    pub description: Option<Prose<10_000>>,
    pub archived: Option<bool>,
    /// In the group directory or not.
    pub listed: Option<bool>,
    /// Whether people may apply to join.
    pub users_can_apply: Option<bool>,
}

const DUPLICATE_NAME: &str = "a group with this name already exists in this realm";

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("group name must be 1-200 characters"));
    }
    Ok(name.to_string())
}

fn check_description(d: &str) -> Result<()> {
    if d.chars().count() > 10_000 {
        return Err(Error::invalid(
            "description must be at most 10000 characters",
        ));
    }
    Ok(())
}

pub async fn get(tx: &mut RealmTx, id: Uuid) -> Result<Group> {
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as!(
        Group,
        r#"SELECT id, realm_id, parent_id, name, purpose, description, archived, created_by,
                owner_id, created_at, updated_at, name_folded, listed, users_can_apply,
                sort_key AS "sort_key!"
           FROM groups WHERE realm_id = $1 AND id = $2"#,
        realm,
        id
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::not_found(format!("group {id} in realm {realm}")))
}

/// Reads a group the viewer may see; one they may not see is reported as absent.
pub async fn get_visible(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Group> {
    let g = get(tx, id).await?;
    if !policy::can(tx, grants, Permission::ViewGroup, Target::Group(id)).await? {
        return Err(Error::not_found(format!(
            "group {id} in realm {}",
            tx.realm()
        )));
    }
    Ok(g)
}

pub async fn create(tx: &mut RealmTx, grants: &Grants, new: NewGroup) -> Result<Group> {
    let name = check_name(&new.name)?;
    let description = new.description.unwrap_or_default();
    check_description(&description)?;
    let realm = tx.realm().as_str().to_string();
    match new.parent_id {
        None => policy::require(tx, grants, Permission::ManageRealm, Target::Realm).await?,
        Some(parent) => {
            // Lock the parent so it cannot be archived while we add under it.
            let archived: Option<bool> = sqlx::query_scalar!(
                "SELECT archived FROM groups WHERE realm_id = $1 AND id = $2 FOR SHARE",
                realm,
                parent
            )
            .fetch_optional(tx.conn())
            .await?;
            match archived {
                None => {
                    return Err(Error::invalid(format!(
                        "parent group {parent} not found in realm {realm}"
                    )))
                }
                Some(true) => {
                    return Err(Error::invalid(format!(
                        "parent group {parent} is archived; no new groups can be created under it"
                    )))
                }
                Some(false) => {}
            }
            policy::require(tx, grants, Permission::EditGroup, Target::Group(parent)).await?;
        }
    }
    let group: Group = sqlx::query_as!(
        Group,
        r#"INSERT INTO groups (realm_id, parent_id, name, name_folded, purpose, description,
                             created_by, owner_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         RETURNING id, realm_id, parent_id, name, purpose, description, archived, created_by,
                   owner_id, created_at, updated_at, name_folded, listed, users_can_apply,
                sort_key AS "sort_key!""#,
        realm,
        new.parent_id,
        name,
        fold(&name),
        new.purpose.unwrap_or(Purpose::Unknown).as_str(),
        description.as_str(),
        grants.viewer
    )
    .fetch_one(tx.conn())
    .await
    .on_constraint("groups_realm_id_name_key", |_| {
        Error::Conflict(DUPLICATE_NAME.into())
    })
    .on_constraint("groups_realm_id_parent_id_fkey", |_| {
        Error::invalid("parent group not found in this realm")
    })?;
    if let Some(parent) = new.parent_id {
        policy::escalate_to_parent_managers(tx, parent, group.id).await?;
    }
    Ok(group)
}

pub async fn update(
    tx: &mut RealmTx,
    grants: &Grants,
    id: Uuid,
    patch: GroupPatch,
) -> Result<Group> {
    get_visible(tx, grants, id).await?;
    policy::require(tx, grants, Permission::EditGroup, Target::Group(id)).await?;
    let name = patch.name.as_deref().map(check_name).transpose()?;
    if let Some(d) = &patch.description {
        check_description(d)?;
    }
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as!(
        Group,
        r#"UPDATE groups SET
             name = COALESCE($3, name),
             name_folded = COALESCE($4, name_folded),
             purpose = COALESCE($5, purpose),
             description = COALESCE($6, description),
             archived = COALESCE($7, archived),
             listed = COALESCE($8, listed),
             users_can_apply = COALESCE($9, users_can_apply),
             updated_at = now()
          WHERE realm_id = $1 AND id = $2
          RETURNING id, realm_id, parent_id, name, purpose, description, archived, created_by,
                    owner_id, created_at, updated_at, name_folded, listed, users_can_apply,
                sort_key AS "sort_key!""#,
        realm,
        id,
        name.as_deref(),
        name.as_deref().map(fold),
        patch.purpose.map(|p| p.as_str()),
        patch.description.as_deref(),
        patch.archived,
        patch.listed,
        patch.users_can_apply
    )
    .fetch_one(tx.conn())
    .await
    .on_constraint("groups_realm_id_name_key", |_| {
        Error::Conflict(DUPLICATE_NAME.into())
    })
}

pub async fn move_owner(tx: &mut RealmTx, grants: &Grants, id: Uuid, owner: Uuid) -> Result<Group> {
    get_visible(tx, grants, id).await?;
    policy::require(tx, grants, Permission::MoveGroupOwner, Target::Group(id)).await?;
    // Owning a group puts a person's name on it and gives them full rights there: only
    // for someone who is in the realm by their own consent.
    if owner != grants.viewer && !policy::person_of_realm(tx, owner).await? {
        return Err(Error::invalid(format!(
            "user {owner} is not a person of realm {} (a member who joined or accepted, or \
             someone who accepted a role there); invite them first",
            tx.realm()
        )));
    }
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        Group,
        r#"UPDATE groups SET owner_id = $3, updated_at = now()
          WHERE realm_id = $1 AND id = $2
          RETURNING id, realm_id, parent_id, name, purpose, description, archived, created_by,
                    owner_id, created_at, updated_at, name_folded, listed, users_can_apply,
                sort_key AS "sort_key!""#,
        realm,
        id,
        owner
    )
    .fetch_one(tx.conn())
    .await?)
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupQuery {
    /// Words of the name, in any order, each the start of a word of the name (case- and
    /// accent-insensitive): "web" finds "Kir-Dev Web".
    pub q: Option<Line<200>>,
    /// Only children of this group.
    pub parent_id: Option<Uuid>,
    /// Include archived groups (default false).
    pub include_archived: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<CursorText>,
}

/// The regular expressions a folded group name must all match for the search `q`: each
/// word of `q` starts a word of the name. `None` for no search words.
fn name_patterns(q: Option<&str>) -> Option<Vec<String>> {
    let words = crate::text::search_words(q?);
    // The words are letters and digits only, so they need no escaping.
    (!words.is_empty()).then(|| words.iter().map(|w| format!("(^|[^a-z0-9]){w}")).collect())
}

/// Groups the viewer may see ([`policy::can`]'s `viewGroup`: granted, owned, member of,
/// or listed in the directory), in Hungarian alphabetical order.
pub async fn search(
    tx: &mut RealmTx,
    grants: &Grants,
    q: &GroupQuery,
    limit: i64,
    cursor: Option<Cursor>,
) -> Result<Page<Group>> {
    let realm = tx.realm().as_str().to_string();
    let patterns = name_patterns(q.q.as_deref());
    let see_all = grants.realm_wide(Permission::ViewGroup);
    let granted = grants.groups_with(Permission::ViewGroup);
    let listed = policy::realm_listed(tx).await?;
    let (after_key, after_id) = match &cursor {
        Some(c) => (Some(c.key.clone()), Some(c.id)),
        None => (None, None),
    };
    let rows: Vec<Group> = sqlx::query_as!(
        Group,
        r#"SELECT id, realm_id, parent_id, name, purpose, description, archived, created_by,
                owner_id, created_at, updated_at, name_folded, listed, users_can_apply,
                sort_key AS "sort_key!"
           FROM groups g
          WHERE g.realm_id = $1
            AND ($2::text[] IS NULL OR g.name_folded ~ ALL($2))
            AND ($3::uuid IS NULL OR g.parent_id = $3)
            AND ($4 OR NOT g.archived)
            AND ($5::text IS NULL
                 OR (g.sort_key COLLATE "C", g.id) > ($5::text COLLATE "C", $6::uuid))
            AND ($7 OR g.owner_id = $8 OR g.id = ANY($9) OR ($11 AND g.listed)
                 OR EXISTS (SELECT 1 FROM memberships m
                             WHERE m.realm_id = g.realm_id AND m.group_id = g.id
                               AND m.user_id = $8 AND m.status IN ('NEWBIE', 'ACTIVE')))
          ORDER BY g.sort_key COLLATE "C", g.id
          LIMIT $10"#,
        realm,
        patterns.as_deref(),
        q.parent_id,
        q.include_archived.unwrap_or(false),
        after_key,
        after_id,
        see_all,
        grants.viewer,
        &granted,
        limit + 1,
        listed
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(Page::from_rows(rows, limit, |g| (g.sort_key.clone(), g.id)))
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectoryQuery {
    /// Words of the name, in any order, each the start of a word of the name (case- and
    /// accent-insensitive).
    pub q: Option<Line<200>>,
    /// At most this many groups (default 50, at most 200).
    pub limit: Option<u32>,
    pub cursor: Option<CursorText>,
}

/// A group as the directory shows it to every signed-in person.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryGroup {
    pub id: Uuid,
    pub realm_id: String,
    pub parent_id: Option<Uuid>,
    pub name: String,
    /// One of the purposes (UNKNOWN, CIRCLE, COMMITTEE, ...).
    pub purpose: String,
    pub description: String,
    /// Whether people may apply to join.
    pub users_can_apply: bool,
    /// Current members (newbies and active members).
    pub member_count: i64,
    /// The current members who hold the `leader` post.
    pub leader_ids: Vec<Uuid>,
    /// The name's place in Hungarian alphabetical order (compare bytewise).
    pub sort_key: String,
}

/// A group of the federation's directory, as every signed-in person sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryEntry {
    #[serde(flatten)]
    pub group: DirectoryGroup,
    /// The realm's display name.
    pub realm_name: String,
    /// The leaders (basic profile: names and nickname only).
    pub leaders: Vec<crate::profile::UserView>,
}

/// A page of the group directory merged from every realm.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryPage {
    pub items: Vec<DirectoryEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Which realms the answer covers (`partial`, `unavailable`, `leftOut`,
    /// `signInRequired`).
    #[serde(flatten)]
    pub coverage: crate::bff::Coverage,
}

/// The realm's groups in the directory ([`policy::realm_listed`] and the group's own
/// `listed`; archived groups take no one and are left out), in Hungarian alphabetical
/// order. An unlisted realm has none.
pub async fn directory(
    tx: &mut RealmTx,
    q: &DirectoryQuery,
    limit: i64,
    cursor: Option<Cursor>,
) -> Result<Page<DirectoryGroup>> {
    if !policy::realm_listed(tx).await? {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    }
    let realm = tx.realm().as_str().to_string();
    let patterns = name_patterns(q.q.as_deref());
    let (after_key, after_id) = match &cursor {
        Some(c) => (Some(c.key.clone()), Some(c.id)),
        None => (None, None),
    };
    let rows = sqlx::query_as!(
        DirectoryGroup,
        r#"SELECT g.id, g.realm_id, g.parent_id, g.name, g.purpose, g.description,
                  g.users_can_apply, g.sort_key AS "sort_key!",
                  (SELECT count(*) FROM memberships m
                    WHERE m.realm_id = g.realm_id AND m.group_id = g.id
                      AND m.status IN ('NEWBIE', 'ACTIVE')) AS "member_count!",
                  ARRAY(SELECT m.user_id FROM memberships m
                         WHERE m.realm_id = g.realm_id AND m.group_id = g.id
                           AND m.status IN ('NEWBIE', 'ACTIVE') AND 'leader' = ANY (m.posts)
                         ORDER BY m.start_at, m.user_id) AS "leader_ids!"
             FROM groups g
            WHERE g.realm_id = $1 AND g.listed AND NOT g.archived
              AND ($2::text[] IS NULL OR g.name_folded ~ ALL($2))
              AND ($3::text IS NULL
                   OR (g.sort_key COLLATE "C", g.id) > ($3::text COLLATE "C", $4::uuid))
            ORDER BY g.sort_key COLLATE "C", g.id
            LIMIT $5"#,
        realm,
        patterns.as_deref(),
        after_key,
        after_id,
        limit + 1
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(Page::from_rows(rows, limit, |g| (g.sort_key.clone(), g.id)))
}
