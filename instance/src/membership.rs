//! Memberships: a user in a group of this realm, with a status and posts.
//!
//! Nobody gains rights over a person without that person's consent, so a membership
//! starts pending: the person **applies** (APPLIED) and someone with `editMembers`
//! accepts, or someone with `editMembers` **invites** (INVITED) and the person accepts.
//! Either way it then becomes NEWBIE. Only consented memberships (NEWBIE, ACTIVE, FORMER,
//! ARCHIVED) count for permissions, profile visibility, the federation table and points;
//! pending ones are seen only by the person and the group's `viewMembers` holders.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::RealmTx;
use crate::error::{Error, Result, ResultExt};
use crate::group;
use crate::page::{Cursor, Page};
use crate::policy::{self, Grants, Permission, Target};
use crate::text::Line;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// The person asked to join; waits for someone with editMembers.
    Applied,
    /// Someone with editMembers asked the person; waits for the person.
    Invited,
    Newbie,
    Active,
    /// Öregtag: left the group, still part of its history.
    Former,
    Archived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "APPLIED",
            Status::Invited => "INVITED",
            Status::Newbie => "NEWBIE",
            Status::Active => "ACTIVE",
            Status::Former => "FORMER",
            Status::Archived => "ARCHIVED",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Applied,
            Status::Invited,
            Status::Newbie,
            Status::Active,
            Status::Former,
            Status::Archived,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Not yet consented to by both sides.
    pub fn is_pending(self) -> bool {
        matches!(self, Status::Applied | Status::Invited)
    }

    /// The status changes someone with editMembers may make on a consented membership:
    /// NEWBIE → ACTIVE → FORMER → ARCHIVED, a newbie who quits becomes FORMER. Nothing
    /// leads back into the realm by someone else's hand: the person may have left on their
    /// own, so coming back to a current status takes a new application or invitation, and
    /// ARCHIVED → FORMER (which makes them a person of the realm again) is only offered
    /// to the person, who accepts or declines it.
    fn may_become(self, next: Status) -> bool {
        use Status::*;
        self == next
            || matches!(
                (self, next),
                (Newbie, Active) | (Newbie, Former) | (Active, Former) | (Former, Archived)
            )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub id: Uuid,
    pub realm_id: String,
    pub group_id: Uuid,
    pub user_id: Uuid,
    /// APPLIED or INVITED (pending, not yet consented), NEWBIE, ACTIVE, FORMER or ARCHIVED.
    pub status: String,
    /// Posts held in the group, e.g. `leader`.
    pub posts: Vec<String>,
    pub start_at: chrono::DateTime<chrono::Utc>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// An archived membership someone offered to bring back (to FORMER): the person
    /// accepts (`POST …/accept`) or declines (`POST …/decline`) it.
    pub reopen_offered_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Membership {
    fn status(&self) -> Result<Status> {
        Status::parse(&self.status).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "membership {} has unknown status {:?}",
                self.id,
                self.status
            ))
        })
    }
}

/// Constraint violations a membership write can cause, as the client's mistakes. The
/// federation table's trigger (hub) refuses a person the hub does not know.
fn on_write<T>(r: std::result::Result<T, sqlx::Error>) -> Result<T> {
    r.on_constraint("memberships_realm_id_user_id_group_id_key", |_| {
        Error::Conflict(ALREADY_MEMBER.into())
    })
    .on_constraint("memberships_one_live", |_| {
        Error::Conflict(ALREADY_MEMBER.into())
    })
    .on_constraint("memberships_realm_id_group_id_fkey", |_| {
        Error::invalid("group not found in this realm")
    })
    .on_constraint("realm_members_user_id_fkey", |_| {
        Error::invalid("no such user")
    })
    // The database's own rule (realm migration `membership_posts_of_group`): a post the
    // group does not have. Its message names the post.
    .on_constraint("memberships_posts_of_group", |db| Error::Refused {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        reason: "unknown_post",
        message: format!(
            "{}; a group's posts are managed at /api/v1/realms/{{realm}}/groups/{{id}}/posts",
            db.message()
        ),
    })
}

const ALREADY_MEMBER: &str = "this user is already a member of this group";

/// A membership with evaluation history cannot be deleted.
fn on_delete<T>(r: std::result::Result<T, sqlx::Error>) -> Result<T> {
    let msg = "this membership has point or entry award requests; set its status to FORMER \
               or ARCHIVED instead of deleting it";
    r.on_constraint("point_requests_membership_fkey", |_| {
        Error::Conflict(msg.into())
    })
    .on_constraint("entry_award_requests_membership_fkey", |_| {
        Error::Conflict(msg.into())
    })
    .on_constraint("realm_members_user_id_fkey", |_| {
        Error::invalid("no such user")
    })
}

/// An invitation: the person becomes a member once they accept it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMembership {
    pub user_id: Uuid,
    /// Posts the person will hold once they accept.
    pub posts: Option<Vec<Line<50>>>,
    /// When the membership started (for recording an old membership); by default it
    /// starts when the person accepts.
    #[serde(default, deserialize_with = "crate::text::date::opt_timestamp")]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MembershipPatch {
    /// NEWBIE → ACTIVE → FORMER → ARCHIVED; NEWBIE → FORMER. ARCHIVED → FORMER is an
    /// offer to the person (the answer shows the membership still ARCHIVED, with
    /// `reopenOfferedAt`), who accepts or declines it. Pending memberships change only by
    /// being accepted; a former member comes back through a new application or invitation.
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
    sqlx::query_as!(
        Membership,
        "SELECT id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at
           FROM memberships WHERE realm_id = $1 AND id = $2",
        realm,
        id
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| Error::not_found(format!("membership {id} in realm {realm}")))
}

/// A membership the viewer may see (their own, or with viewMembers or editMembers on its
/// group); any
/// other is reported as absent.
pub async fn get_visible(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Membership> {
    let m = get(tx, id).await?;
    if m.user_id != grants.viewer
        && !policy::can(
            tx,
            grants,
            Permission::ViewMembers,
            Target::Group(m.group_id),
        )
        .await?
        && !policy::can(
            tx,
            grants,
            Permission::EditMembers,
            Target::Group(m.group_id),
        )
        .await?
    {
        return Err(Error::not_found(format!(
            "membership {id} in realm {}",
            tx.realm()
        )));
    }
    Ok(m)
}

/// The person's live (pending or current) membership in the group, if any.
async fn existing(tx: &mut RealmTx, group_id: Uuid, user: Uuid) -> Result<Option<Membership>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        Membership,
        "SELECT id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at
           FROM memberships WHERE realm_id = $1 AND group_id = $2 AND user_id = $3
            AND status IN ('APPLIED', 'INVITED', 'NEWBIE', 'ACTIVE')",
        realm,
        group_id,
        user
    )
    .fetch_optional(tx.conn())
    .await?)
}

/// Why a second membership of the same person in the same group is refused.
fn already(m: &Membership, you: bool) -> Error {
    let who = if you { "you" } else { "this user" };
    Error::Conflict(match m.status.as_str() {
        "APPLIED" => format!("{who} already applied to this group (membership {})", m.id),
        "INVITED" => format!(
            "{who} already have an invitation to this group (membership {}); it is accepted \
             with POST …/memberships/{}/accept",
            m.id, m.id
        ),
        other => format!(
            "{who} already have a membership in this group (membership {}, {other})",
            m.id
        ),
    })
}

/// Invites `new.user_id` (editMembers on the group). The caller must already have made
/// sure the user exists (the hub's user directory). The person becomes a member only
/// when they accept.
pub async fn invite(
    tx: &mut RealmTx,
    grants: &Grants,
    group_id: Uuid,
    new: NewMembership,
) -> Result<Membership> {
    let g = group::get_visible(tx, grants, group_id).await?;
    policy::require(tx, grants, Permission::EditMembers, Target::Group(group_id)).await?;
    if g.archived {
        return Err(Error::Conflict(
            "the group is archived; it takes no new members".into(),
        ));
    }
    let posts = check_posts(&new.posts.unwrap_or_default())?;
    if let Some(m) = existing(tx, group_id, new.user_id).await? {
        return Err(already(&m, new.user_id == grants.viewer));
    }
    let realm = tx.realm().as_str().to_string();
    // start_at = created_at (the same now()) marks "starts when accepted" (see accept).
    on_write(
        sqlx::query_as!(
            Membership,
            "INSERT INTO memberships (realm_id, group_id, user_id, status, posts, start_at)
             VALUES ($1, $2, $3, 'INVITED', $4, COALESCE($5, now()))
             RETURNING id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at",
            realm,
            group_id,
            new.user_id,
            &posts,
            new.start_at
        )
        .fetch_one(tx.conn())
        .await,
    )
}

/// The caller applies to a group. Knowing the group's id is enough: applying gives the
/// applicant nothing but the right to see the group and their own application.
pub async fn apply(tx: &mut RealmTx, grants: &Grants, group_id: Uuid) -> Result<Membership> {
    // A group the person cannot see (an unlisted one) cannot be applied to either.
    let g = group::get_visible(tx, grants, group_id).await?;
    if g.archived {
        return Err(Error::conflict_because(
            "group_archived",
            "the group is archived; it takes no new members",
        ));
    }
    if !g.users_can_apply {
        return Err(Error::conflict_because(
            "applications_closed",
            "the group takes no applications; its leaders invite new members",
        ));
    }
    if let Some(m) = existing(tx, group_id, grants.viewer).await? {
        return Err(already(&m, true));
    }
    let realm = tx.realm().as_str().to_string();
    on_write(
        sqlx::query_as!(
            Membership,
            "INSERT INTO memberships (realm_id, group_id, user_id, status)
             VALUES ($1, $2, $3, 'APPLIED')
             RETURNING id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at",
            realm,
            group_id,
            grants.viewer
        )
        .fetch_one(tx.conn())
        .await,
    )
}

fn wrong_state(m: &Membership, what: &str) -> Error {
    Error::Conflict(format!("membership {} is {}; {what}", m.id, m.status))
}

/// Accepts a pending membership: the invited person accepts an invitation, someone with
/// editMembers accepts an application. Either way it becomes NEWBIE. The person also
/// accepts an offer to bring their archived membership back (it becomes FORMER).
pub async fn accept(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Membership> {
    let m = get_visible(tx, grants, id).await?;
    if m.status()? == Status::Archived && m.reopen_offered_at.is_some() {
        if m.user_id != grants.viewer {
            return Err(Error::forbidden(format!(
                "accept the offer to bring back membership {id} (only its person can)"
            )));
        }
        return set_status(tx, &m, Status::Former, None, None).await;
    }
    match m.status()? {
        Status::Invited => {
            if m.user_id != grants.viewer {
                return Err(Error::forbidden(format!(
                    "accept invitation {id} (only the invited person can)"
                )));
            }
        }
        Status::Applied => {
            policy::require(
                tx,
                grants,
                Permission::EditMembers,
                Target::Group(m.group_id),
            )
            .await?;
        }
        _ => {
            return Err(wrong_state(
                &m,
                "only an application or an invitation can be accepted",
            ))
        }
    }
    let g = group::get(tx, m.group_id).await?;
    if g.archived {
        return Err(Error::Conflict(
            "the group is archived; it takes no new members".into(),
        ));
    }
    let realm = tx.realm().as_str().to_string();
    // A start that was not given explicitly (start_at = created_at) is the moment of
    // consent. The status guard makes a concurrent second accept a no-op error.
    on_write(
        sqlx::query_as!(
            Membership,
            "UPDATE memberships SET status = 'NEWBIE',
                 start_at = CASE WHEN start_at = created_at THEN greatest(now(), start_at)
                                 ELSE start_at END,
                 updated_at = now()
              WHERE realm_id = $1 AND id = $2 AND status = $3
              RETURNING id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at",
            realm,
            id,
            m.status
        )
        .fetch_optional(tx.conn())
        .await,
    )?
    .ok_or_else(|| Error::Conflict(format!("membership {id} changed meanwhile; please retry")))
}

async fn delete_pending(tx: &mut RealmTx, m: &Membership) -> Result<()> {
    let realm = tx.realm().as_str().to_string();
    let n = on_delete(
        sqlx::query!(
            "DELETE FROM memberships WHERE realm_id = $1 AND id = $2 AND status = $3",
            realm,
            m.id,
            m.status
        )
        .execute(tx.conn())
        .await,
    )?
    .rows_affected();
    if n == 0 {
        return Err(Error::Conflict(format!(
            "membership {} changed meanwhile; please retry",
            m.id
        )));
    }
    Ok(())
}

/// Someone with editMembers turns an application down (it is deleted).
pub async fn reject(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<()> {
    let m = get_visible(tx, grants, id).await?;
    policy::require(
        tx,
        grants,
        Permission::EditMembers,
        Target::Group(m.group_id),
    )
    .await?;
    if m.status()? != Status::Applied {
        return Err(wrong_state(&m, "only an application can be rejected"));
    }
    delete_pending(tx, &m).await
}

/// The person drops their own pending membership: withdraws an application
/// (`expected` APPLIED) or declines an invitation (`expected` INVITED).
pub async fn drop_own(tx: &mut RealmTx, grants: &Grants, id: Uuid, expected: Status) -> Result<()> {
    let m = get_visible(tx, grants, id).await?;
    if m.user_id != grants.viewer {
        return Err(Error::forbidden(format!(
            "{} membership {id} (only its person can)",
            if expected == Status::Applied {
                "withdraw"
            } else {
                "decline"
            }
        )));
    }
    if expected == Status::Invited
        && m.status()? == Status::Archived
        && m.reopen_offered_at.is_some()
    {
        let realm = tx.realm().as_str().to_string();
        let n = sqlx::query!(
            "UPDATE memberships SET reopen_offered_at = NULL, updated_at = now()
              WHERE realm_id = $1 AND id = $2 AND reopen_offered_at IS NOT NULL",
            realm,
            id
        )
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::Conflict(format!(
                "membership {id} changed meanwhile; please retry"
            )));
        }
        return Ok(());
    }
    if m.status()? != expected {
        return Err(wrong_state(
            &m,
            if expected == Status::Applied {
                "only an application can be withdrawn"
            } else {
                "only an invitation can be declined"
            },
        ));
    }
    delete_pending(tx, &m).await
}

/// The person leaves a group they are a current member of: the membership becomes
/// FORMER (öregtag) and closes now.
pub async fn leave(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<Membership> {
    let m = get_visible(tx, grants, id).await?;
    if m.user_id != grants.viewer {
        return Err(Error::forbidden(format!(
            "leave on behalf of someone else (membership {id})"
        )));
    }
    if !matches!(m.status()?, Status::Newbie | Status::Active) {
        return Err(wrong_state(
            &m,
            "only a current (NEWBIE or ACTIVE) membership can be left; withdraw an \
             application, decline an invitation",
        ));
    }
    // A group is not left without anyone to run it: its only leader hands the post over
    // (gives it to another member) before leaving.
    if m.posts.iter().any(|p| p == "leader") {
        let realm = tx.realm().as_str().to_string();
        let others: bool = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM memberships
                             WHERE realm_id = $1 AND group_id = $2 AND id <> $3
                               AND status IN ('NEWBIE', 'ACTIVE')
                               AND 'leader' = ANY (posts)) AS "others!""#,
            realm,
            m.group_id,
            m.id
        )
        .fetch_one(tx.conn())
        .await?;
        if !others {
            return Err(Error::conflict_because(
                "only_leader",
                format!(
                    "you are the only leader of group {}; give the leader post to another \
                     member before leaving",
                    m.group_id
                ),
            ));
        }
    }
    set_status(tx, &m, Status::Former, None, None).await
}

async fn set_status(
    tx: &mut RealmTx,
    m: &Membership,
    status: Status,
    posts: Option<Vec<String>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Membership> {
    // Leaving (FORMER/ARCHIVED) closes the membership unless an end is given.
    let closes = matches!(status, Status::Former | Status::Archived);
    let realm = tx.realm().as_str().to_string();
    let row = on_write(
        sqlx::query_as!(
            Membership,
            "UPDATE memberships SET
                 status = $3,
                 posts = COALESCE($4, posts),
                 until = CASE WHEN $5::timestamptz IS NOT NULL THEN $5
                              WHEN $6 AND until IS NULL THEN greatest(now(), start_at)
                              ELSE until END,
                 reopen_offered_at = NULL,
                 updated_at = now()
              WHERE realm_id = $1 AND id = $2 AND status = $7
              RETURNING id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at",
            realm,
            m.id,
            status.as_str(),
            posts.as_deref(),
            until,
            closes,
            m.status
        )
        .fetch_optional(tx.conn())
        .await,
    )?;
    match row {
        Some(m) => Ok(m),
        None => Err(changed_meanwhile(tx, m.id).await),
    }
}

/// A guarded write that found no row: the membership was deleted (404) or its status
/// changed (409) since it was read.
async fn changed_meanwhile(tx: &mut RealmTx, id: Uuid) -> Error {
    match get(tx, id).await {
        Ok(_) => Error::Conflict(format!("membership {id} changed meanwhile; please retry")),
        Err(e) => e,
    }
}

/// Status, posts and end of a consented membership (editMembers on its group).
pub async fn update(
    tx: &mut RealmTx,
    grants: &Grants,
    id: Uuid,
    patch: MembershipPatch,
) -> Result<Membership> {
    let m = get_visible(tx, grants, id).await?;
    policy::require(
        tx,
        grants,
        Permission::EditMembers,
        Target::Group(m.group_id),
    )
    .await?;
    let current = m.status()?;
    if current.is_pending() {
        return Err(wrong_state(
            &m,
            "a pending membership changes only by being accepted (POST …/accept)",
        ));
    }
    let next = patch.status.unwrap_or(current);
    if current == Status::Archived && next == Status::Former {
        return offer_reopen(tx, &m, patch).await;
    }
    if next.is_pending() {
        return Err(Error::invalid(format!(
            "status {} is set only by applying or inviting",
            next.as_str()
        )));
    }
    if !current.may_become(next) {
        return Err(Error::Conflict(format!(
            "membership {id} cannot go from {} to {}; allowed: NEWBIE → ACTIVE or FORMER, \
             ACTIVE → FORMER, FORMER → ARCHIVED; ARCHIVED → FORMER is offered to the person \
             (a former member comes back with their consent: a new application or \
             invitation)",
            current.as_str(),
            next.as_str()
        )));
    }
    let posts = patch.posts.as_deref().map(check_posts).transpose()?;
    if next == current {
        // Posts and end only; the status stays.
        let realm = tx.realm().as_str().to_string();
        let row = on_write(
            sqlx::query_as!(
                Membership,
                "UPDATE memberships SET posts = COALESCE($3, posts), until = COALESCE($4, until),
                     updated_at = now()
                  WHERE realm_id = $1 AND id = $2 AND status = $5
                  RETURNING id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at",
                realm,
                id,
                posts.as_deref(),
                patch.until,
                m.status
            )
            .fetch_optional(tx.conn())
            .await,
        )?;
        return match row {
            Some(m) => Ok(m),
            None => Err(changed_meanwhile(tx, id).await),
        };
    }
    set_status(tx, &m, next, posts, patch.until).await
}

/// ARCHIVED → FORMER by someone with editMembers: the membership would make its person a
/// person of the realm again, so it is offered to them instead (like an invitation); the
/// membership stays archived until they accept. Posts and end may not ride along.
async fn offer_reopen(
    tx: &mut RealmTx,
    m: &Membership,
    patch: MembershipPatch,
) -> Result<Membership> {
    if patch.posts.is_some() || patch.until.is_some() {
        return Err(Error::invalid(
            "bringing an archived membership back is offered to its person; change posts \
             or end in a separate request",
        ));
    }
    let realm = tx.realm().as_str().to_string();
    let row = sqlx::query_as!(
        Membership,
        "UPDATE memberships SET reopen_offered_at = COALESCE(reopen_offered_at, now()),
             updated_at = now()
          WHERE realm_id = $1 AND id = $2 AND status = 'ARCHIVED'
          RETURNING id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at",
        realm,
        m.id
    )
    .fetch_optional(tx.conn())
    .await?;
    match row {
        Some(m) => Ok(m),
        None => Err(changed_meanwhile(tx, m.id).await),
    }
}

/// Deletes a membership of any status (editMembers): removes a member, cancels an
/// invitation.
pub async fn remove(tx: &mut RealmTx, grants: &Grants, id: Uuid) -> Result<()> {
    let m = get_visible(tx, grants, id).await?;
    policy::require(
        tx,
        grants,
        Permission::EditMembers,
        Target::Group(m.group_id),
    )
    .await?;
    let realm = tx.realm().as_str().to_string();
    on_delete(
        sqlx::query!(
            "DELETE FROM memberships WHERE realm_id = $1 AND id = $2",
            realm,
            id
        )
        .execute(tx.conn())
        .await,
    )?;
    Ok(())
}

/// The caller's own memberships in this realm, pending ones included.
pub async fn list_mine(tx: &mut RealmTx, grants: &Grants) -> Result<Vec<Membership>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        Membership,
        "SELECT id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at
           FROM memberships WHERE realm_id = $1 AND user_id = $2
          ORDER BY created_at, id LIMIT 1000",
        realm,
        grants.viewer
    )
    .fetch_all(tx.conn())
    .await?)
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
    let rows: Vec<Membership> = sqlx::query_as!(
        Membership,
        "SELECT id, realm_id, group_id, user_id, status, posts, start_at, until, created_at, updated_at,
                    reopen_offered_at
           FROM memberships
          WHERE realm_id = $1 AND group_id = $2
            AND ($3::text IS NULL OR (user_id::text, id) > ($3, $4::uuid))
          ORDER BY user_id::text, id LIMIT $5",
        realm,
        group_id,
        after_key,
        after_id,
        limit + 1
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(Page::from_rows(rows, limit, |m| {
        (m.user_id.to_string(), m.id)
    }))
}

/// A membership with the group it is in.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupMembership {
    /// The membership's id.
    pub id: Uuid,
    pub realm_id: String,
    pub group_id: Uuid,
    pub group_name: String,
    pub group_archived: bool,
    pub user_id: Uuid,
    /// The membership's status (e.g. NEWBIE, ACTIVE, FORMER, ARCHIVED).
    pub status: String,
    /// Posts held in the group, e.g. `leader`.
    pub posts: Vec<String>,
    pub start_at: chrono::DateTime<chrono::Utc>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Set on an archived membership someone offered to bring back; only its person
    /// decides (accept or decline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopen_offered_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip)]
    #[sqlx(default)]
    pub group_name_folded: String,
}

/// A person's memberships in this realm, ordered by group name, a page at a time: all of
/// them for the person themself, otherwise those in groups whose members the caller may
/// view (the rule of reading one membership, so a list never reveals more).
pub async fn of_user(
    tx: &mut RealmTx,
    grants: &Grants,
    user: Uuid,
    limit: i64,
    cursor: Option<Cursor>,
) -> Result<Page<GroupMembership>> {
    let realm = tx.realm().clone();
    let (id, me) = (user, grants.viewer);
    // A person has a handful of memberships per realm: read them all, keep the visible
    // ones, then page, so a page is never short because of hidden rows.
    let rows: Vec<GroupMembership> = sqlx::query_as!(
        GroupMembership,
        "SELECT m.id, m.realm_id, m.group_id, g.name AS group_name,
                g.archived AS group_archived, m.user_id, m.status, m.posts, m.start_at,
                m.until, m.reopen_offered_at, g.name_folded AS group_name_folded
           FROM memberships m
           JOIN groups g ON g.realm_id = m.realm_id AND g.id = m.group_id
          WHERE m.realm_id = $1 AND m.user_id = $2
          ORDER BY g.name_folded, m.id",
        realm.as_str(),
        id
    )
    .fetch_all(tx.conn())
    .await?;
    let mut visible = Vec::with_capacity(rows.len());
    for m in rows {
        if let Some(c) = &cursor {
            if (m.group_name_folded.as_str(), m.id) <= (c.key.as_str(), c.id) {
                continue;
            }
        }
        if id == me
            || policy::can(
                tx,
                grants,
                Permission::ViewMembers,
                Target::Group(m.group_id),
            )
            .await?
        {
            visible.push(m);
        }
        if visible.len() as i64 > limit {
            break;
        }
    }
    Ok(Page::from_rows(visible, limit, |m| {
        (m.group_name_folded.clone(), m.id)
    }))
}
