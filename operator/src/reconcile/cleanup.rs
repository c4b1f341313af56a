//! Deletion: deregister, then the database. With `deletionPolicy: Retain` it is kept; with
//! `Delete` it is dropped only when the Realm confirms it (the annotation
//! `pek.sch.bme.hu/confirm-delete: <realmId>`, checked here, in the finalizer, so no way of
//! deleting a Realm skips it). An unconfirmed deletion removes the worker, keeps the database
//! and waits with the condition `Deleting` (reason `ConfirmationRequired`) and a Warning Event.
//! Whether a database may exist is judged from the `<name>-db` Secret, which provisioning
//! writes before any SQL, not only from the status, which is written after it. The remaining
//! child objects go with the Realm through their owner references. A step that cannot be done
//! yet reports its condition through the same one status write as a reconcile.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::NamespaceResourceScope;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use pek_crds::condition::{self, ConditionStatus, ConditionType, RealmCondition, Reason};
use pek_crds::{DeletionPolicy, Realm, CONFIRM_DELETE_ANNOTATION};
use serde::de::DeserializeOwned;
use tracing::info;

use super::database::owner;
use super::dereference::{admin_target, realm_id_holder};
use super::status::Report;
use super::{desired, key, publish, publish_changes, Context};
use crate::cache::{lookup, Cached, Lookup};
use crate::db::Change;
use crate::events::EventType;
use crate::Error;

pub(crate) async fn cleanup(realm: &Realm, ctx: &Context) -> Result<Action, Error> {
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
        condition::find(&s.conditions, ConditionType::Conflict).is_some_and(|c| {
            c.status == ConditionStatus::True.as_str()
                && c.reason != Reason::RegistrationInUse.as_str()
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
    if let Err(wait) = Box::pin(steps(realm, ctx, &ns)).await {
        let mut report = Report::new(realm, ctx);
        let error = match wait {
            Wait::Confirmation(message) => {
                report.set(RealmCondition::new(
                    ConditionType::Deleting,
                    ConditionStatus::True,
                    Reason::ConfirmationRequired,
                    message.clone(),
                ));
                Error::DeletionUnconfirmed(message)
            }
            Wait::Blocked(condition, error) => {
                report.clear(ConditionType::Deleting);
                report.failed(condition, &error);
                error
            }
        };
        Box::pin(report.write(ctx, realm)).await?;
        return Err(error);
    }
    if let Ok(mut w) = ctx.written.lock() {
        w.remove(&key(realm));
    }
    info!(realm = %key(realm), "realm cleaned up");
    Ok(Action::await_change())
}

/// Why a deletion cannot finish yet.
enum Wait {
    /// `deletionPolicy: Delete` without the confirmation; the message says what to do.
    Confirmation(String),
    /// A step failed; the error names the condition it concerns.
    Blocked(ConditionType, Error),
}

/// `Wait::Blocked` on `condition` with `reason` and `hint`, for `map_err`.
fn blocked(
    condition: ConditionType,
    reason: Reason,
    hint: &'static str,
) -> impl FnOnce(Error) -> Wait {
    move |e| {
        Wait::Blocked(
            condition,
            Error::DeletionBlocked {
                reason,
                hint,
                source: Box::new(e),
            },
        )
    }
}

const DATABASE_HINT: &str = "deletion waits until the database can be dropped. To release the \
                             Realm and keep the database, set spec.suspend: true";

const NO_DUMP_HINT: &str = "configure a place for dumps (operator PEK_DUMP_DIR; chart: \
                           operator.dumps.persistentVolumeClaim), or set \
                           spec.database.deletionPolicy: Retain to release the Realm with its \
                           database kept";

/// Deregistration, then the database.
async fn steps(realm: &Realm, ctx: &Context, ns: &str) -> Result<(), Wait> {
    let uid = realm.uid().unwrap_or_default();
    let already = ctx.deregistered.lock().is_ok_and(|d| d.contains(&uid));
    if !already {
        let deregistered = ctx
            .hub
            .deregister(&realm.spec.realm_id, Some(uid.as_str()))
            .await;
        let (reason, note) = match deregistered {
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
                return Err(blocked(
                    ConditionType::Registered,
                    Reason::HubError,
                    "deletion waits for the hub. If the hub is gone for good, set \
                     spec.suspend: true to release the Realm without deregistering (its \
                     database is then kept)",
                )(e));
            }
        };
        if let Ok(mut r) = ctx.registered.lock() {
            r.remove(&key(realm));
        }
        if let Ok(mut d) = ctx.deregistered.lock() {
            d.insert(uid.clone());
        }
        publish(ctx, realm, EventType::Normal, reason, "Delete", note).await;
    }
    // Else: deregistered in an earlier attempt of this deletion (a later step waited).

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
                    desired::db_names(realm).database
                ),
            )
            .await;
        }
        DeletionPolicy::Delete => drop_database(realm, ctx, ns).await?,
    }
    if let Ok(mut d) = ctx.deregistered.lock() {
        d.remove(&uid);
    }
    Ok(())
}

/// `deletionPolicy: Delete`: once confirmed, the worker goes and the database is dropped.
async fn drop_database(realm: &Realm, ctx: &Context, ns: &str) -> Result<(), Wait> {
    let names = desired::db_names(realm);
    // Blocked on the database: the reason is the cause's (DatabaseError, DumpFailed, ...).
    let db_blocked = |e: Error| {
        Wait::Blocked(
            ConditionType::DatabaseReady,
            Error::DeletionBlocked {
                reason: e.reason(),
                hint: DATABASE_HINT,
                source: Box::new(e),
            },
        )
    };
    let me = owner(realm).map_err(db_blocked)?;
    let marker = may_have_a_database(realm, ctx, ns).await.map_err(blocked(
        ConditionType::DatabaseReady,
        Reason::KubernetesApiError,
        DATABASE_HINT,
    ))?;
    if !marker {
        // No `<name>-db` Secret and no status: provisioning never started, so nothing was
        // created for this Realm — unless the Secret was removed by hand, which the owner
        // recorded on the database tells when the server can be asked.
        let recorded = match admin_target(ctx, realm, ns, false).await {
            Ok(t) => ctx
                .db
                .records_owner(&t, &names, &me)
                .await
                .map_err(|e| e.message()),
            Err(e) => Err(e.message()),
        };
        if recorded != Ok(true) {
            let why = recorded
                .err()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            publish(
                ctx,
                realm,
                EventType::Normal,
                "DatabaseNeverProvisioned",
                "Delete",
                format!(
                    "no database was ever provisioned for this Realm (no Secret {} and no \
                     status); nothing to drop{why}",
                    desired::db_secret_name(realm)
                ),
            )
            .await;
            return Ok(());
        }
    }
    let confirmed = confirmation(realm);
    // The worker goes first either way: nothing writes to the database while it waits for the
    // confirmation or is dropped.
    remove_worker(ctx, realm, ns).await.map_err(blocked(
        ConditionType::WorkloadReady,
        Reason::KubernetesApiError,
        DATABASE_HINT,
    ))?;
    if let Err(unconfirmed) = confirmed {
        return Err(Wait::Confirmation(unconfirmed));
    }
    let target = admin_target(ctx, realm, ns, false)
        .await
        .map_err(db_blocked)?;
    // A dump before every DROP; without a place for it nothing is dropped, unless the operator
    // was told to drop without one.
    let stem = format!("{ns}_{}_{}", realm.name_any(), names.database);
    let dump = match (&ctx.config.dumps, ctx.config.drop_without_dump) {
        (Some(dumps), _) => Some((dumps, stem.as_str())),
        (None, true) => None,
        (None, false) => {
            return Err(Wait::Blocked(
                ConditionType::DatabaseReady,
                Error::DeletionBlocked {
                    reason: Reason::DumpFailed,
                    hint: NO_DUMP_HINT,
                    source: Box::new(Error::Dump(format!(
                        "database {} is not dropped: no place is configured for the dump that \
                         precedes every DROP",
                        names.database
                    ))),
                },
            ));
        }
    };
    match ctx.db.dump_and_drop(&target, &names, &me, dump).await {
        Ok(changes) => {
            let dropped = changes
                .iter()
                .any(|c| matches!(c, Change::DatabaseDropped(_)));
            if dump.is_none() && dropped {
                publish(
                    ctx,
                    realm,
                    EventType::Warning,
                    "DroppedWithoutDump",
                    "Delete",
                    format!(
                        "database {} dropped without a dump (PEK_DROP_WITHOUT_DUMP is set and \
                         PEK_DUMP_DIR is not)",
                        names.database
                    ),
                )
                .await;
            }
            publish_changes(ctx, realm, "Delete", &changes).await;
        }
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
        Err(e) => return Err(db_blocked(e)),
    }
    Ok(())
}

/// Whether a database of this Realm may exist: its status says so, or its `<name>-db` Secret
/// exists with the `provisioned-on` mark (first written once the server answered and before
/// the first SQL statement, so an operator killed between `CREATE DATABASE` and the status
/// write still leaves it behind). Read from the API server: a deletion must not trust a cache
/// that may lag.
async fn may_have_a_database(realm: &Realm, ctx: &Context, ns: &str) -> Result<bool, Error> {
    let in_status = realm
        .status
        .as_ref()
        .is_some_and(|s| s.database_name.is_some() || s.database_secret.is_some());
    if in_status {
        return Ok(true);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = secrets.get_opt(&desired::db_secret_name(realm)).await?;
    Ok(secret.is_some_and(|s| {
        owned_by(&s, realm)
            && s.annotations()
                .contains_key(desired::PROVISIONED_ON_ANNOTATION)
    }))
}

/// Does `object` name `realm` (by uid) among its owners?
fn owned_by<K: Resource>(object: &K, realm: &Realm) -> bool {
    let uid = realm.uid();
    object
        .owner_references()
        .iter()
        .any(|r| Some(&r.uid) == uid.as_ref())
}

/// Ok when the Realm confirms dropping its database (the annotation names its realm id); else
/// what the user can do, for the condition and the Event.
pub(crate) fn confirmation(realm: &Realm) -> Result<(), String> {
    let id = &realm.spec.realm_id;
    let given = realm.annotations().get(CONFIRM_DELETE_ANNOTATION);
    if given.is_some_and(|v| v.trim() == id) {
        return Ok(());
    }
    let ns = realm.namespace().unwrap_or_default();
    let name = realm.name_any();
    let database = desired::db_names(realm).database;
    let wrong = match given {
        Some(v) => {
            format!(" (the annotation {CONFIRM_DELETE_ANNOTATION} is {v:?}, not the realm id)")
        }
        None => String::new(),
    };
    Err(format!(
        "deletionPolicy is Delete, but dropping database {database} is not confirmed{wrong}: the \
         worker is removed and the database is kept. To drop it: kubectl -n {ns} annotate realm \
         {name} --overwrite {CONFIRM_DELETE_ANNOTATION}={id}. To keep it and release the Realm: \
         kubectl -n {ns} patch realm {name} --type=merge -p \
         '{{\"spec\":{{\"database\":{{\"deletionPolicy\":\"Retain\"}}}}}}'"
    ))
}

/// Deletes the worker objects of a Realm being deleted (Deployment first); an Event names what
/// went. The two Secrets stay until the Realm is released (the operator may not delete
/// Secrets; they are garbage-collected with it).
async fn remove_worker(ctx: &Context, realm: &Realm, ns: &str) -> Result<(), Error> {
    let name = desired::worker_name(realm);
    let mut removed = Vec::new();
    if remove::<Deployment>(ctx, realm, ns, &name).await? {
        removed.push("Deployment");
    }
    if remove::<PodDisruptionBudget>(ctx, realm, ns, &name).await? {
        removed.push("PodDisruptionBudget");
    }
    if remove::<Service>(ctx, realm, ns, &name).await? {
        removed.push("Service");
    }
    if remove::<NetworkPolicy>(ctx, realm, ns, &name).await? {
        removed.push("NetworkPolicy");
    }
    // The backup CronJob's pods run as the worker's ServiceAccount: without it they could
    // not start. Its schedule ends with the worker; the dump before a DROP is the last copy.
    if remove::<CronJob>(ctx, realm, ns, &desired::backup_name(realm)).await? {
        removed.push("backup CronJob");
    }
    if remove::<ServiceAccount>(ctx, realm, ns, &name).await? {
        removed.push("ServiceAccount");
    }
    if !removed.is_empty() {
        publish(
            ctx,
            realm,
            EventType::Normal,
            "WorkerRemoved",
            "Delete",
            format!("deleted the worker's {} {name}", removed.join(", ")),
        )
        .await;
    }
    Ok(())
}

/// Deletes `name` of kind `K` when it exists and this Realm owns it; whether it did.
async fn remove<K>(ctx: &Context, realm: &Realm, ns: &str, name: &str) -> Result<bool, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Cached
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let live = match lookup::<K>(ctx.caches.get(), ns, name) {
        Lookup::Found(o) => Some(o),
        Lookup::NotInSyncedCache => None,
        Lookup::Unknown => api.get_opt(name).await?,
    };
    let Some(live) = live else {
        return Ok(false);
    };
    if !owned_by(&live, realm) || live.meta().deletion_timestamp.is_some() {
        return Ok(false);
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            ctx.metrics.wrote(&K::kind(&()));
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}
