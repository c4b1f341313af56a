//! A group's post names (pek-next's `poszttipus`): the posts its members may be given.
//!
//! The leader's post is built in: every group has it, under the key [`LEADER`] that the
//! policies and the only-leader rule know, and it is neither renamed nor deleted (pages
//! name it in their own language). The other names are the group's own, unique in it.
//! A rename renames the post on the members holding it. Deleting a post that members
//! hold (in any status, former and archived ones included, whose history names it) is
//! refused with the reason `post_held`: the post is taken from them first, so nobody's
//! posts change as a side effect of tidying the list.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result, ResultExt};
use crate::group;
use crate::policy::{self, Grants, Permission, Target};
use crate::text::Line;

/// The built-in leader post's key in `memberships.posts`.
pub const LEADER: &str = "leader";

/// One post name of a group.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    /// The name members hold; for the built-in leader post its key, `leader`.
    pub name: String,
    /// The built-in leader post (not renamed, not deleted).
    pub builtin: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Posts {
    /// The leader's post first, then the group's own names in Hungarian alphabetical order.
    pub items: Vec<Post>,
}

/// A new post name, or a new name for one.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostName {
    /// 1–50 characters after trimming; unique in the group; not `leader`.
    pub name: Line<50>,
}

/// Who may manage a group's post names: whoever may manage its memberships (the posts
/// are given to members there). The one place this is decided.
async fn require_manage(tx: &mut RealmTx, grants: &Grants, group_id: Uuid) -> Result<()> {
    policy::require(tx, grants, Permission::EditMembers, Target::Group(group_id)).await
}

fn duplicate(name: &str) -> Error {
    Error::conflict_because(
        "duplicate_post",
        format!("the group already has a post named {name:?}"),
    )
}

fn checked(name: &Line<50>) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("a post name must be 1-50 characters"));
    }
    if name == LEADER {
        // The built-in post's key: a second "leader" would grant the leader's rights.
        return Err(duplicate(name));
    }
    Ok(name.to_string())
}

/// The group's post names (anyone who may see the group).
pub async fn list(tx: &mut RealmTx, grants: &Grants, group_id: Uuid) -> Result<Posts> {
    group::get_visible(tx, grants, group_id).await?;
    let realm = tx.realm().as_str().to_string();
    let names = sqlx::query_scalar!(
        r#"SELECT name FROM group_posts WHERE realm_id = $1 AND group_id = $2
            ORDER BY pek_hu_sort_key(name) COLLATE "C", name"#,
        realm,
        group_id
    )
    .fetch_all(tx.conn())
    .await?;
    let mut items = vec![Post {
        name: LEADER.to_string(),
        builtin: true,
    }];
    items.extend(names.into_iter().map(|name| Post {
        name,
        builtin: false,
    }));
    Ok(Posts { items })
}

/// Adds a post name (editMembers on the group).
pub async fn create(
    tx: &mut RealmTx,
    grants: &Grants,
    group_id: Uuid,
    new: PostName,
) -> Result<Post> {
    group::get_visible(tx, grants, group_id).await?;
    require_manage(tx, grants, group_id).await?;
    let name = checked(&new.name)?;
    let realm = tx.realm().as_str().to_string();
    sqlx::query!(
        "INSERT INTO group_posts (realm_id, group_id, name) VALUES ($1, $2, $3)",
        realm,
        group_id,
        name
    )
    .execute(tx.conn())
    .await
    .on_constraint("group_posts_pkey", |_| duplicate(&name))?;
    Ok(Post {
        name,
        builtin: false,
    })
}

async fn existing(tx: &mut RealmTx, group_id: Uuid, name: &str) -> Result<()> {
    if name == LEADER {
        return Err(Error::conflict_because(
            "builtin_post",
            "the leader's post is built in; it is neither renamed nor deleted",
        ));
    }
    let realm = tx.realm().as_str().to_string();
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM group_posts
                           WHERE realm_id = $1 AND group_id = $2 AND name = $3) AS "found!""#,
        realm,
        group_id,
        name
    )
    .fetch_one(tx.conn())
    .await?;
    if found {
        Ok(())
    } else {
        Err(Error::not_found(format!(
            "post {name:?} of group {group_id}"
        )))
    }
}

/// Renames a post (editMembers on the group), on the members holding it too.
pub async fn rename(
    tx: &mut RealmTx,
    grants: &Grants,
    group_id: Uuid,
    old: &str,
    new: PostName,
) -> Result<Post> {
    group::get_visible(tx, grants, group_id).await?;
    require_manage(tx, grants, group_id).await?;
    existing(tx, group_id, old).await?;
    let name = checked(&new.name)?;
    if name == old {
        return Ok(Post {
            name,
            builtin: false,
        });
    }
    let realm = tx.realm().as_str().to_string();
    sqlx::query!(
        "UPDATE group_posts SET name = $4 WHERE realm_id = $1 AND group_id = $2 AND name = $3",
        realm,
        group_id,
        old,
        name
    )
    .execute(tx.conn())
    .await
    .on_constraint("group_posts_pkey", |_| duplicate(&name))?;
    // A member who (from before the list existed) already holds the new name keeps it once.
    sqlx::query!(
        "UPDATE memberships SET posts = array_replace(array_remove(posts, $4), $3, $4),
                updated_at = now()
          WHERE realm_id = $1 AND group_id = $2 AND $3 = ANY (posts)",
        realm,
        group_id,
        old,
        name
    )
    .execute(tx.conn())
    .await?;
    Ok(Post {
        name,
        builtin: false,
    })
}

/// Deletes a post name nobody holds (editMembers on the group); one that members hold is
/// refused (`post_held`).
pub async fn delete(tx: &mut RealmTx, grants: &Grants, group_id: Uuid, name: &str) -> Result<()> {
    group::get_visible(tx, grants, group_id).await?;
    require_manage(tx, grants, group_id).await?;
    existing(tx, group_id, name).await?;
    let realm = tx.realm().as_str().to_string();
    let held = sqlx::query_scalar!(
        r#"SELECT count(*) AS "held!" FROM memberships
            WHERE realm_id = $1 AND group_id = $2 AND $3 = ANY (posts)"#,
        realm,
        group_id,
        name
    )
    .fetch_one(tx.conn())
    .await?;
    if held > 0 {
        return Err(Error::conflict_because(
            "post_held",
            format!("{held} member(s) hold the post {name:?}; take it from them first"),
        ));
    }
    sqlx::query!(
        "DELETE FROM group_posts WHERE realm_id = $1 AND group_id = $2 AND name = $3",
        realm,
        group_id,
        name
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
