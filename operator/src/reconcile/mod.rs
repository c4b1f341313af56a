//! The Realm reconciler (kube-rs controller-rs style: an async fn over an `Arc<Realm>` and a
//! shared [`Context`], the `finalizer()` helper, Events for every change, metrics), split into
//! phases the way Stackable's operators are, each in its own file:
//!
//! 1. [`dereference`]: read and validate the Realm and what it references (suspend, the spec,
//!    who holds the realm id, the admin-credentials Secret);
//! 2. [`database`]: provision the database (the `<name>-db` Secret, roles, database), restore
//!    `spec.database.restoreFrom` into a new one ([`restore`]), and start or advance a
//!    credential rotation ([`rotation`]);
//! 3. [`build`]: build the desired worker objects (pure functions in [`desired`]);
//! 4. [`apply`]: apply them (server-side apply, only what differs) and read the workload's
//!    readiness; a rotation's old login is disabled once the worker rollout completed;
//! 5. [`register`]: register the realm with the hub;
//! 6. [`status`]: one status write at the end, from what the phases report; `Ready` is derived
//!    from the other conditions.
//!
//! A phase either returns what the next one needs or stops the reconcile with a [`Stop`]; the
//! phases never write the status themselves. Deletion is [`cleanup`].

pub(crate) mod apply;
pub(crate) mod build;
pub(crate) mod cleanup;
pub(crate) mod database;
pub(crate) mod dereference;
pub mod desired;
pub(crate) mod diff;
pub(crate) mod register;
pub(crate) mod restore;
pub(crate) mod rotation;
pub(crate) mod status;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use pek_crds::condition::{ConditionStatus, ConditionType, RealmCondition, Reason};
use pek_crds::{Realm, RealmStatus, FINALIZER};
use tracing::{info, warn};

use crate::config::Config;
use crate::db::{AdminTarget, Change, Provisioner};
use crate::events::{EventType, Publisher};
use crate::hub::{Hub, Registration, RegistryEntry};
use crate::metrics::Metrics;
use crate::Error;

pub use crate::cache::Caches;
use status::Report;

/// Shared state of all reconciles.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) config: Config,
    pub(crate) hub: Arc<dyn Hub>,
    pub(crate) db: Provisioner,
    pub(crate) events: Publisher,
    /// The operator's metrics (also served on /metrics).
    pub metrics: Metrics,
    /// What we last told the hub about each Realm, and when.
    pub(crate) registered: Mutex<HashMap<String, (Registration, Instant)>>,
    /// Since when each Realm has been failing without a success in between (the error
    /// backoff grows with that time, not with the number of failed reconciles).
    failures: Mutex<HashMap<String, Instant>>,
    /// The controller's cache of all watched Realms (set by `run`): who else claims a realm id.
    pub(crate) realms: OnceLock<Store<Realm>>,
    /// The last status this operator wrote per Realm, with the resourceVersion the write
    /// returned: a reconcile that reads an older copy of the Realm from the cache (triggered by
    /// its own new children) starts from this instead, so it neither repeats Events nor
    /// registers twice.
    pub(crate) written: Mutex<HashMap<String, (u64, RealmStatus)>>,
    /// One listing of the hub registry, shared by every reconcile for a resync period: it
    /// re-verifies the registrations instead of one call per Realm.
    pub(crate) listing: tokio::sync::Mutex<Option<(Instant, HashMap<String, RegistryEntry>)>>,
    /// Realms (by uid) already deregistered in a deletion that is still going on.
    pub(crate) deregistered: Mutex<HashSet<String>>,
    /// The controller's watch caches of the objects the operator manages (set by `run`).
    pub(crate) caches: OnceLock<Caches>,
    /// Objects (hashes of `kind/namespace/name`) this operator has applied since it started: one that a
    /// synced cache does not hold and that is not in here was never made, so it is created
    /// without asking the API server first.
    pub(crate) applied: Mutex<HashSet<u64>>,
    /// The resourceVersion of the last `<name>-db` Secret this operator wrote (`namespace/name`):
    /// a watch cache still holding an older copy is not trusted (a credential rotation must
    /// never act on the credentials it just replaced).
    pub(crate) db_secret_written: Mutex<HashMap<String, u64>>,
    /// Admin targets read from their Secrets (`namespace/name`) in the last few seconds: the
    /// reconciles that follow a provisioning need not read the Secret again.
    pub(crate) admin_targets: Mutex<HashMap<String, (AdminTarget, Instant)>>,
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
            db_secret_written: Mutex::default(),
            admin_targets: Mutex::default(),
        }
    }

    /// Gives the reconciler the watch caches of the managed kinds.
    pub fn set_caches(&self, caches: Caches) {
        let _ = self.caches.set(caches);
    }

    /// Gives the reconciler the controller's Realm cache (needed to refuse a second Realm with
    /// a realm id already in use).
    pub(crate) fn set_realm_store(&self, store: Store<Realm>) {
        let _ = self.realms.set(store);
    }
}

/// `namespace/name` of a Realm (the key of the per-Realm records in [`Context`]).
pub(crate) fn key(realm: &Realm) -> String {
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
            // Boxed: the phases' futures are large, and a reconcile should not need a big
            // stack wherever it is polled (a test thread, a debug build).
            Finalizer::Apply(realm) => Box::pin(apply_realm(&realm, &ctx)).await,
            Finalizer::Cleanup(realm) => Box::pin(cleanup::cleanup(&realm, &ctx)).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(Box::new(other)),
    });
    let result = match result {
        // A deletion waiting for its confirmation kept the finalizer; that is no failure: the
        // Realm's next change (the annotation, or deletionPolicy Retain) reconciles it again.
        Err(Error::DeletionUnconfirmed(_)) => Ok(Action::requeue(ctx.config.resync)),
        other => other,
    };
    match &result {
        Ok(_) => {
            if let Ok(mut f) = ctx.failures.lock() {
                f.remove(&k);
            }
        }
        Err(e) => ctx.metrics.error(e.reason().as_str()),
    }
    result
}

/// Requeue a failed reconcile after [`backoff`] of the time the Realm has been failing.
pub fn error_policy(realm: Arc<Realm>, error: &Error, ctx: Arc<Context>) -> Action {
    let now = Instant::now();
    let since = ctx
        .failures
        .lock()
        .map(|mut f| *f.entry(key(&realm)).or_insert(now))
        .unwrap_or(now);
    let delay = backoff(now.saturating_duration_since(since));
    warn!(realm = %key(&realm), reason = %error.reason(), error = %error.message(), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Shortest and longest delay before retrying a failed reconcile.
const MIN_RETRY: Duration = Duration::from_secs(2);
/// How soon a Realm that is not ready yet is looked at again (its objects' changes also
/// wake the operator).
const UNSETTLED_RECHECK: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// The delay before retrying a Realm that has been failing for `failing`: a tenth of that,
/// from 2 s up to 5 min. By time, not by count: the many reconciles a failing Realm's own
/// changes start (each a failure too) do not push its retries further away, and a Realm whose
/// cause went away after an outage of t is retried within about t/10 (2 s for the first 20 s).
fn backoff(failing: Duration) -> Duration {
    (failing / 10).clamp(MIN_RETRY, MAX_RETRY)
}

/// Why a phase ended the reconcile early.
pub(crate) enum Stop {
    /// `spec.suspend` is true: nothing is changed.
    Suspended,
    /// Another Realm holds the realm id or the database: this one is refused.
    Refused { reason: Reason, message: String },
    /// A step failed; `condition` is the one it concerns (`Ready` for an invalid spec).
    Failed {
        condition: ConditionType,
        error: Error,
    },
}

impl Stop {
    /// For `map_err`: a failure of the phase behind `condition`.
    pub(crate) fn failed(condition: ConditionType) -> impl FnOnce(Error) -> Stop {
        move |error| Stop::Failed { condition, error }
    }
}

/// What a reconcile that went through every phase found.
struct Done {
    /// Nothing to wait for: the realm is ready, or scaled to zero on purpose.
    settled: bool,
    /// When to look again if sooner than the usual 30 s (a credential rotation whose old
    /// pods' grace period ends then).
    recheck: Option<Duration>,
}

/// Brings the world in line with a (non-deleted) Realm: the phases, then one status write.
async fn apply_realm(realm: &Realm, ctx: &Context) -> Result<Action, Error> {
    let mut report = Report::new(realm, ctx);
    let outcome = Box::pin(phases(realm, ctx, &mut report)).await;
    let result = match outcome {
        Ok(Done { settled, recheck }) => Ok(Action::requeue(if settled {
            ctx.config.resync
        } else {
            recheck.map_or(UNSETTLED_RECHECK, |d| d.min(UNSETTLED_RECHECK))
        })),
        Err(Stop::Suspended) => {
            report.suspended();
            Ok(Action::await_change())
        }
        Err(Stop::Refused { reason, message }) => {
            report.refused(reason, message);
            // Checked again after a while: the other Realm may go away.
            Ok(Action::requeue(Duration::from_secs(30)))
        }
        Err(Stop::Failed { condition, error }) => {
            report.failed(condition, &error);
            Err(error)
        }
    };
    Box::pin(report.write(ctx, realm)).await?;
    result
}

/// The phases in order; each hands the next what it needs.
async fn phases(realm: &Realm, ctx: &Context, report: &mut Report) -> Result<Done, Stop> {
    let refs = dereference::dereference(ctx, realm).await?;

    let mut creds = ctx
        .metrics
        .timed("database", database::provision(ctx, realm, &refs))
        .await?;
    report.clear(ConditionType::Conflict);
    report.set(RealmCondition::new(
        ConditionType::DatabaseReady,
        ConditionStatus::True,
        Reason::Provisioned,
        format!(
            "database {} with roles {} and {}; credentials in Secret {}",
            creds.names.database,
            creds.names.owner_role,
            creds.names.app_role,
            desired::db_secret_name(realm)
        ),
    ));
    report.database(desired::db_secret_name(realm), creds.names.database.clone());

    let workload = async {
        let objects = build::build(realm, &ctx.config, &creds)?;
        apply::apply(ctx, realm, &refs.namespace, objects).await
    };
    let (workload, live) = ctx
        .metrics
        .timed("workload", workload)
        .await
        .map_err(Stop::failed(ConditionType::WorkloadReady))?;
    let rotating = rotation::retire(ctx, realm, &refs, &mut creds, &live)
        .await
        .map_err(Stop::failed(ConditionType::DatabaseReady))?;
    // The old login is disabled as soon as the old pods' grace period is over (a second
    // late, so the check finds it over), not at the next 30 s check.
    let recheck = match rotating {
        Some(rotation::Rollout::Grace(left)) => Some(left + Duration::from_secs(1)),
        _ => None,
    };
    report.credentials(status::Credentials {
        user: creds.app_user.clone(),
        rotated_at: creds.rotation.rotated_at.clone(),
        retiring: creds.rotation.previous.clone(),
    });
    // A rotation under way is checked again soon: its old login is disabled once the pods
    // have moved.
    let settled = rotating.is_none()
        && (workload.status == ConditionStatus::True || workload.reason == Reason::ScaledToZero);
    report.set(workload);
    report.endpoint(refs.endpoint.clone());

    let registered = ctx
        .metrics
        .timed(
            "register",
            register::register(ctx, realm, &refs, report.was_registered()),
        )
        .await?;
    report.set(registered);
    Ok(Done { settled, recheck })
}

/// Publishes an Event about `realm` (a failure to publish is logged, never fatal).
pub(crate) async fn publish(
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

/// Publishes an Event about `realm` at most once per `key` (see
/// [`crate::events::Publisher::publish_once`]); a failure to publish is logged, never fatal.
pub(crate) async fn publish_once(
    ctx: &Context,
    realm: &Realm,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
    once: &str,
) {
    let reference: ObjectReference = realm.object_ref(&());
    let published = ctx
        .metrics
        .timed(
            "event",
            ctx.events
                .publish_once(reference, type_, reason, action, &note, once),
        )
        .await;
    if let Err(e) = published {
        warn!(realm = %key(realm), error = %e, "could not publish an event");
    }
}

/// One Event per kind of database change (roles created, database created, ...).
pub(crate) async fn publish_changes(
    ctx: &Context,
    realm: &Realm,
    action: &str,
    changes: &[Change],
) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_the_time_failing_and_caps() {
        let s = Duration::from_secs;
        assert_eq!(backoff(Duration::ZERO), s(2));
        assert_eq!(backoff(s(15)), s(2));
        assert_eq!(backoff(s(30)), s(3));
        assert_eq!(backoff(s(600)), s(60));
        assert_eq!(backoff(s(3000)), s(300));
        assert_eq!(backoff(s(86400)), s(300));
    }
}
