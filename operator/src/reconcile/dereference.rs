//! Phase 1: read and validate the Realm and what it references — suspension, the spec, which
//! Realm holds the realm id, and the admin-credentials Secret of the Postgres server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use pek_crds::condition::{ConditionType, Reason};
use pek_crds::Realm;

use super::{desired, Context, Stop};
use crate::db::AdminTarget;
use crate::Error;

/// What the later phases need from the Realm's surroundings.
pub(crate) struct References {
    pub namespace: String,
    /// In-cluster URL of the worker (what the hub is told, and `status.endpoint`).
    pub endpoint: String,
    /// The Postgres server, from the admin-credentials Secret.
    pub admin: AdminTarget,
}

/// Reads and validates; stops when the Realm is suspended, invalid, or refused because another
/// Realm holds its realm id.
pub(crate) async fn dereference(ctx: &Context, realm: &Realm) -> Result<References, Stop> {
    if realm.spec.suspend {
        return Err(Stop::Suspended);
    }
    desired::validate(realm, &ctx.config).map_err(Stop::failed(ConditionType::Ready))?;
    let namespace = desired::namespace(realm).map_err(Stop::failed(ConditionType::Ready))?;
    let endpoint = desired::endpoint(realm).map_err(Stop::failed(ConditionType::Ready))?;

    if let Some(holder) = realm_id_holder(ctx, realm) {
        return Err(Stop::Refused {
            reason: Reason::RealmIdInUse,
            message: format!(
                "realmId {} is already used by Realm {}/{} (created earlier); this Realm is \
                 refused and changes nothing (database, worker, hub registration). Give it \
                 another realmId or delete the other Realm",
                realm.spec.realm_id,
                holder.namespace().unwrap_or_default(),
                holder.name_any()
            ),
        });
    }

    let admin = admin_target(ctx, realm, &namespace, true)
        .await
        .map_err(Stop::failed(ConditionType::DatabaseReady))?;
    Ok(References {
        namespace,
        endpoint,
        admin,
    })
}

/// How long an admin Secret read is reused (a changed admin Secret is seen this much later).
const ADMIN_SECRET_REUSE: Duration = Duration::from_secs(10);

/// The Postgres server named by the Realm's admin-credentials Secret; with `reuse`, one read in
/// the last [`ADMIN_SECRET_REUSE`] serves (deletion always reads it anew).
pub(crate) async fn admin_target(
    ctx: &Context,
    realm: &Realm,
    ns: &str,
    reuse: bool,
) -> Result<AdminTarget, Error> {
    let name = &realm.spec.database.admin_secret_ref.name;
    let reuse_key = format!("{ns}/{name}");
    let recent = ctx
        .admin_targets
        .lock()
        .ok()
        .and_then(|t| t.get(&reuse_key).cloned())
        .filter(|(_, at)| reuse && at.elapsed() < ADMIN_SECRET_REUSE);
    if let Some((target, _)) = recent {
        return Ok(target);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = ctx
        .metrics
        .timed("admin_secret", secrets.get_opt(name))
        .await?
        .ok_or_else(|| Error::AdminSecretNotFound(name.clone()))?;
    let target = AdminTarget::from_secret(&secret)?;
    if let Ok(mut t) = ctx.admin_targets.lock() {
        t.insert(reuse_key, (target.clone(), Instant::now()));
    }
    Ok(target)
}

/// The Realm that holds `realm`'s realm id, when it is another one: of all Realms with the
/// same realm id, the oldest (then the smaller uid) holds it, in any namespace the operator
/// watches. Consistent from every Realm's point of view, so exactly one proceeds.
pub(crate) fn realm_id_holder(ctx: &Context, realm: &Realm) -> Option<Arc<Realm>> {
    let store = ctx.realms.get()?;
    let key_of = |r: &Realm| {
        (
            r.metadata.creation_timestamp.clone().map(|t| t.0),
            r.uid().unwrap_or_default(),
        )
    };
    let mine = key_of(realm);
    store
        .state()
        .into_iter()
        .filter(|r| r.spec.realm_id == realm.spec.realm_id && r.uid() != realm.uid())
        .filter(|r| key_of(r) < mine)
        .min_by_key(|r| key_of(r))
}
