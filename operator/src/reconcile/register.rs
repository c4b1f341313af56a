//! Phase 5: register the realm with the hub, unless that is known to be done.

use std::time::Instant;

use kube::ResourceExt;
use pek_crds::condition::{ConditionStatus, ConditionType, RealmCondition, Reason};
use pek_crds::Realm;
use tracing::warn;

use super::dereference::References;
use super::{desired, key, publish, Context, Stop};
use crate::events::EventType;
use crate::hub::{Registered, Registration, RegistryEntry};
use crate::Error;

/// Message on the Registered condition (and a Warning event) when the operator has no
/// federation secret.
pub(crate) const NO_FEDERATION_SECRET: &str = "workers cannot report membership changes to the \
    hub: the operator has no federation secret (PEK_FEDERATION_SECRET_FILE), so no \
    <name>-hub-token Secret is written; membership changes wait in the worker's outbox";

/// Registers the realm (an Event when that is news) and returns the Registered condition.
/// `was_registered`: whether the status this reconcile started from says Registered=True.
/// Another Realm with this realm id owning the hub's entry (e.g. one that another operator
/// watches) refuses this one, and its entry is left alone.
pub(crate) async fn register(
    ctx: &Context,
    realm: &Realm,
    refs: &References,
    was_registered: bool,
) -> Result<RealmCondition, Stop> {
    let news = match ensure_registered(ctx, realm, refs, was_registered).await {
        Ok(news) => news,
        Err(Error::Conflict(message)) => {
            return Err(Stop::Refused {
                reason: Reason::RegistrationInUse,
                message,
            })
        }
        Err(error) => {
            return Err(Stop::Failed {
                condition: ConditionType::Registered,
                error,
            })
        }
    };
    if news {
        publish(
            ctx,
            realm,
            EventType::Normal,
            "Registered",
            "Register",
            format!(
                "registered realm {} with the hub at {}",
                realm.spec.realm_id, refs.endpoint
            ),
        )
        .await;
    }
    let mut message = format!("the hub lists realm {}", realm.spec.realm_id);
    if ctx.config.federation_secret.is_none() {
        message = format!("{message}; but {NO_FEDERATION_SECRET}");
    }
    Ok(RealmCondition::new(
        ConditionType::Registered,
        ConditionStatus::True,
        Reason::Registered,
        message,
    ))
}

/// Registers the realm with the hub unless that is known to be done. Returns whether this was
/// news (an Event is due): a new entry, or the Realm was not registered before.
///
/// Known to be done: this operator registered exactly this within the resync period (its own
/// record beats a cached Realm whose status lags behind); or, after that, the hub's registry
/// (one listing per resync for all Realms) still holds exactly this entry.
async fn ensure_registered(
    ctx: &Context,
    realm: &Realm,
    refs: &References,
    registered: bool,
) -> Result<bool, Error> {
    let image = desired::worker_image(realm, &ctx.config);
    let reg = Registration {
        display_name: realm.display_name().to_string(),
        endpoint: refs.endpoint.clone(),
        version: desired::version_of(image),
        owner_uid: realm.uid(),
        providers: realm.spec.providers.clone(),
    };
    let k = key(realm);
    let record = ctx.registered.lock().ok().and_then(|r| r.get(&k).cloned());
    if record
        .as_ref()
        .is_some_and(|(last, at)| *last == reg && at.elapsed() < ctx.config.resync)
    {
        return Ok(false);
    }
    // A record that differs means the registration changed: no need to ask the hub first.
    let verify = record.as_ref().map_or(registered, |(last, _)| *last == reg);
    if verify {
        if let Some(entry) = registry_entry(ctx, &realm.spec.realm_id).await {
            if entry.matches(&reg) {
                if let Ok(mut r) = ctx.registered.lock() {
                    r.insert(k, (reg, Instant::now()));
                }
                return Ok(false);
            }
        }
    }
    let outcome = ctx.hub.register(&realm.spec.realm_id, &reg).await?;
    if let Ok(mut r) = ctx.registered.lock() {
        r.insert(k, (reg, Instant::now()));
    }
    Ok(outcome == Registered::Created || !registered)
}

/// The hub's entry for `realm_id` from the shared listing, fetched anew when it is older than
/// the resync period. None when the hub does not list it, or the listing failed (then the
/// caller registers, which reports the hub's error if it is down).
async fn registry_entry(ctx: &Context, realm_id: &str) -> Option<RegistryEntry> {
    let mut listing = ctx.listing.lock().await;
    let stale = listing
        .as_ref()
        .is_none_or(|(at, _)| at.elapsed() >= ctx.config.resync);
    if stale {
        match ctx.hub.list().await {
            Ok(items) => {
                let map = items.into_iter().map(|e| (e.id.clone(), e)).collect();
                *listing = Some((Instant::now(), map));
            }
            Err(e) => {
                warn!(error = %e.message(), "could not list the hub registry; registering instead");
                return None;
            }
        }
    }
    listing.as_ref().and_then(|(_, m)| m.get(realm_id).cloned())
}
