//! Policies and permissions (DESIGN §4). One question answers everything:
//! [`can`]`(viewer, action, target)` inside a realm transaction, so the answer can only
//! ever be about that realm.
//!
//! Rules:
//! - the realm's GOD policy allows everything, in that realm only;
//! - the directory: every signed-in person may see a group (`viewGroup`, nothing more)
//!   unless the realm is unlisted (its feature flag [`UNLISTED_FLAG`]) or the group is
//!   (`listed` false) — see [`realm_listed`];
//! - a group's owner (initially its creator) has full rights on it; active members may
//!   view it and its members; a member holding the `leader` post manages it (members,
//!   group, scores) but cannot evaluate scores or move the owner;
//! - statements grant permissions realm-wide, on one group, or on one user; a statement
//!   on a group also covers, for user-directed permissions, the group's current
//!   (NEWBIE, ACTIVE) members, whose membership they consented to;
//! - about people, every answer (GOD's included) is only for people of this realm
//!   ([`person_of_realm`]: consented presence only);
//! - a policy assignment to someone who is not a person of the realm is an offer, which
//!   grants and exposes nothing until the person accepts it;
//! - a child policy may hold only what its parent holds;
//! - creating a child group gives every policy that manages the parent an escalation
//!   statement on the child (view members, view group, move owner), in the same realm.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result, ResultExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Permission {
    ViewMembers,
    EditMembers,
    ViewGroup,
    EditGroup,
    MoveGroupOwner,
    ViewScores,
    EditScores,
    EvaluateScores,
    ViewBasicProfile,
    ViewFullProfile,
    /// Realm settings: root groups, semesters, feature flags.
    ManageRealm,
}

impl Permission {
    /// There is no permission to edit a person's profile: a global profile is written
    /// only by its person (and by hub administrators, audited), never by a realm role.
    pub const ALL: [Permission; 11] = [
        Permission::ViewMembers,
        Permission::EditMembers,
        Permission::ViewGroup,
        Permission::EditGroup,
        Permission::MoveGroupOwner,
        Permission::ViewScores,
        Permission::EditScores,
        Permission::EvaluateScores,
        Permission::ViewBasicProfile,
        Permission::ViewFullProfile,
        Permission::ManageRealm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewMembers => "viewMembers",
            Permission::EditMembers => "editMembers",
            Permission::ViewGroup => "viewGroup",
            Permission::EditGroup => "editGroup",
            Permission::MoveGroupOwner => "moveGroupOwner",
            Permission::ViewScores => "viewScores",
            Permission::EditScores => "editScores",
            Permission::EvaluateScores => "evaluateScores",
            Permission::ViewBasicProfile => "viewBasicProfile",
            Permission::ViewFullProfile => "viewFullProfile",
            Permission::ManageRealm => "manageRealm",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// What a group's `leader` may do on it.
    fn leader_may(self) -> bool {
        matches!(
            self,
            Permission::ViewMembers
                | Permission::EditMembers
                | Permission::ViewGroup
                | Permission::EditGroup
                | Permission::ViewScores
                | Permission::EditScores
        )
    }

    /// Permissions about a person (as opposed to a group or the realm).
    pub fn is_user_directed(self) -> bool {
        matches!(
            self,
            Permission::ViewBasicProfile | Permission::ViewFullProfile
        )
    }
}

/// Granted to every policy that manages a parent group when a child group is created.
pub const ESCALATION: [Permission; 3] = [
    Permission::ViewMembers,
    Permission::ViewGroup,
    Permission::MoveGroupOwner,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Realm,
    Group(Uuid),
    User(Uuid),
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct GrantRow {
    is_god: bool,
    group_id: Option<Uuid>,
    user_id: Option<Uuid>,
    permissions: Option<Vec<String>>,
}

/// What a viewer holds in the transaction's realm, loaded once per request.
#[derive(Debug, Clone)]
pub struct Grants {
    pub viewer: Uuid,
    pub god: bool,
    statements: Vec<(Option<Uuid>, Option<Uuid>, HashSet<Permission>)>,
}

impl Grants {
    pub async fn load(tx: &mut RealmTx, viewer: Uuid) -> Result<Grants> {
        let realm = tx.realm().as_str().to_string();
        let rows: Vec<GrantRow> = sqlx::query_as!(
            GrantRow,
            r#"SELECT p.is_god, s.group_id AS "group_id?", s.user_id AS "user_id?",
                      s.permissions AS "permissions?"
               FROM policy_assignments a
               JOIN policies p ON p.realm_id = a.realm_id AND p.id = a.policy_id
               LEFT JOIN statements s ON s.realm_id = a.realm_id AND s.policy_id = a.policy_id
              WHERE a.realm_id = $1 AND a.user_id = $2 AND a.accepted_at IS NOT NULL"#,
            realm,
            viewer
        )
        .fetch_all(tx.conn())
        .await?;
        let god = rows.iter().any(|r| r.is_god);
        let statements = rows
            .into_iter()
            .filter_map(|r| {
                let perms = r
                    .permissions?
                    .iter()
                    .filter_map(|p| Permission::parse(p))
                    .collect();
                Some((r.group_id, r.user_id, perms))
            })
            .collect();
        Ok(Grants {
            viewer,
            god,
            statements,
        })
    }

    /// Holds `action` realm-wide (a statement with no group and no user restriction).
    pub fn realm_wide(&self, action: Permission) -> bool {
        self.god
            || self
                .statements
                .iter()
                .any(|(g, u, p)| g.is_none() && u.is_none() && p.contains(&action))
    }

    /// Groups on which a statement grants `action` directly.
    pub fn groups_with(&self, action: Permission) -> Vec<Uuid> {
        self.statements
            .iter()
            .filter(|(g, u, p)| g.is_some() && u.is_none() && p.contains(&action))
            .filter_map(|(g, _, _)| *g)
            .collect()
    }
}

/// The one permission check. `grants` must have been loaded in the same realm as `tx`.
pub async fn can(
    tx: &mut RealmTx,
    grants: &Grants,
    action: Permission,
    target: Target,
) -> Result<bool> {
    // GOD allows everything in this realm, but only about this realm's things: a person
    // who is not in the realm is not the GOD's to judge.
    if grants.god && !matches!(target, Target::User(u) if u != grants.viewer) {
        return Ok(true);
    }
    let realm = tx.realm().as_str().to_string();
    match target {
        Target::Realm => Ok(grants.realm_wide(action)),
        Target::Group(group) => {
            if grants
                .statements
                .iter()
                .any(|(g, u, p)| u.is_none() && g.is_none_or(|g| g == group) && p.contains(&action))
            {
                return Ok(true);
            }
            let row = sqlx::query!(
                r#"SELECT g.owner_id, g.listed, m.status AS "status?", m.posts AS "posts?"
                   FROM groups g
                   LEFT JOIN memberships m ON m.realm_id = g.realm_id AND m.group_id = g.id
                        AND m.user_id = $3
                        AND m.status IN ('NEWBIE', 'ACTIVE', 'APPLIED', 'INVITED')
                  WHERE g.realm_id = $1 AND g.id = $2"#,
                realm,
                group,
                grants.viewer
            )
            .fetch_optional(tx.conn())
            .await?
            .map(|r| (r.owner_id, r.listed, r.status, r.posts));
            let Some((owner, listed, status, posts)) = row else {
                return Ok(false);
            };
            if owner == grants.viewer {
                return Ok(true);
            }
            if action == Permission::ViewGroup && listed && realm_listed(tx).await? {
                return Ok(true);
            }
            // An applicant or invitee may see the group they are deciding about, nothing
            // more; current members may view it and its members.
            if matches!(status.as_deref(), Some("APPLIED" | "INVITED")) {
                return Ok(action == Permission::ViewGroup);
            }
            if status.is_some() {
                if matches!(action, Permission::ViewGroup | Permission::ViewMembers) {
                    return Ok(true);
                }
                let leader = posts.unwrap_or_default().iter().any(|p| p == "leader");
                if leader && action.leader_may() {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Target::User(user) => {
            if user == grants.viewer && action.is_user_directed() {
                return Ok(true);
            }
            // Only about people of this realm.
            if !person_of_realm(tx, user).await? {
                return Ok(false);
            }
            if grants.god {
                return Ok(true);
            }
            let mut via_groups = Vec::new();
            for (g, u, p) in &grants.statements {
                if !p.contains(&action) || u.is_some_and(|u| u != user) {
                    continue;
                }
                match g {
                    None => return Ok(true),
                    Some(g) => via_groups.push(*g),
                }
            }
            if via_groups.is_empty() {
                return Ok(false);
            }
            // A group statement covers the group's current members only: consented
            // (not applied/invited) and not gone (not FORMER/ARCHIVED).
            let member: bool = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM memberships
                                 WHERE realm_id = $1 AND user_id = $2 AND group_id = ANY($3)
                                   AND status IN ('NEWBIE', 'ACTIVE')) AS "member!""#,
                realm,
                user,
                &via_groups
            )
            .fetch_one(tx.conn())
            .await?;
            Ok(member)
        }
    }
}

/// The realm's feature flag that keeps all its groups out of the directory.
pub const UNLISTED_FLAG: &str = "directory.unlisted";

/// Whether the realm's groups are in the directory, where every signed-in person may
/// find them and see each listed one (`viewGroup`; its members, scores and people stay
/// as private as ever). A realm leaves the directory by enabling its feature flag
/// [`UNLISTED_FLAG`]; a group by clearing its `listed`.
pub async fn realm_listed(tx: &mut RealmTx) -> Result<bool> {
    let realm = tx.realm().as_str().to_string();
    let unlisted: Option<bool> = sqlx::query_scalar!(
        "SELECT enabled FROM feature_flags WHERE realm_id = $1 AND key = $2",
        realm,
        UNLISTED_FLAG
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(unlisted != Some(true))
}

/// "A person of the realm" — whoever this realm may see and act on. The one rule, for
/// every visibility and permission check, lives in the database (`pek_person_of_realm`,
/// the same function the federation table and a worker's outbox use): consented presence
/// only — a consented membership that is not archived (NEWBIE, ACTIVE, FORMER), or a role
/// the person accepted (a configured administrator's grant counts as accepted). Pending
/// applications, invitations and role offers do not count.
pub async fn person_of_realm(tx: &mut RealmTx, user: Uuid) -> Result<bool> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_scalar!(
        r#"SELECT pek_person_of_realm($2, $1) AS "in_realm!""#,
        realm,
        user
    )
    .fetch_one(tx.conn())
    .await?)
}

/// Applicants are seen by those who decide on them: a person who applies to a group
/// shows their basic profile (names, nickname) to whoever may edit that group's members —
/// the application is their consent to that — and to no one else (they are not yet a
/// [`person_of_realm`]). Which of `users` the viewer may so see.
pub async fn applicants_seen_by(
    tx: &mut RealmTx,
    grants: &Grants,
    users: &[Uuid],
) -> Result<HashSet<Uuid>> {
    let realm = tx.realm().as_str().to_string();
    let rows = sqlx::query!(
        "SELECT user_id, group_id FROM memberships
          WHERE realm_id = $1 AND user_id = ANY($2) AND status = 'APPLIED'",
        realm,
        users
    )
    .fetch_all(tx.conn())
    .await?;
    let mut seen = HashSet::new();
    for r in rows {
        if !seen.contains(&r.user_id)
            && can(
                tx,
                grants,
                Permission::EditMembers,
                Target::Group(r.group_id),
            )
            .await?
        {
            seen.insert(r.user_id);
        }
    }
    Ok(seen)
}

/// Which of `users` are people of the realm ([`person_of_realm`] for many at once).
pub async fn people_of_realm(tx: &mut RealmTx, users: &[Uuid]) -> Result<HashSet<Uuid>> {
    let realm = tx.realm().as_str().to_string();
    let rows: Vec<Uuid> = sqlx::query_scalar!(
        r#"SELECT u AS "user_id!" FROM unnest($2::uuid[]) AS u
            WHERE pek_person_of_realm(u, $1)"#,
        realm,
        users
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().collect())
}

/// Hub administrators: the people who hold the hub realm's GOD policy. Besides a person
/// themself, only they write that person's global profile (audited) or end their
/// sessions.
pub async fn hub_admin(db: &crate::db::Db, user: Uuid) -> Result<bool> {
    let mut tx = db.realm(&crate::realm::RealmId::hub()).await?;
    let grants = Grants::load(&mut tx, user).await?;
    tx.commit().await?;
    Ok(grants.god)
}

/// Reading realm-wide settings (semesters, feature flags, evaluation settings) needs a
/// foot in the realm: GOD, or [`person_of_realm`]; a "no" is a 403.
pub async fn require_in_realm(tx: &mut RealmTx, grants: &Grants) -> Result<()> {
    if grants.god || person_of_realm(tx, grants.viewer).await? {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "you are not a member of realm {}",
            tx.realm()
        )))
    }
}

/// Checks `action` and turns a "no" into a 403 saying what was refused.
pub async fn require(
    tx: &mut RealmTx,
    grants: &Grants,
    action: Permission,
    target: Target,
) -> Result<()> {
    if can(tx, grants, action, target).await? {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "you lack the {} permission {} in realm {}",
            action.as_str(),
            match target {
                Target::Realm => "realm-wide".to_string(),
                Target::Group(g) => format!("on group {g}"),
                Target::User(u) => format!("on user {u}"),
            },
            tx.realm()
        )))
    }
}

// ---------------------------------------------------------------------------------------
// Policies, statements, assignments

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub id: Uuid,
    pub realm_id: String,
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub is_god: bool,
    pub created_by: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    pub id: Uuid,
    pub policy_id: Uuid,
    pub group_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub permissions: Vec<Permission>,
    /// Added automatically when a child group was created.
    pub escalation: bool,
}

#[derive(sqlx::FromRow)]
struct StatementRow {
    id: Uuid,
    policy_id: Uuid,
    group_id: Option<Uuid>,
    user_id: Option<Uuid>,
    permissions: Vec<String>,
    escalation: bool,
}

impl From<StatementRow> for Statement {
    fn from(r: StatementRow) -> Self {
        Statement {
            id: r.id,
            policy_id: r.policy_id,
            group_id: r.group_id,
            user_id: r.user_id,
            permissions: r
                .permissions
                .iter()
                .filter_map(|p| Permission::parse(p))
                .collect(),
            escalation: r.escalation,
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub user_id: Uuid,
    pub policy_id: Uuid,
    pub realm_id: String,
    pub assigned_by: Option<Uuid>,
    pub assigned_at: chrono::DateTime<chrono::Utc>,
    /// Made from configuration (the realm's administrators list), not by a person.
    pub from_config: bool,
    /// When the person took the role on. Absent: an offer the person has not accepted
    /// yet, which grants nothing and does not make them a person of the realm.
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn get_policy(tx: &mut RealmTx, id: Uuid) -> Result<Policy> {
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as!(
        Policy,
        "SELECT id, realm_id, name, parent_id, is_god, created_by, created_at
           FROM policies WHERE realm_id = $1 AND id = $2",
        realm,
        id
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::not_found(format!("policy {id} in realm {realm}")))
}

/// Reading a realm's policies and everyone's assignments needs manageRealm realm-wide.
async fn require_policy_reader(tx: &mut RealmTx, grants: &Grants) -> Result<()> {
    require(tx, grants, Permission::ManageRealm, Target::Realm).await
}

/// A policy with its statements: for the people who hold it, and for policy readers.
pub async fn policy_with_statements(
    tx: &mut RealmTx,
    grants: &Grants,
    id: Uuid,
) -> Result<(Policy, Vec<Statement>)> {
    let policy = get_policy(tx, id).await?;
    let held = list_assignments(tx, Some(grants.viewer))
        .await?
        .iter()
        .any(|a| a.policy_id == id);
    if !held {
        require_policy_reader(tx, grants).await?;
    }
    let statements = statements_of(tx, id).await?;
    Ok((policy, statements))
}

/// The realm's policies (policy readers).
pub async fn list_policies(tx: &mut RealmTx, grants: &Grants) -> Result<Vec<Policy>> {
    require_policy_reader(tx, grants).await?;
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        Policy,
        "SELECT id, realm_id, name, parent_id, is_god, created_by, created_at
           FROM policies WHERE realm_id = $1 ORDER BY name",
        realm
    )
    .fetch_all(tx.conn())
    .await?)
}

pub async fn statements_of(tx: &mut RealmTx, policy: Uuid) -> Result<Vec<Statement>> {
    let realm = tx.realm().as_str().to_string();
    let rows: Vec<StatementRow> = sqlx::query_as!(
        StatementRow,
        "SELECT id, policy_id, group_id, user_id, permissions, escalation
           FROM statements WHERE realm_id = $1 AND policy_id = $2 ORDER BY created_at, id",
        realm,
        policy
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(Statement::from).collect())
}

/// Ids of the policies the viewer holds, and of all their ancestors' descendants: the
/// policies a viewer may issue are those it holds and those below them.
async fn issuable_policies(tx: &mut RealmTx, viewer: Uuid) -> Result<HashSet<Uuid>> {
    let realm = tx.realm().as_str().to_string();
    let ids: Vec<Uuid> = sqlx::query_scalar!(
        r#"WITH RECURSIVE below AS (
             SELECT policy_id AS id FROM policy_assignments
              WHERE realm_id = $1 AND user_id = $2 AND accepted_at IS NOT NULL
             UNION
             SELECT p.id FROM policies p JOIN below b ON p.parent_id = b.id WHERE p.realm_id = $1
         ) SELECT id AS "id!" FROM below"#,
        realm,
        viewer
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(ids.into_iter().collect())
}

/// Creates a policy. Root policies are the GOD's to make; a child may be made by anyone
/// who may issue its parent.
pub async fn create_policy(
    tx: &mut RealmTx,
    grants: &Grants,
    name: &str,
    parent: Option<Uuid>,
) -> Result<Policy> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid("policy name must be 1-100 characters"));
    }
    match parent {
        None if !grants.god => return Err(Error::forbidden("create a root policy (GOD only)")),
        Some(p) => {
            get_policy(tx, p).await?;
            if !grants.god && !issuable_policies(tx, grants.viewer).await?.contains(&p) {
                return Err(Error::forbidden(format!(
                    "create a policy under {p} (you may only extend policies you hold)"
                )));
            }
        }
        None => {}
    }
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as!(
        Policy,
        "INSERT INTO policies (realm_id, name, parent_id, created_by) VALUES ($1, $2, $3, $4)
         RETURNING id, realm_id, name, parent_id, is_god, created_by, created_at",
        realm,
        name,
        parent,
        grants.viewer
    )
    .fetch_one(tx.conn())
    .await
    .on_constraint("policies_realm_id_name_key", |_| {
        Error::Conflict("a policy with this name already exists in this realm".into())
    })
    .on_constraint("policies_realm_id_parent_id_fkey", |_| {
        Error::invalid("parent policy not found in this realm")
    })
}

/// Does `parent` (a policy's statements, or GOD) cover a statement with this scope?
fn covered(
    parent_god: bool,
    parent: &[Statement],
    group: Option<Uuid>,
    user: Option<Uuid>,
    perms: &[Permission],
) -> Vec<Permission> {
    if parent_god {
        return Vec::new();
    }
    perms
        .iter()
        .copied()
        .filter(|p| {
            !parent.iter().any(|s| {
                s.permissions.contains(p)
                    && (s.group_id.is_none() || s.group_id == group)
                    && (s.user_id.is_none() || s.user_id == user)
            })
        })
        .collect()
}

pub async fn add_statement(
    tx: &mut RealmTx,
    grants: &Grants,
    policy_id: Uuid,
    group: Option<Uuid>,
    user: Option<Uuid>,
    permissions: &[Permission],
) -> Result<Statement> {
    if permissions.is_empty() {
        return Err(Error::invalid("a statement needs at least one permission"));
    }
    let policy = get_policy(tx, policy_id).await?;
    if policy.is_god {
        return Err(Error::invalid("the GOD policy already allows everything"));
    }
    if !may_shape(tx, grants, policy_id).await? {
        return Err(Error::forbidden(format!("change policy {policy_id}")));
    }
    if let Some(parent_id) = policy.parent_id {
        let parent = get_policy(tx, parent_id).await?;
        let parent_statements = statements_of(tx, parent_id).await?;
        let missing = covered(parent.is_god, &parent_statements, group, user, permissions);
        if !missing.is_empty() {
            return Err(Error::invalid(format!(
                "policy {:?} may hold only what its parent {:?} holds; the parent lacks {} for this scope",
                policy.name,
                parent.name,
                missing
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    insert_statement(tx, policy_id, group, user, permissions, false).await
}

async fn insert_statement(
    tx: &mut RealmTx,
    policy_id: Uuid,
    group: Option<Uuid>,
    user: Option<Uuid>,
    permissions: &[Permission],
    escalation: bool,
) -> Result<Statement> {
    let realm = tx.realm().as_str().to_string();
    let perms: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
    let row: StatementRow = sqlx::query_as!(
        StatementRow,
        "INSERT INTO statements (realm_id, policy_id, group_id, user_id, permissions, escalation)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, policy_id, group_id, user_id, permissions, escalation",
        realm,
        policy_id,
        group,
        user,
        &perms as &[&str],
        escalation
    )
    .fetch_one(tx.conn())
    .await
    .on_constraint("statements_realm_id_group_id_fkey", |_| {
        Error::invalid("group not found in this realm")
    })
    .on_constraint("statements_realm_id_policy_id_fkey", |_| {
        Error::invalid("policy not found in this realm")
    })?;
    Ok(row.into())
}

pub async fn remove_statement(
    tx: &mut RealmTx,
    grants: &Grants,
    policy_id: Uuid,
    statement_id: Uuid,
) -> Result<()> {
    let policy = get_policy(tx, policy_id).await?;
    if !may_shape(tx, grants, policy_id).await? {
        return Err(Error::forbidden(format!("change policy {policy_id}")));
    }
    let realm = tx.realm().as_str().to_string();
    let deleted = sqlx::query!(
        "DELETE FROM statements WHERE realm_id = $1 AND policy_id = $2 AND id = $3",
        realm,
        policy_id,
        statement_id
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if deleted == 0 {
        return Err(Error::not_found(format!("statement {statement_id}")));
    }
    // Children must still fit inside this policy.
    let remaining = statements_of(tx, policy_id).await?;
    let children: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM policies WHERE realm_id = $1 AND parent_id = $2",
        realm,
        policy_id
    )
    .fetch_all(tx.conn())
    .await?;
    for child in children {
        for s in statements_of(tx, child).await? {
            if s.escalation {
                continue;
            }
            if !covered(
                policy.is_god,
                &remaining,
                s.group_id,
                s.user_id,
                &s.permissions,
            )
            .is_empty()
            {
                return Err(Error::Conflict(format!(
                    "child policy {child} still relies on this statement; change it first"
                )));
            }
        }
    }
    Ok(())
}

/// You may shape a policy below one you hold, never one you hold yourself.
async fn may_shape(tx: &mut RealmTx, grants: &Grants, policy_id: Uuid) -> Result<bool> {
    if grants.god {
        return Ok(true);
    }
    let issuable = issuable_policies(tx, grants.viewer).await?;
    let held = held_policies(tx, grants.viewer).await?;
    Ok(issuable.contains(&policy_id) && !held.contains(&policy_id))
}

async fn held_policies(tx: &mut RealmTx, viewer: Uuid) -> Result<HashSet<Uuid>> {
    let realm = tx.realm().as_str().to_string();
    let ids: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT policy_id FROM policy_assignments
          WHERE realm_id = $1 AND user_id = $2 AND accepted_at IS NOT NULL",
        realm,
        viewer
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(ids.into_iter().collect())
}

/// Assigns a policy; the assigner must have the right to issue it (hold it or one of
/// its ancestors, or be GOD). Only GOD hands out GOD. The caller must already have made
/// sure the user exists (the hub's user directory). To a person of the realm (or to
/// oneself) the role is given at once; to anyone else it is an offer, which the person
/// accepts ([`accept_offer`]) or declines ([`decline_offer`]) and which until then grants
/// nothing and exposes nothing.
pub async fn assign(
    tx: &mut RealmTx,
    grants: &Grants,
    user: Uuid,
    policy_id: Uuid,
) -> Result<Assignment> {
    let policy = get_policy(tx, policy_id).await?;
    let allowed = grants.god
        || (!policy.is_god
            && issuable_policies(tx, grants.viewer)
                .await?
                .contains(&policy_id));
    if !allowed {
        return Err(Error::forbidden(format!(
            "issue policy {:?} (you may issue only policies you hold and those below them)",
            policy.name
        )));
    }
    let consented = user == grants.viewer || person_of_realm(tx, user).await?;
    insert_assignment(tx, user, policy_id, Some(grants.viewer), consented).await
}

/// Records an assignment: accepted at once when `consented`, an offer otherwise.
pub(crate) async fn insert_assignment(
    tx: &mut RealmTx,
    user: Uuid,
    policy_id: Uuid,
    by: Option<Uuid>,
    consented: bool,
) -> Result<Assignment> {
    let realm = tx.realm().as_str().to_string();
    // A grant the configuration made becomes this person's grant when they give it by
    // hand, so taking the person off the configured list later keeps it.
    sqlx::query_as!(
        Assignment,
        "INSERT INTO policy_assignments (realm_id, user_id, policy_id, assigned_by, accepted_at)
         VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END)
         ON CONFLICT (realm_id, user_id, policy_id) DO UPDATE
             SET from_config = false, assigned_by = EXCLUDED.assigned_by, assigned_at = now()
             WHERE policy_assignments.from_config
         RETURNING user_id, policy_id, realm_id, assigned_by, assigned_at, from_config,
                   accepted_at",
        realm,
        user,
        policy_id,
        by,
        consented
    )
    .fetch_optional(tx.conn())
    .await
    .on_constraint("policy_assignments_realm_id_policy_id_fkey", |_| {
        Error::invalid("policy not found in this realm")
    })
    .on_constraint("policy_assignments_pkey", |_| {
        Error::Conflict("this policy is already assigned to this user".into())
    })
    // The federation table's trigger (hub) refuses a person the hub does not know.
    .on_constraint("realm_members_user_id_fkey", |_| {
        Error::invalid("no such user")
    })?
    .ok_or_else(|| Error::Conflict("this policy is already assigned to this user".into()))
}

/// A role offered to the caller: the policy they would hold, who offered it and when.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyOffer {
    pub policy_id: Uuid,
    pub policy_name: String,
    pub realm_id: String,
    pub assigned_by: Option<Uuid>,
    pub assigned_at: chrono::DateTime<chrono::Utc>,
}

/// The roles offered to the caller in this realm, not yet accepted or declined.
pub async fn my_offers(tx: &mut RealmTx, grants: &Grants) -> Result<Vec<PolicyOffer>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        PolicyOffer,
        "SELECT a.policy_id, p.name AS policy_name, a.realm_id, a.assigned_by, a.assigned_at
           FROM policy_assignments a
           JOIN policies p ON p.realm_id = a.realm_id AND p.id = a.policy_id
          WHERE a.realm_id = $1 AND a.user_id = $2 AND a.accepted_at IS NULL
          ORDER BY a.assigned_at, a.policy_id",
        realm,
        grants.viewer
    )
    .fetch_all(tx.conn())
    .await?)
}

/// The caller takes an offered role on: from now on it grants its permissions and the
/// caller is a person of the realm.
pub async fn accept_offer(
    tx: &mut RealmTx,
    grants: &Grants,
    policy_id: Uuid,
) -> Result<Assignment> {
    let realm = tx.realm().as_str().to_string();
    sqlx::query_as!(
        Assignment,
        "UPDATE policy_assignments SET accepted_at = now()
          WHERE realm_id = $1 AND user_id = $2 AND policy_id = $3 AND accepted_at IS NULL
         RETURNING user_id, policy_id, realm_id, assigned_by, assigned_at, from_config,
                   accepted_at",
        realm,
        grants.viewer,
        policy_id
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::not_found(format!("role offer of policy {policy_id} to you")))
}

/// The caller turns an offered role down; it is gone, as if never made.
pub async fn decline_offer(tx: &mut RealmTx, grants: &Grants, policy_id: Uuid) -> Result<()> {
    let realm = tx.realm().as_str().to_string();
    let n = sqlx::query!(
        "DELETE FROM policy_assignments
          WHERE realm_id = $1 AND user_id = $2 AND policy_id = $3 AND accepted_at IS NULL",
        realm,
        grants.viewer,
        policy_id
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(Error::not_found(format!(
            "role offer of policy {policy_id} to you"
        )));
    }
    Ok(())
}

pub async fn unassign(
    tx: &mut RealmTx,
    grants: &Grants,
    user: Uuid,
    policy_id: Uuid,
) -> Result<()> {
    let policy = get_policy(tx, policy_id).await?;
    let allowed = grants.god
        || (!policy.is_god
            && issuable_policies(tx, grants.viewer)
                .await?
                .contains(&policy_id));
    if !allowed {
        return Err(Error::forbidden(format!("revoke policy {:?}", policy.name)));
    }
    let realm = tx.realm().as_str().to_string();
    let from_config: Option<bool> = sqlx::query_scalar!(
        "SELECT from_config FROM policy_assignments
          WHERE realm_id = $1 AND user_id = $2 AND policy_id = $3",
        realm,
        user,
        policy_id
    )
    .fetch_optional(tx.conn())
    .await?;
    if from_config == Some(true) {
        // It would come back at the next start; the list is where it is taken away.
        return Err(Error::Conflict(
            "this grant comes from the realm's configured administrators (PEK_REALM_ADMINS / \
             the Realm's spec.admins); remove the person there"
                .into(),
        ));
    }
    let n = sqlx::query!(
        "DELETE FROM policy_assignments WHERE realm_id = $1 AND user_id = $2 AND policy_id = $3",
        realm,
        user,
        policy_id
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(Error::not_found("assignment"));
    }
    if policy.is_god {
        let left: i64 = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM policy_assignments
                WHERE realm_id = $1 AND policy_id = $2 AND accepted_at IS NOT NULL"#,
            realm,
            policy_id
        )
        .fetch_one(tx.conn())
        .await?;
        if left == 0 {
            return Err(Error::Conflict(
                "cannot revoke the last GOD of a realm".into(),
            ));
        }
    }
    Ok(())
}

/// Policy assignments, of one user or everyone's: a caller may list their own; anything
/// else needs a policy reader.
pub async fn assignments(
    tx: &mut RealmTx,
    grants: &Grants,
    user: Option<Uuid>,
) -> Result<Vec<Assignment>> {
    if user != Some(grants.viewer) {
        require_policy_reader(tx, grants).await?;
    }
    list_assignments(tx, user).await
}

pub async fn list_assignments(tx: &mut RealmTx, user: Option<Uuid>) -> Result<Vec<Assignment>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        Assignment,
        "SELECT user_id, policy_id, realm_id, assigned_by, assigned_at, from_config, accepted_at
           FROM policy_assignments
          WHERE realm_id = $1 AND ($2::uuid IS NULL OR user_id = $2)
          ORDER BY assigned_at, user_id, policy_id",
        realm,
        user
    )
    .fetch_all(tx.conn())
    .await?)
}

pub async fn god_policy(tx: &mut RealmTx) -> Result<Uuid> {
    let realm = tx.realm().as_str().to_string();
    sqlx::query_scalar!(
        "SELECT id FROM policies WHERE realm_id = $1 AND is_god",
        realm
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::Internal(anyhow::anyhow!("realm {realm} has no GOD policy")))
}

/// Makes the realm's configured administrators (by user id) hold its GOD policy, and
/// revokes the grants an earlier configuration made for people no longer listed. Grants
/// given by hand are never touched, and a GOD offer a listed person has not answered
/// becomes the configuration's (accepted) grant. A revocation that would leave the realm
/// without any GOD is not made (the realm keeps its last administrators, with a warning
/// in the log). Idempotent. Returns (granted, revoked).
pub async fn reconcile_config_gods(tx: &mut RealmTx, admins: &[Uuid]) -> Result<(u64, u64)> {
    let realm = tx.realm().as_str().to_string();
    let god = ensure_god_policy(tx).await?;
    let granted = sqlx::query!(
        "INSERT INTO policy_assignments (realm_id, user_id, policy_id, from_config, accepted_at)
         SELECT $1, u, $2, true, now() FROM unnest($3::uuid[]) AS u
         ON CONFLICT (realm_id, user_id, policy_id) DO UPDATE
             SET from_config = true, accepted_at = now()
             WHERE policy_assignments.accepted_at IS NULL",
        realm,
        god,
        admins
    )
    .execute(tx.conn())
    .await
    .on_constraint("realm_members_user_id_fkey", |_| {
        Error::invalid("no such user")
    })?
    .rows_affected();
    let remaining: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM policy_assignments
            WHERE realm_id = $1 AND policy_id = $2 AND accepted_at IS NOT NULL
              AND NOT (from_config AND NOT (user_id = ANY($3)))"#,
        realm,
        god,
        admins
    )
    .fetch_one(tx.conn())
    .await?;
    if remaining == 0 {
        tracing::warn!(
            realm = %realm,
            "the configured administrators list would leave the realm without any GOD; \
             keeping the previously configured administrators"
        );
        return Ok((granted, 0));
    }
    let revoked = sqlx::query!(
        "DELETE FROM policy_assignments
          WHERE realm_id = $1 AND policy_id = $2 AND from_config AND NOT (user_id = ANY($3))",
        realm,
        god,
        admins
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok((granted, revoked))
}

/// Creates the realm's GOD policy if missing (new realms).
pub(crate) async fn ensure_god_policy(tx: &mut RealmTx) -> Result<Uuid> {
    let realm = tx.realm().as_str().to_string();
    sqlx::query!(
        "INSERT INTO policies (realm_id, name, is_god) VALUES ($1, 'GOD', true)
         ON CONFLICT DO NOTHING",
        realm
    )
    .execute(tx.conn())
    .await?;
    god_policy(tx).await
}

/// Escalation on child-group creation: every policy in this realm holding editGroup or
/// editMembers on the parent gets view members / view group / move owner on the child.
pub(crate) async fn escalate_to_parent_managers(
    tx: &mut RealmTx,
    parent: Uuid,
    child: Uuid,
) -> Result<usize> {
    let realm = tx.realm().as_str().to_string();
    let managers: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT DISTINCT policy_id FROM statements
          WHERE realm_id = $1 AND group_id = $2 AND user_id IS NULL AND NOT escalation
            AND permissions && ARRAY['editGroup', 'editMembers']",
        realm,
        parent
    )
    .fetch_all(tx.conn())
    .await?;
    for policy in &managers {
        insert_statement(tx, *policy, Some(child), None, &ESCALATION, true).await?;
    }
    Ok(managers.len())
}
