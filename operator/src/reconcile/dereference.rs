//! Phase 1: read and validate the Realm and what it references — suspension, the spec, which
//! Realm holds the realm id, and the admin-credentials Secret of the Postgres server.

use std::sync::Arc;

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

    let admin = admin_target(ctx, realm, &namespace)
        .await
        .map_err(Stop::failed(ConditionType::DatabaseReady))?;
    Ok(References {
        namespace,
        endpoint,
        admin,
    })
}

/// The Postgres server named by the Realm's admin-credentials Secret.
pub(crate) async fn admin_target(
    ctx: &Context,
    realm: &Realm,
    ns: &str,
) -> Result<AdminTarget, Error> {
    let name = &realm.spec.database.admin_secret_ref.name;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = ctx
        .metrics
        .timed("admin_secret", secrets.get_opt(name))
        .await?
        .ok_or_else(|| Error::AdminSecretNotFound(name.clone()))?;
    AdminTarget::from_secret(&secret)
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
