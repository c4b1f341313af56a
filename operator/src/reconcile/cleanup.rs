//! Deletion: deregister, drop the database only with `deletionPolicy: Delete`; the child
//! objects go with the Realm through their owner references. A step that cannot be done yet
//! reports its condition through the same one status write as a reconcile.

use kube::runtime::controller::Action;
use kube::ResourceExt;
use pek_crds::condition::{self, ConditionStatus, ConditionType, Reason};
use pek_crds::{DeletionPolicy, Realm};
use tracing::info;

use super::database::owner;
use super::dereference::{admin_target, realm_id_holder};
use super::status::Report;
use super::{desired, key, publish, publish_changes, Context};
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
    if let Err((condition, error)) = Box::pin(steps(realm, ctx, &ns)).await {
        let mut report = Report::new(realm, ctx);
        report.failed(condition, &error);
        Box::pin(report.write(ctx, realm)).await?;
        return Err(error);
    }
    if let Ok(mut w) = ctx.written.lock() {
        w.remove(&key(realm));
    }
    info!(realm = %key(realm), "realm cleaned up");
    Ok(Action::await_change())
}

/// Deregistration, then the database; an error names the condition it concerns.
async fn steps(realm: &Realm, ctx: &Context, ns: &str) -> Result<(), (ConditionType, Error)> {
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
                let blocked = Error::DeletionBlocked {
                    reason: Reason::HubError,
                    hint: "deletion waits for the hub. If the hub is gone for good, set \
                           spec.suspend: true to release the Realm without deregistering (its \
                           database is then kept)",
                    source: Box::new(e),
                };
                return Err((ConditionType::Registered, blocked));
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
    // Else: deregistered in an earlier attempt of this deletion (the database step failed).

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
                let target = admin_target(ctx, realm, ns, false).await?;
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
                    publish(
                        ctx,
                        realm,
                        EventType::Normal,
                        "DatabaseNeverProvisioned",
                        "Delete",
                        format!(
                            "no database was ever provisioned for this Realm; nothing to drop ({})",
                            e.message()
                        ),
                    )
                    .await;
                }
                Err(e) => {
                    let blocked = Error::DeletionBlocked {
                        reason: Reason::DatabaseError,
                        hint: "deletion waits until the database can be dropped. To release the \
                               Realm and keep the database, set spec.suspend: true",
                        source: Box::new(e),
                    };
                    return Err((ConditionType::DatabaseReady, blocked));
                }
            }
        }
    }
    if let Ok(mut d) = ctx.deregistered.lock() {
        d.remove(&uid);
    }
    Ok(())
}
