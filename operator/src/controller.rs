//! The Realm reconciler (kube-rs controller-rs style: a pure-ish async fn over an `Arc<Realm>`
//! and a shared [`Context`], the `finalizer()` helper, Events for every change, metrics).

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::events::{EventType, Publisher};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ObjectReference, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use pek_crds::{condition, DeletionPolicy, Realm, RealmStatus, FINALIZER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use tracing::{info, warn};

use crate::conditions::{self, Status};
use crate::config::{Config, FIELD_MANAGER};
use crate::db::{AdminTarget, Change, DbCredentials, Owner, Provisioner};
use crate::desired;
use crate::hub::{Hub, Registered, Registration, RegistryEntry};
use crate::metrics::Metrics;
use crate::{diff, Error};

/// Shared state of all reconciles.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub hub: Arc<dyn Hub>,
    pub db: Provisioner,
    pub events: Publisher,
    pub metrics: Metrics,
    /// What we last told the hub about each Realm, and when.
    registered: Mutex<HashMap<String, (Registration, Instant)>>,
    /// Consecutive failures per Realm (for the error backoff).
    failures: Mutex<HashMap<String, u32>>,
    /// The controller's cache of all watched Realms (set by `run`): who else claims a realm id.
    realms: OnceLock<Store<Realm>>,
    /// The last status this operator wrote per Realm, with the resourceVersion the write
    /// returned: a reconcile that reads an older copy of the Realm from the cache (triggered by
    /// its own new children) starts from this instead, so it neither repeats Events nor
    /// registers twice.
    written: Mutex<HashMap<String, (u64, RealmStatus)>>,
    /// One listing of the hub registry, shared by every reconcile for a resync period: it
    /// re-verifies the registrations instead of one call per Realm.
    listing: tokio::sync::Mutex<Option<(Instant, HashMap<String, RegistryEntry>)>>,
    /// Realms (by uid) already deregistered in a deletion that is still going on.
    deregistered: Mutex<HashSet<String>>,
    /// The controller's watch caches of the objects the operator manages (set by `run`).
    caches: OnceLock<Caches>,
    /// Objects (`kind/namespace/name`) this operator has applied since it started: one that a
    /// synced cache does not hold and that is not in here was never made, so it is created
    /// without asking the API server first.
    applied: Mutex<HashSet<String>>,
    /// Admin targets read from their Secrets (`namespace/name`) in the last few seconds: the
    /// reconciles that follow a provisioning need not read the Secret again.
    admin_targets: Mutex<HashMap<String, (AdminTarget, Instant)>>,
}

/// How long an admin Secret read is reused (a changed admin Secret is seen this much later).
const ADMIN_SECRET_REUSE: Duration = Duration::from_secs(10);

/// Watch caches of the managed kinds (the same watches that trigger reconciles): a steady-state
/// reconcile reads its children from here instead of one GET each.
#[derive(Clone)]
pub struct Caches {
    pub secrets: Store<Secret>,
    pub service_accounts: Store<ServiceAccount>,
    pub services: Store<Service>,
    pub deployments: Store<Deployment>,
    pub network_policies: Store<NetworkPolicy>,
    pub pod_disruption_budgets: Store<PodDisruptionBudget>,
}

/// A managed kind with a watch cache in [`Caches`].
pub trait Cached: Resource<DynamicType = ()> + Clone + Sized + 'static {
    fn store(caches: &Caches) -> &Store<Self>;
}

macro_rules! cached {
    ($kind:ty, $field:ident) => {
        impl Cached for $kind {
            fn store(caches: &Caches) -> &Store<Self> {
                &caches.$field
            }
        }
    };
}
cached!(Secret, secrets);
cached!(ServiceAccount, service_accounts);
cached!(Service, services);
cached!(Deployment, deployments);
cached!(NetworkPolicy, network_policies);
cached!(PodDisruptionBudget, pod_disruption_budgets);

/// The cached copy of a managed object: Some(None) when the (synced) cache has none, None
/// when there is no cache (tests) — then the caller asks the API server.
fn cached<K: Cached>(ctx: &Context, ns: &str, name: &str) -> Option<Option<K>> {
    let store = K::store(ctx.caches.get()?);
    Some(
        store
            .get(&ObjectRef::new(name).within(ns))
            .map(|k| (*k).clone()),
    )
}

/// Whether the watch cache of `K` has finished its initial listing (only then does "not in the
/// cache" mean "not there"; before, the caller asks the API server).
fn cache_synced<K: Cached>(ctx: &Context) -> bool {
    use futures::FutureExt;
    ctx.caches
        .get()
        .is_some_and(|c| K::store(c).wait_until_ready().now_or_never().is_some())
}

impl Context {
    pub fn new(client: Client, config: Config, hub: Arc<dyn Hub>, metrics: Metrics) -> Self {
        Context {
            events: Publisher::new(client.clone()),
            client,
            config,
            hub,
            db: Provisioner::new(
                crate::db::POOL_SIZE,
                crate::db::ACQUIRE_TIMEOUT,
                metrics.clone(),
            ),
            metrics,
            registered: Mutex::default(),
            failures: Mutex::default(),
            realms: OnceLock::new(),
            written: Mutex::default(),
            listing: tokio::sync::Mutex::new(None),
            deregistered: Mutex::default(),
            caches: OnceLock::new(),
            applied: Mutex::default(),
            admin_targets: Mutex::default(),
        }
    }

    /// Gives the reconciler the watch caches of the managed kinds.
    pub fn set_caches(&self, caches: Caches) {
        let _ = self.caches.set(caches);
    }

    /// Gives the reconciler the controller's Realm cache (needed to refuse a second Realm with
    /// a realm id already in use).
    pub fn set_realm_store(&self, store: Store<Realm>) {
        let _ = self.realms.set(store);
    }

    /// Forgets what was registered (tests: simulate an operator restart).
    pub fn forget_registrations(&self) {
        if let Ok(mut r) = self.registered.lock() {
            r.clear();
        }
    }
}

fn key(realm: &Realm) -> String {
    format!(
        "{}/{}",
        realm.namespace().unwrap_or_default(),
        realm.name_any()
    )
}

/// Entry point for the controller: one reconcile of one Realm.
pub async fn reconcile(realm: Arc<Realm>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.start();
    let ns = desired::namespace(&realm)?;
    let api: Api<Realm> = Api::namespaced(ctx.client.clone(), &ns);
    let k = key(&realm);
    let result = finalizer(&api, FINALIZER, realm, |event| async {
        match event {
            Finalizer::Apply(realm) => apply(&realm, &ctx).await,
            Finalizer::Cleanup(realm) => cleanup(&realm, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    });
    match &result {
        Ok(_) => {
            if let Ok(mut f) = ctx.failures.lock() {
                f.remove(&k);
            }
        }
        Err(e) => ctx.metrics.error(e.reason()),
    }
    result
}

/// Requeue with exponential backoff per Realm (5 s doubling up to 5 min).
pub fn error_policy(realm: Arc<Realm>, error: &Error, ctx: Arc<Context>) -> Action {
    let n = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(key(&realm)).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    let delay = backoff(n);
    warn!(realm = %key(&realm), reason = error.reason(), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The delay before retry number `n` (1-based).
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

/// Status under construction plus the Events to publish.
struct Step<'a> {
    realm: &'a Realm,
    ctx: &'a Context,
    status: RealmStatus,
    /// The status this step started from (the Realm's, or this operator's newer write).
    base: Option<RealmStatus>,
    now: Timestamp,
}

impl<'a> Step<'a> {
    fn new(realm: &'a Realm, ctx: &'a Context) -> Self {
        let mut base = realm.status.clone();
        let seen = realm
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        if let Some((wrote, status)) = ctx
            .written
            .lock()
            .ok()
            .and_then(|w| w.get(&key(realm)).cloned())
        {
            if seen.is_none_or(|seen| seen < wrote) {
                base = Some(status);
            }
        }
        Step {
            realm,
            ctx,
            status: base.clone().unwrap_or_default(),
            base,
            now: Timestamp::now(),
        }
    }

    fn set(
        &mut self,
        type_: &str,
        status: Status,
        reason: &str,
        message: impl Into<String>,
    ) -> bool {
        conditions::set(
            &mut self.status.conditions,
            type_,
            status,
            reason,
            message,
            self.realm.metadata.generation,
            self.now,
        )
    }

    /// Records a failed step: its condition, Ready=False, and a Warning event when new.
    async fn fail(&mut self, type_: &str, err: &Error) {
        let changed = self.set(type_, Status::False, err.reason(), err.to_string());
        self.set(
            condition::READY,
            Status::False,
            err.reason(),
            format!("{type_}: {err}"),
        );
        if changed {
            publish(
                self.ctx,
                self.realm,
                EventType::Warning,
                err.reason(),
                "Reconcile",
                err.to_string(),
            )
            .await;
        }
    }

    /// Refuses the Realm: `Conflict=True` with `reason`, `Ready=False` (reason Conflict), a
    /// Warning Event when new. Checked again after a while (the other Realm may go away).
    async fn conflict(mut self, reason: &str, message: String) -> Result<Action, Error> {
        let changed = self.set(condition::CONFLICT, Status::True, reason, message.clone());
        self.set(condition::READY, Status::False, "Conflict", message.clone());
        if changed {
            publish(
                self.ctx,
                self.realm,
                EventType::Warning,
                "Conflict",
                "Reconcile",
                message,
            )
            .await;
        }
        self.write().await?;
        Ok(Action::requeue(Duration::from_secs(30)))
    }

    /// Writes the status when it differs from what is stored (no write in a steady state).
    async fn write(mut self) -> Result<(), Error> {
        self.status.observed_generation = self.realm.metadata.generation;
        if self.base.as_ref() == Some(&self.status) {
            return Ok(());
        }
        let api: Api<Realm> =
            Api::namespaced(self.ctx.client.clone(), &desired::namespace(self.realm)?);
        let patch = json!({
            "apiVersion": "pek.sch.bme.hu/v1alpha1",
            "kind": "Realm",
            "status": self.status,
        });
        // What the status says has its Event already (Events go out in the background).
        self.ctx
            .events
            .flush(&self.realm.uid().unwrap_or_default())
            .await;
        let start = Instant::now();
        let written = api
            .patch_status(
                &self.realm.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await?;
        self.ctx.metrics.phase("status_write", start.elapsed());
        self.ctx.metrics.wrote("Realm/status");
        if let Some(rv) = written
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
        {
            if let Ok(mut w) = self.ctx.written.lock() {
                w.insert(key(self.realm), (rv, self.status));
            }
        }
        Ok(())
    }
}

async fn publish(
    ctx: &Context,
    realm: &Realm,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let reference: ObjectReference = realm.object_ref(&());
    let published = ctx
        .metrics
        .timed(
            "event",
            ctx.events.publish(reference, type_, reason, action, &note),
        )
        .await;
    if let Err(e) = published {
        warn!(realm = %key(realm), error = %e, "could not publish an event");
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Created,
    Updated,
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
    let want = serde_json::to_value(&desired).map_err(|e| Error::Internal(e.to_string()))?;
    // The watch cache answers the steady state; anything else (missing, different, or a cache
    // that lags behind a write just made) is checked with the API server before applying.
    if let Some(Some(current)) = cached::<K>(ctx, ns, &name) {
        let have = serde_json::to_value(&current).map_err(|e| Error::Internal(e.to_string()))?;
        if diff::contains(&want, &have) {
            return Ok((current, Outcome::Unchanged));
        }
    }
    let applied_key = format!("{}/{ns}/{name}", K::kind(&()));
    let never_applied = ctx.applied.lock().is_ok_and(|a| !a.contains(&applied_key));
    // Not in a synced cache and never applied by this operator: it does not exist (the cache
    // sees every object with the operator's label), so it is created without a GET first.
    let known_absent = never_applied
        && cache_synced::<K>(ctx)
        && matches!(cached::<K>(ctx, ns, &name), Some(None));
    let current = if known_absent {
        None
    } else {
        api.get_opt(&name).await?
    };
    if let Some(current) = &current {
        let have = serde_json::to_value(current).map_err(|e| Error::Internal(e.to_string()))?;
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
    if let Ok(mut a) = ctx.applied.lock() {
        a.insert(applied_key);
    }
    let outcome = if current.is_some() {
        Outcome::Updated
    } else {
        Outcome::Created
    };
    Ok((applied, outcome))
}

/// One Event per object created or put back (`DeploymentCreated`, `ServiceUpdated`, ...).
async fn applied_event(ctx: &Context, realm: &Realm, kind: &str, name: &str, outcome: Outcome) {
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

/// The admin target from the Realm's admin Secret; with `reuse`, one read in the last
/// [`ADMIN_SECRET_REUSE`] serves (deletion always reads it anew).
async fn admin_target(
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

/// Database step: the `<name>-db` Secret first (so the password is stored before it is used),
/// then roles and database.
async fn database(ctx: &Context, realm: &Realm, ns: &str) -> Result<DbCredentials, Error> {
    let target = admin_target(ctx, realm, ns, true).await?;
    let names = desired::db_names(realm);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let plan = |existing: Option<Secret>| -> Result<_, Error> {
        let creds = DbCredentials::from_existing(&target, names.clone(), existing.as_ref())
            .unwrap_or_else(|| DbCredentials::generate(&target, names.clone()));
        let want = desired::db_secret(realm, &creds)?;
        let want_json = serde_json::to_value(&want).map_err(|e| Error::Internal(e.to_string()))?;
        let up_to_date = existing.as_ref().is_some_and(|s| {
            serde_json::to_value(s).is_ok_and(|have| diff::contains(&want_json, &have))
        });
        Ok((existing, creds, want, up_to_date))
    };
    // The watch cache answers the steady state; otherwise the API server decides.
    let mut planned = None;
    if let Some(Some(secret)) = cached::<Secret>(ctx, ns, &desired::db_secret_name(realm)) {
        let p = plan(Some(secret))?;
        if p.3 {
            planned = Some(p);
        }
    }
    let (existing, creds, want, up_to_date) = match planned {
        Some(p) => p,
        None => plan(secrets.get_opt(&desired::db_secret_name(realm)).await?)?,
    };
    if !up_to_date {
        secrets
            .patch(
                &desired::db_secret_name(realm),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&want),
            )
            .await?;
        ctx.metrics.wrote("Secret");
        let outcome = if existing.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        };
        applied_event(
            ctx,
            realm,
            "Secret",
            &desired::db_secret_name(realm),
            outcome,
        )
        .await;
    }
    let me = owner(realm)?;
    // Reconciles right after a provisioning (started by the Realm's own new children and
    // status) skip Postgres; each resync checks it again.
    let changes = match ctx
        .db
        .ensure_unless_fresh(&creds, &me, ctx.config.resync / 2)
        .await
    {
        Err(Error::Conflict(msg)) => {
            // Recorded owners that no longer exist (a Realm deleted with Retain) hand the
            // database over: re-creating a Realm onto a retained database is supported.
            let others = ctx.db.other_owners(&target, &creds.names, &me).await?;
            let mut gone = Vec::new();
            for other in &others {
                if !realm_exists(ctx, other).await {
                    gone.push(other.uid.clone());
                }
            }
            if gone.len() < others.len() {
                return Err(Error::Conflict(msg));
            }
            ctx.db.ensure(&creds, &me, &gone).await?
        }
        other => other?,
    };
    publish_changes(ctx, realm, "ProvisionDatabase", &changes).await;
    Ok(creds)
}

/// The ownership record of a Realm (what is written on its database and roles).
fn owner(realm: &Realm) -> Result<Owner, Error> {
    Ok(Owner {
        uid: realm
            .uid()
            .ok_or_else(|| Error::InvalidSpec("Realm has no uid yet".into()))?,
        namespace: desired::namespace(realm)?,
        name: realm.name_any(),
    })
}

/// Does the Realm recorded as `owner` still exist? When that cannot be told (e.g. the operator
/// may not read that namespace) it is assumed to: nothing is taken from a Realm that may live.
async fn realm_exists(ctx: &Context, owner: &Owner) -> bool {
    let api: Api<Realm> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    match api.get_opt(&owner.name).await {
        Ok(Some(r)) => r.uid().as_deref() == Some(owner.uid.as_str()),
        Ok(None) => false,
        Err(e) => {
            warn!(owner = %owner, error = %e, "cannot tell whether the recorded owner exists; assuming it does");
            true
        }
    }
}

/// The Realm that holds `realm`'s realm id, when it is another one: of all Realms with the
/// same realm id, the oldest (then the smaller uid) holds it, in any namespace the operator
/// watches. Consistent from every Realm's point of view, so exactly one proceeds.
fn realm_id_holder(ctx: &Context, realm: &Realm) -> Option<Arc<Realm>> {
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

/// One Event per kind of database change (roles created, database created, ...).
async fn publish_changes(ctx: &Context, realm: &Realm, action: &str, changes: &[Change]) {
    let mut by_reason: Vec<(&str, Vec<String>)> = Vec::new();
    for change in changes {
        info!(realm = %key(realm), change = %change, "database changed");
        match by_reason.iter_mut().find(|(r, _)| *r == change.reason()) {
            Some((_, notes)) => notes.push(change.to_string()),
            None => by_reason.push((change.reason(), vec![change.to_string()])),
        }
    }
    for (reason, notes) in by_reason {
        publish(
            ctx,
            realm,
            EventType::Normal,
            reason,
            action,
            notes.join("; "),
        )
        .await;
    }
}

/// Conflict reason when the hub's entry for the realm id belongs to another Realm.
pub const REGISTRATION_IN_USE: &str = "RegistrationInUse";

/// Message on the Registered condition (and a Warning event) when the operator has no
/// federation secret.
pub const NO_FEDERATION_SECRET: &str = "workers cannot report membership changes to the hub: \
    the operator has no federation secret (PEK_FEDERATION_SECRET_FILE), so no <name>-hub-token \
    Secret is written; membership changes wait in the worker's outbox";

/// Worker step: ServiceAccount, Service, the `<name>-hub-token` Secret (when the operator has a
/// federation secret), Deployment, NetworkPolicy, PodDisruptionBudget.
/// Returns the WorkloadReady condition.
async fn workload(
    ctx: &Context,
    realm: &Realm,
    ns: &str,
    creds: &DbCredentials,
) -> Result<(Status, &'static str, String), Error> {
    let sa = desired::service_account(realm)?;
    let (_, outcome) = ensure(ctx, ns, &sa).await?;
    applied_event(ctx, realm, "ServiceAccount", &sa.name_any(), outcome).await;
    let svc = desired::service(realm)?;
    let (_, outcome) = ensure(ctx, ns, &svc).await?;
    applied_event(ctx, realm, "Service", &svc.name_any(), outcome).await;
    if let Some(secret) = &ctx.config.federation_secret {
        let token = desired::hub_token_secret(realm, secret)?;
        let (_, outcome) = ensure(ctx, ns, &token).await?;
        applied_event(ctx, realm, "Secret", &token.name_any(), outcome).await;
    }
    let deploy = desired::deployment(realm, &ctx.config, &desired::credentials_hash(creds))?;
    let (live, outcome) = ensure(ctx, ns, &deploy).await?;
    applied_event(ctx, realm, "Deployment", &deploy.name_any(), outcome).await;
    let netpol = desired::network_policy(realm, &ctx.config)?;
    let (_, outcome) = ensure(ctx, ns, &netpol).await?;
    applied_event(ctx, realm, "NetworkPolicy", &netpol.name_any(), outcome).await;
    match desired::pod_disruption_budget(realm)? {
        Some(pdb) => {
            let (_, outcome) = ensure(ctx, ns, &pdb).await?;
            applied_event(ctx, realm, "PodDisruptionBudget", &pdb.name_any(), outcome).await;
        }
        None => {
            let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), ns);
            let name = desired::worker_name(realm);
            // Our PDBs carry the managed-by label, so the cache sees every one there is.
            let pdb = match cached::<PodDisruptionBudget>(ctx, ns, &name) {
                Some(cached) => cached,
                None => api.get_opt(&name).await?,
            };
            if let Some(pdb) = pdb {
                let ours = pdb
                    .labels()
                    .get(desired::MANAGED_BY.0)
                    .is_some_and(|v| v == desired::MANAGED_BY.1);
                if ours {
                    api.delete(&name, &DeleteParams::default()).await?;
                    ctx.metrics.wrote("PodDisruptionBudget");
                    publish(
                        ctx,
                        realm,
                        EventType::Normal,
                        "Deleted",
                        "Apply",
                        format!("deleted PodDisruptionBudget {name} (replicas <= 1)"),
                    )
                    .await;
                }
            }
        }
    }
    Ok(deployment_readiness(&live, realm.spec.worker.replicas))
}

/// WorkloadReady from the Deployment's availability.
pub fn deployment_readiness(live: &Deployment, replicas: i32) -> (Status, &'static str, String) {
    if replicas == 0 {
        return (
            Status::False,
            "ScaledToZero",
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
        Some(c) if c.status == "True" && observed && ready >= 1 => (
            Status::True,
            "Available",
            format!("{ready}/{replicas} worker pods available"),
        ),
        Some(c) if c.status == "False" => (
            Status::False,
            "Unavailable",
            c.message
                .unwrap_or_else(|| "worker Deployment is not available".into()),
        ),
        _ => (
            Status::False,
            "Progressing",
            format!("{ready}/{replicas} worker pods available; waiting for the Deployment"),
        ),
    }
}

/// Registers the realm with the hub unless that is known to be done. Returns whether this was
/// news (an Event is due): a new entry, or the Realm was not registered before.
///
/// Known to be done: this operator registered exactly this within the resync period (its own
/// record beats a cached Realm whose status lags behind); or, after that, the hub's registry
/// (one listing per resync for all Realms) still holds exactly this entry.
async fn register(ctx: &Context, realm: &Realm, status: &RealmStatus) -> Result<bool, Error> {
    let image = desired::worker_image(realm, &ctx.config);
    let reg = Registration {
        display_name: realm.display_name().to_string(),
        endpoint: desired::endpoint(realm)?,
        version: desired::version_of(image),
        owner_uid: realm.uid(),
    };
    let k = key(realm);
    let record = ctx.registered.lock().ok().and_then(|r| r.get(&k).cloned());
    if record
        .as_ref()
        .is_some_and(|(last, at)| *last == reg && at.elapsed() < ctx.config.resync)
    {
        return Ok(false);
    }
    let registered = conditions::is_true(&status.conditions, condition::REGISTERED);
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
                warn!(error = %e, "could not list the hub registry; registering instead");
                return None;
            }
        }
    }
    listing.as_ref().and_then(|(_, m)| m.get(realm_id).cloned())
}

/// Brings the world in line with a (non-deleted) Realm.
async fn apply(realm: &Realm, ctx: &Context) -> Result<Action, Error> {
    let ns = desired::namespace(realm)?;
    let mut step = Step::new(realm, ctx);

    if realm.spec.suspend {
        if step.set(
            condition::READY,
            Status::False,
            "Suspended",
            "spec.suspend is true: the operator changes nothing until it is false",
        ) {
            publish(
                ctx,
                realm,
                EventType::Normal,
                "Suspended",
                "Reconcile",
                "reconciliation suspended; database, worker and registration are kept as they are"
                    .into(),
            )
            .await;
        }
        step.write().await?;
        return Ok(Action::await_change());
    }

    if let Err(e) = desired::validate(realm, &ctx.config) {
        step.fail(condition::READY, &e).await;
        step.write().await?;
        return Err(e);
    }

    if let Some(holder) = realm_id_holder(ctx, realm) {
        let message = format!(
            "realmId {} is already used by Realm {}/{} (created earlier); this Realm is refused \
             and changes nothing (database, worker, hub registration). Give it another realmId \
             or delete the other Realm",
            realm.spec.realm_id,
            holder.namespace().unwrap_or_default(),
            holder.name_any()
        );
        return step.conflict("RealmIdInUse", message).await;
    }

    let creds = match ctx
        .metrics
        .timed("database", database(ctx, realm, &ns))
        .await
    {
        Ok(c) => c,
        Err(Error::Conflict(message)) => return step.conflict("DatabaseInUse", message).await,
        Err(e) => {
            step.fail(condition::DATABASE_READY, &e).await;
            step.write().await?;
            return Err(e);
        }
    };
    step.status
        .conditions
        .retain(|c| c.type_ != condition::CONFLICT);
    step.set(
        condition::DATABASE_READY,
        Status::True,
        "Provisioned",
        format!(
            "database {} with roles {} and {}; credentials in Secret {}",
            creds.names.database,
            creds.names.owner_role,
            creds.names.app_role,
            desired::db_secret_name(realm)
        ),
    );
    step.status.database_secret = Some(desired::db_secret_name(realm));
    step.status.database_name = Some(creds.names.database.clone());

    let (wl_status, wl_reason, wl_message) = match ctx
        .metrics
        .timed("workload", workload(ctx, realm, &ns, &creds))
        .await
    {
        Ok(w) => w,
        Err(e) => {
            step.fail(condition::WORKLOAD_READY, &e).await;
            step.write().await?;
            return Err(e);
        }
    };
    step.set(
        condition::WORKLOAD_READY,
        wl_status,
        wl_reason,
        wl_message.clone(),
    );
    step.status.endpoint = Some(desired::endpoint(realm)?);

    let base = step.status.clone();
    match ctx
        .metrics
        .timed("register", register(ctx, realm, &base))
        .await
    {
        Ok(changed) => {
            if changed {
                publish(
                    ctx,
                    realm,
                    EventType::Normal,
                    "Registered",
                    "Register",
                    format!(
                        "registered realm {} with the hub at {}",
                        realm.spec.realm_id,
                        desired::endpoint(realm)?
                    ),
                )
                .await;
            }
            let mut message = format!("the hub lists realm {}", realm.spec.realm_id);
            if ctx.config.federation_secret.is_none() {
                message = format!("{message}; but {NO_FEDERATION_SECRET}");
            }
            let changed = step.set(condition::REGISTERED, Status::True, "Registered", message);
            if changed && ctx.config.federation_secret.is_none() {
                publish(
                    ctx,
                    realm,
                    EventType::Warning,
                    "FederationSecretMissing",
                    "Register",
                    NO_FEDERATION_SECRET.into(),
                )
                .await;
            }
        }
        // Another Realm with this realm id owns the hub's entry (e.g. one that another
        // operator watches): refused, and its entry is left alone.
        Err(Error::Conflict(message)) => {
            return step.conflict(REGISTRATION_IN_USE, message).await;
        }
        Err(e) => {
            step.fail(condition::REGISTERED, &e).await;
            step.write().await?;
            return Err(e);
        }
    }

    let ready = wl_status == Status::True;
    if ready {
        if step.set(
            condition::READY,
            Status::True,
            "Ready",
            "database, worker and hub registration are in place",
        ) {
            publish(
                ctx,
                realm,
                EventType::Normal,
                "Ready",
                "Reconcile",
                "realm is ready".into(),
            )
            .await;
        }
    } else {
        step.set(
            condition::READY,
            Status::False,
            wl_reason,
            format!("worker: {wl_message}"),
        );
    }
    step.write().await?;
    // Nothing to wait for when ready, or scaled to zero on purpose.
    Ok(Action::requeue(if ready || wl_reason == "ScaledToZero" {
        ctx.config.resync
    } else {
        Duration::from_secs(30)
    }))
}

/// Deletion: deregister, drop the database only with `deletionPolicy: Delete`; the child
/// objects go with the Realm through their owner references.
async fn cleanup(realm: &Realm, ctx: &Context) -> Result<Action, Error> {
    let ns = desired::namespace(realm)?;
    if realm.spec.suspend {
        publish(
            ctx,
            realm,
            EventType::Warning,
            "CleanupSkipped",
            "Delete",
            "Realm is suspended: released without deregistering it or dropping its database".into(),
        )
        .await;
        return Ok(Action::await_change());
    }
    // Refused for the realm id or the database: nothing here is this Realm's. (Refused only
    // by the hub: the database is its own, and the hub keeps the other Realm's entry.)
    let refused = realm.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == condition::CONFLICT && c.status == "True" && c.reason != REGISTRATION_IN_USE
        })
    });
    if refused || realm_id_holder(ctx, realm).is_some() {
        publish(
            ctx,
            realm,
            EventType::Normal,
            "CleanupSkipped",
            "Delete",
            "Realm was refused (Conflict): the realm id or database belongs to another Realm, so \
             nothing is deregistered or dropped"
                .into(),
        )
        .await;
        return Ok(Action::await_change());
    }
    let mut step = Step::new(realm, ctx);
    let uid = realm.uid().unwrap_or_default();
    let already = ctx.deregistered.lock().is_ok_and(|d| d.contains(&uid));
    // `already`: deregistered in an earlier attempt of this deletion (the database step failed).
    if !already {
        let note = match ctx
            .hub
            .deregister(&realm.spec.realm_id, Some(uid.as_str()))
            .await
        {
            Ok(()) => (
                "Deregistered",
                format!(
                    "removed realm {} from the hub registry",
                    realm.spec.realm_id
                ),
            ),
            // The hub's entry belongs to another Realm: not ours to remove.
            Err(Error::Conflict(message)) => {
                ("CleanupSkipped", format!("not deregistered: {message}"))
            }
            Err(e) => {
                let e = Error::Hub(format!(
                    "{}; deletion waits for the hub. If the hub is gone for good, set \
                     spec.suspend: true to release the Realm without deregistering (its \
                     database is then kept)",
                    e.detail()
                ));
                step.fail(condition::REGISTERED, &e).await;
                step.write().await?;
                return Err(e);
            }
        };
        if let Ok(mut r) = ctx.registered.lock() {
            r.remove(&key(realm));
        }
        if let Ok(mut d) = ctx.deregistered.lock() {
            d.insert(uid.clone());
        }
        publish(ctx, realm, EventType::Normal, note.0, "Delete", note.1).await;
    }

    let names = desired::db_names(realm);
    match realm.spec.database.deletion_policy {
        DeletionPolicy::Retain => {
            publish(
                ctx,
                realm,
                EventType::Normal,
                "DatabaseRetained",
                "Delete",
                format!(
                    "deletionPolicy Retain: database {} and its roles are kept",
                    names.database
                ),
            )
            .await;
        }
        DeletionPolicy::Delete => {
            let provisioned = realm
                .status
                .as_ref()
                .is_some_and(|s| s.database_name.is_some() || s.database_secret.is_some());
            let dropped = async {
                let target = admin_target(ctx, realm, &ns, false).await?;
                ctx.db.drop_all(&target, &names, &owner(realm)?).await
            }
            .await;
            match dropped {
                Ok(changes) => publish_changes(ctx, realm, "Delete", &changes).await,
                // Another Realm is recorded as the owner: its data is not ours to drop.
                Err(Error::Conflict(message)) => {
                    publish(
                        ctx,
                        realm,
                        EventType::Warning,
                        "DatabaseNotDropped",
                        "Delete",
                        message,
                    )
                    .await;
                }
                // Nothing was ever provisioned for this Realm, so there is nothing to drop,
                // whatever keeps the operator from reaching the server (missing or wrong admin
                // credentials, an unreachable server): the deletion goes ahead.
                Err(e) if !provisioned => {
                    publish(ctx, realm, EventType::Normal, "DatabaseNeverProvisioned", "Delete",
                        format!("no database was ever provisioned for this Realm; nothing to drop ({e})")).await;
                }
                Err(e) => {
                    let e = Error::Database(format!(
                        "{}; deletion waits until the database can be dropped. To release the \
                         Realm and keep the database, set spec.suspend: true",
                        e.detail()
                    ));
                    step.fail(condition::DATABASE_READY, &e).await;
                    step.write().await?;
                    return Err(e);
                }
            }
        }
    }
    if let Ok(mut d) = ctx.deregistered.lock() {
        d.remove(&uid);
    }
    if let Ok(mut w) = ctx.written.lock() {
        w.remove(&key(realm));
    }
    info!(realm = %key(realm), "realm cleaned up");
    Ok(Action::await_change())
}

/// The objects a Realm owns, for the controller's `owns` watches.
pub type OwnedKinds = (
    Secret,
    ServiceAccount,
    Service,
    Deployment,
    NetworkPolicy,
    PodDisruptionBudget,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(7), Duration::from_secs(300));
        assert_eq!(backoff(100), Duration::from_secs(300));
    }
}
