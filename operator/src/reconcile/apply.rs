//! Phase 4: apply the desired objects — server-side apply, only for objects that differ from
//! what is wanted (the watch caches answer the steady state without API calls) — and read the
//! workload's readiness from the live Deployment.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use pek_crds::condition::{ConditionStatus, ConditionType, RealmCondition, Reason};
use pek_crds::Realm;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::build::WorkerObjects;
use super::{desired, diff, publish, Context};
use crate::cache::{lookup, Cached, Lookup};
use crate::config::FIELD_MANAGER;
use crate::events::EventType;
use crate::Error;

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Unchanged,
    Created,
    Updated,
}

/// Applies the worker objects in order; returns the WorkloadReady condition and the live
/// Deployment (whose rollout a credential rotation waits for).
pub(crate) async fn apply(
    ctx: &Context,
    realm: &Realm,
    ns: &str,
    objects: WorkerObjects,
) -> Result<(RealmCondition, Deployment), Error> {
    let WorkerObjects {
        service_account,
        service,
        hub_token,
        deployment,
        network_policy,
        pod_disruption_budget,
        backup,
    } = objects;
    ensure_with_event(ctx, realm, ns, &service_account).await?;
    ensure_with_event(ctx, realm, ns, &service).await?;
    if let Some(token) = &hub_token {
        ensure_with_event(ctx, realm, ns, token).await?;
    }
    let live = ensure_with_event(ctx, realm, ns, &deployment).await?;
    ensure_with_event(ctx, realm, ns, &network_policy).await?;
    match &pod_disruption_budget {
        Some(pdb) => {
            ensure_with_event(ctx, realm, ns, pdb).await?;
        }
        None => delete_our_pdb(ctx, realm, ns).await?,
    }
    match &backup {
        Some(cron_job) => {
            ensure_with_event(ctx, realm, ns, cron_job).await?;
        }
        None => {
            let why = if realm.spec.backup.is_some() {
                "the operator has no place for backups"
            } else {
                "no spec.backup"
            };
            delete_ours::<CronJob>(ctx, realm, ns, &desired::backup_name(realm), why).await?;
            if realm.spec.backup.is_some() {
                super::publish_once(
                    ctx,
                    realm,
                    EventType::Warning,
                    "BackupNotScheduled",
                    "Apply",
                    "spec.backup is set, but the operator has no place for backups (operator \
                     PEK_BACKUP_CLAIM; chart: operator.dumps.persistentVolumeClaim): no backup \
                     CronJob"
                        .into(),
                    "backup-not-scheduled",
                )
                .await;
            }
        }
    }
    Ok((
        deployment_readiness(&live, realm.spec.worker.replicas),
        live,
    ))
}

/// [`ensure`], then the Event for what it did; returns the live object.
async fn ensure_with_event<K>(ctx: &Context, realm: &Realm, ns: &str, want: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Cached
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    let (live, outcome) = ensure(ctx, ns, want).await?;
    applied_event(ctx, realm, &K::kind(&()), &want.name_any(), outcome).await;
    Ok(live)
}

/// With at most one replica there is no PodDisruptionBudget; one of ours is deleted.
async fn delete_our_pdb(ctx: &Context, realm: &Realm, ns: &str) -> Result<(), Error> {
    delete_ours::<PodDisruptionBudget>(
        ctx,
        realm,
        ns,
        &desired::worker_name(realm),
        "replicas <= 1",
    )
    .await
}

/// Deletes `K` `name` when it exists and is ours (an object the Realm no longer wants).
async fn delete_ours<K>(
    ctx: &Context,
    realm: &Realm,
    ns: &str,
    name: &str,
    why: &str,
) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Cached
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    // Ours carry the managed-by label, so the cache sees every one there is.
    let object = match lookup::<K>(ctx.caches.get(), ns, name) {
        Lookup::Found(object) => Some(object),
        Lookup::NotInSyncedCache => None,
        Lookup::Unknown => api.get_opt(name).await?,
    };
    if let Some(object) = object {
        let ours = object
            .labels()
            .get(desired::MANAGED_BY.0)
            .is_some_and(|v| v == desired::MANAGED_BY.1);
        if ours {
            let kind = K::kind(&());
            api.delete(name, &DeleteParams::default()).await?;
            ctx.metrics.wrote(&kind);
            publish(
                ctx,
                realm,
                EventType::Normal,
                "Deleted",
                "Apply",
                format!("deleted {kind} {name} ({why})"),
            )
            .await;
        }
    }
    Ok(())
}

/// Applies `desired` with server-side apply unless the live object already contains it.
/// Returns the live object and what was done.
async fn ensure<K>(ctx: &Context, ns: &str, desired: &K) -> Result<(K, Outcome), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Cached
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let name = desired.name_any();
    // What is applied carries a digest of itself: when the wanted object changes in any way,
    // also by losing a field (a removed memory limit, the hub-token mount of an operator now
    // without a federation secret), the digest differs and the object is applied again, and
    // server-side apply removes the fields this field manager no longer sends.
    let mut desired = desired.clone();
    let digest = diff::digest(&desired)?;
    desired
        .annotations_mut()
        .insert(diff::APPLIED_DIGEST_ANNOTATION.into(), digest.clone());
    let want = serde_json::to_value(&desired).map_err(Error::serialize("a desired object"))?;
    // The watch cache answers the steady state; anything else (missing, different, or a cache
    // that lags behind a write just made) is checked with the API server before applying.
    let cached = lookup::<K>(ctx.caches.get(), ns, &name);
    if let Lookup::Found(current) = &cached {
        let have = serde_json::to_value(current).map_err(Error::serialize("a cached object"))?;
        if diff::contains(&want, &have) {
            return Ok((current.clone(), Outcome::Unchanged));
        }
    }
    // Not in a synced cache and never applied by this operator: it does not exist (the cache
    // sees every object with the operator's label), so it is created without a GET first.
    let known_absent = matches!(cached, Lookup::NotInSyncedCache)
        && !applied_before(ctx, &K::kind(&()), ns, &name);
    let current = if known_absent {
        None
    } else {
        api.get_opt(&name).await?
    };
    if let Some(current) = &current {
        let have = serde_json::to_value(current).map_err(Error::serialize("a live object"))?;
        if diff::contains(&want, &have) {
            return Ok((current.clone(), Outcome::Unchanged));
        }
    }
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await?;
    ctx.metrics.wrote(&K::kind(&()));
    record_applied(ctx, &K::kind(&()), ns, &name);
    let outcome = if current.is_some() {
        Outcome::Updated
    } else {
        Outcome::Created
    };
    Ok((applied, outcome))
}

/// Whether this operator has applied `kind` `ns/name` since it started (then a cache that does
/// not hold it may just lag behind that write).
pub(crate) fn applied_before(ctx: &Context, kind: &str, ns: &str, name: &str) -> bool {
    ctx.applied
        .lock()
        .map_or(true, |a| a.contains(&applied_key(kind, ns, name)))
}

/// Notes that this operator applied `kind` `ns/name` (see [`applied_before`]).
pub(crate) fn record_applied(ctx: &Context, kind: &str, ns: &str, name: &str) {
    if let Ok(mut a) = ctx.applied.lock() {
        a.insert(applied_key(kind, ns, name));
    }
}

/// A hash of `kind/ns/name`: a thousand Realms have six thousand objects, and a collision
/// only costs one GET (the object is then taken as possibly there).
fn applied_key(kind: &str, ns: &str, name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same object hashes the same on every call.
    let mut h = std::hash::DefaultHasher::new();
    (kind, ns, name).hash(&mut h);
    h.finish()
}

/// One Event per object created or put back (`DeploymentCreated`, `ServiceUpdated`, ...).
pub(crate) async fn applied_event(
    ctx: &Context,
    realm: &Realm,
    kind: &str,
    name: &str,
    outcome: Outcome,
) {
    let (reason, note) = match outcome {
        Outcome::Unchanged => return,
        Outcome::Created => (format!("{kind}Created"), format!("created {kind} {name}")),
        Outcome::Updated => (
            format!("{kind}Updated"),
            format!("{kind} {name} differed from the Realm's spec; applied it again"),
        ),
    };
    publish(ctx, realm, EventType::Normal, &reason, "Apply", note).await;
}

/// WorkloadReady from the Deployment's availability.
pub(crate) fn deployment_readiness(live: &Deployment, replicas: i32) -> RealmCondition {
    let condition = |status, reason, message: String| {
        RealmCondition::new(ConditionType::WorkloadReady, status, reason, message)
    };
    if replicas == 0 {
        return condition(
            ConditionStatus::False,
            Reason::ScaledToZero,
            "spec.worker.replicas is 0".into(),
        );
    }
    let status = live.status.clone().unwrap_or_default();
    let available = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Available");
    let observed = status.observed_generation.unwrap_or(0) >= live.metadata.generation.unwrap_or(0);
    let ready = status.available_replicas.unwrap_or(0);
    match available {
        Some(c) if c.status == "True" && observed && ready >= 1 => condition(
            ConditionStatus::True,
            Reason::Available,
            format!("{ready}/{replicas} worker pods available"),
        ),
        Some(c) if c.status == "False" => condition(
            ConditionStatus::False,
            Reason::Unavailable,
            c.message
                .unwrap_or_else(|| "worker Deployment is not available".into()),
        ),
        _ => condition(
            ConditionStatus::False,
            Reason::Progressing,
            format!("{ready}/{replicas} worker pods available; waiting for the Deployment"),
        ),
    }
}
