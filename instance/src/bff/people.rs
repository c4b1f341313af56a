//! People across realms: how a caller may see and edit someone is decided by the realms
//! the two share, each asked concurrently what its policies allow
//! (`/api/v1/realms/{realm}/profile-access`).

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use super::{merge, BackendRequest, Bff, CallerAuth, Coverage};
use crate::error::{Error, Result};
use crate::profile::{self, ProfileAccess, Scope};
use crate::realm::RealmId;

/// Asks each realm which of the given people the caller may see in full there.
/// Returns the people seen in full and which realms could say.
pub async fn judge(
    bff: &Bff,
    caller: Option<CallerAuth>,
    per_realm: &BTreeMap<RealmId, Vec<Uuid>>,
) -> Result<(HashSet<Uuid>, Coverage)> {
    let (full, _, coverage) = judge_all(bff, caller, per_realm).await?;
    Ok((full, coverage))
}

/// People the caller shares no realm with but may see because they applied to a group
/// the caller decides on ([`crate::policy::applicants_seen_by`], asked of the realms
/// where they wait and the caller is in): those of `ids` the caller may see, and at
/// which scope.
pub async fn applicants(
    bff: &Bff,
    me: Uuid,
    ids: &[Uuid],
    caller: Option<CallerAuth>,
) -> Result<Vec<(Uuid, Scope)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut per_realm: BTreeMap<RealmId, Vec<Uuid>> = BTreeMap::new();
    for (id, realm) in profile::pending_in_realms_of(&bff.db, me, ids).await? {
        per_realm.entry(realm).or_default().push(id);
    }
    if per_realm.is_empty() {
        return Ok(Vec::new());
    }
    let (full, basic, ..) = judge_all(bff, caller, &per_realm).await?;
    Ok(ids
        .iter()
        .filter_map(|id| {
            if full.contains(id) {
                Some((*id, Scope::Full))
            } else if basic.contains(id) {
                Some((*id, Scope::Basic))
            } else {
                None
            }
        })
        .collect())
}

/// [`judge`], and the people each realm lets the caller see at the basic scope only
/// (applicants): (full, basic, which realms could say).
async fn judge_all(
    bff: &Bff,
    caller: Option<CallerAuth>,
    per_realm: &BTreeMap<RealmId, Vec<Uuid>>,
) -> Result<(HashSet<Uuid>, HashSet<Uuid>, Coverage)> {
    let realms: Vec<RealmId> = per_realm.keys().cloned().collect();
    let merged = bff
        .fan_out_merged(
            &realms,
            |r| {
                BackendRequest::json(
                    axum::http::Method::POST,
                    format!("/api/v1/realms/{r}/profile-access"),
                    caller.clone(),
                    serde_json::json!({ "users": per_realm.get(r) })
                        .to_string()
                        .into_bytes(),
                )
            },
            merge::Rules::default(),
            |_, r| {
                serde_json::from_slice::<ProfileAccess>(&r.body)
                    .map(|a| (a, false))
                    .map_err(|e| e.to_string())
            },
        )
        .await?;
    let coverage = merged.coverage();
    let mut full = HashSet::new();
    let mut basic = HashSet::new();
    for (realm, a) in merged.answers {
        // A realm speaks only about the people it was asked about.
        let asked: HashSet<Uuid> = per_realm
            .get(&realm)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        full.extend(a.view_full.into_iter().filter(|u| asked.contains(u)));
        basic.extend(a.view_basic.into_iter().filter(|u| asked.contains(u)));
    }
    Ok((full, basic, coverage))
}

/// How `me` sees `target` (full or basic profile; basic where a realm could not say);
/// 404 when they share no realm.
pub async fn scope_of(
    bff: &Bff,
    me: Uuid,
    target: Uuid,
    caller: Option<CallerAuth>,
) -> Result<Scope> {
    if me == target {
        return Ok(Scope::Full);
    }
    let shared = profile::shared_realms(&bff.db, me, target).await?;
    if shared.is_empty() {
        // Someone who applied to a group the caller decides on.
        return match applicants(bff, me, &[target], caller).await?.first() {
            Some((_, scope)) => Ok(*scope),
            None => Err(Error::not_found(format!("user {target}"))),
        };
    }
    let per_realm = shared.into_iter().map(|r| (r, vec![target])).collect();
    let (full, _) = judge(bff, caller, &per_realm).await?;
    Ok(if full.contains(&target) {
        Scope::Full
    } else {
        Scope::Basic
    })
}

/// Whether `me` may write `target`'s global profile, and the scope `me` then sees it at.
/// A global profile is written by its person, or by a hub administrator; no realm role —
/// a realm's GOD included — writes it (403).
pub async fn require_edit(
    bff: &Bff,
    me: Uuid,
    target: Uuid,
    caller: Option<CallerAuth>,
) -> Result<Scope> {
    if me == target {
        return Ok(Scope::Full);
    }
    if !crate::policy::hub_admin(&bff.db, me).await? {
        return Err(Error::forbidden(format!(
            "edit the profile of user {target} (a profile is written only by its person and \
             by hub administrators)"
        )));
    }
    match scope_of(bff, me, target, caller).await {
        Ok(scope) => Ok(scope),
        Err(Error::NotFound(_)) => Ok(Scope::Basic),
        Err(e) => Err(e),
    }
}
