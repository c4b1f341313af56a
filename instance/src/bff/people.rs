//! People across realms: how a caller may see and edit someone is decided by the realms
//! the two share, each asked concurrently what its policies allow
//! (`/api/v1/realms/{realm}/profile-access`).

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use super::{merge, BackendRequest, Bff, CallerAuth};
use crate::error::{Error, Result};
use crate::profile::{self, ProfileAccess, Scope};
use crate::realm::RealmId;

/// Asks each realm what the caller may do with the given people there.
/// Returns (full view, edit, unavailable realms).
pub async fn judge(
    bff: &Bff,
    caller: Option<CallerAuth>,
    per_realm: &BTreeMap<RealmId, Vec<Uuid>>,
) -> Result<(HashSet<Uuid>, HashSet<Uuid>, Vec<RealmId>)> {
    let realms: Vec<RealmId> = per_realm.keys().cloned().collect();
    let outcomes = bff
        .fan_out(&realms, |r| {
            BackendRequest::json(
                axum::http::Method::POST,
                format!("/api/v1/realms/{r}/profile-access"),
                caller.clone(),
                serde_json::json!({ "users": per_realm.get(r) })
                    .to_string()
                    .into_bytes(),
            )
        })
        .await;
    let merged = merge::merge(outcomes, merge::Rules::default(), |_, r| {
        serde_json::from_slice::<ProfileAccess>(&r.body)
            .map(|a| (a, false))
            .map_err(|e| e.to_string())
    })?;
    let (mut full, mut edit) = (HashSet::new(), HashSet::new());
    for (realm, a) in merged.answers {
        // A realm speaks only about the people it was asked about.
        let asked: HashSet<Uuid> = per_realm
            .get(&realm)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        full.extend(a.view_full.into_iter().filter(|u| asked.contains(u)));
        edit.extend(a.edit.into_iter().filter(|u| asked.contains(u)));
    }
    Ok((full, edit, merged.unavailable))
}

/// How `me` sees `target` (full or basic profile), whether `me` may edit them, and the
/// realms that could not say; 404 when they share no realm.
pub async fn scope_of(
    bff: &Bff,
    me: Uuid,
    target: Uuid,
    caller: Option<CallerAuth>,
) -> Result<(Scope, bool, Vec<RealmId>)> {
    if me == target {
        return Ok((Scope::Full, true, Vec::new()));
    }
    let shared = profile::shared_realms(&bff.db, me, target).await?;
    if shared.is_empty() {
        return Err(Error::not_found(format!("user {target}")));
    }
    let per_realm = shared.into_iter().map(|r| (r, vec![target])).collect();
    let (full, edit, unavailable) = judge(bff, caller, &per_realm).await?;
    let scope = if full.contains(&target) {
        Scope::Full
    } else {
        Scope::Basic
    };
    Ok((scope, edit.contains(&target), unavailable))
}

/// The scope `me` sees `target` at, if `me` may edit `target`'s profile: 404 when they
/// share no realm (not being able to see someone means not being able to edit them
/// either), 503 when a realm that might allow it did not answer, 403 otherwise.
pub async fn require_edit(
    bff: &Bff,
    me: Uuid,
    target: Uuid,
    caller: Option<CallerAuth>,
) -> Result<Scope> {
    let (scope, may_edit, unavailable) = scope_of(bff, me, target, caller).await?;
    if may_edit {
        return Ok(scope);
    }
    if !unavailable.is_empty() {
        return Err(Error::Unavailable(format!(
            "cannot check your rights now: realm(s) {} did not answer",
            unavailable
                .iter()
                .map(RealmId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Err(Error::forbidden(format!(
        "edit the profile of user {target}"
    )))
}
