//! Phase 2: provision the database — the `<name>-db` Secret first (so the password is stored
//! before it is used), then roles and database; a database another Realm owns refuses this one.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use pek_crds::condition::{ConditionType, Reason};
use pek_crds::Realm;
use tracing::warn;

use super::apply::{applied_before, applied_event, record_applied, Outcome};
use super::dereference::References;
use super::{desired, diff, publish_changes, Context, Stop};
use crate::cache::{lookup, Lookup};
use crate::config::FIELD_MANAGER;
use crate::db::{DbCredentials, Owner};
use crate::Error;

/// Provisions the database; stops with a refusal when another Realm owns it.
pub(crate) async fn provision(
    ctx: &Context,
    realm: &Realm,
    refs: &References,
) -> Result<DbCredentials, Stop> {
    match provision_inner(ctx, realm, refs).await {
        Ok(creds) => Ok(creds),
        Err(Error::Conflict(message)) => Err(Stop::Refused {
            reason: Reason::DatabaseInUse,
            message,
        }),
        Err(error) => Err(Stop::Failed {
            condition: ConditionType::DatabaseReady,
            error,
        }),
    }
}

async fn provision_inner(
    ctx: &Context,
    realm: &Realm,
    refs: &References,
) -> Result<DbCredentials, Error> {
    let target = &refs.admin;
    let ns = refs.namespace.as_str();
    let names = desired::db_names(realm);
    let secret_name = desired::db_secret_name(realm);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let plan = |existing: Option<Secret>| -> Result<_, Error> {
        let creds = DbCredentials::from_existing(target, names.clone(), existing.as_ref())
            .unwrap_or_else(|| DbCredentials::generate(target, names.clone()));
        let want = desired::db_secret(realm, &creds)?;
        let want_json = serde_json::to_value(&want).map_err(Error::serialize("the db Secret"))?;
        let up_to_date = existing.as_ref().is_some_and(|s| {
            serde_json::to_value(s).is_ok_and(|have| diff::contains(&want_json, &have))
        });
        Ok((existing, creds, want, up_to_date))
    };
    // The watch cache answers the steady state and, for a new Realm, that there is no Secret
    // yet; otherwise the API server decides.
    let mut planned = None;
    match lookup::<Secret>(ctx.caches.get(), ns, &secret_name) {
        Lookup::Found(secret) if !older_than_written(ctx, ns, &secret) => {
            let p = plan(Some(secret))?;
            if p.3 {
                planned = Some(p);
            }
        }
        Lookup::NotInSyncedCache if !applied_before(ctx, "Secret", ns, &secret_name) => {
            planned = Some(plan(None)?);
        }
        _ => {}
    }
    let (existing, creds, want, up_to_date) = match planned {
        Some(p) => p,
        None => plan(secrets.get_opt(&secret_name).await?)?,
    };
    if !up_to_date {
        // From its first write on, the Secret says that a database of this Realm may exist
        // (deletion reads it): so it is written only once the server answered — a Realm whose
        // server never answered has nothing to drop — and before any SQL, so the passwords are
        // stored before they are used.
        if existing.is_none() {
            ctx.db.reachable(target).await?;
        }
        let written = secrets
            .patch(
                &secret_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&want),
            )
            .await?;
        remember_written(ctx, ns, &written);
        ctx.metrics.wrote("Secret");
        record_applied(ctx, "Secret", ns, &secret_name);
        let outcome = if existing.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        };
        applied_event(ctx, realm, "Secret", &secret_name, outcome).await;
    }
    let me = owner(realm)?;
    // Reconciles right after a provisioning (started by the Realm's own new children and
    // status) skip Postgres; each resync checks it again. What was changed is announced also
    // when a later step fails (roles created before `CREATE DATABASE` failed exist).
    let mut changes = Vec::new();
    let ensured = match ctx
        .db
        .ensure_unless_fresh(&creds, &me, ctx.config.resync / 2, &mut changes)
        .await
    {
        Err(Error::Conflict(msg)) => {
            // Recorded owners that no longer exist (a Realm deleted with Retain) hand the
            // database over: re-creating a Realm onto a retained database is supported.
            take_over(ctx, target, &creds, &me, msg, &mut changes).await
        }
        other => other,
    };
    publish_changes(ctx, realm, "ProvisionDatabase", &changes).await;
    ensured?;
    let mut creds = creds;
    // Before the worker can start (the phases after this one): a Realm that starts from a
    // dump gets it now, or stops here.
    super::restore::restore(ctx, realm, refs, &mut creds).await?;
    super::rotation::advance(ctx, realm, refs, &mut creds, &me).await?;
    Ok(creds)
}

/// Records the resourceVersion of a `<name>-db` Secret this operator just wrote.
pub(crate) fn remember_written(ctx: &Context, ns: &str, written: &Secret) {
    let rv = written
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(rv), Ok(mut map)) = (rv, ctx.db_secret_written.lock()) {
        map.insert(format!("{ns}/{}", written.name_any()), rv);
    }
}

/// Whether `cached` is older than the copy this operator last wrote (then the API server is
/// asked instead).
fn older_than_written(ctx: &Context, ns: &str, cached: &Secret) -> bool {
    let seen = cached
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok());
    let wrote = ctx
        .db_secret_written
        .lock()
        .ok()
        .and_then(|m| m.get(&format!("{ns}/{}", cached.name_any())).copied());
    match (seen, wrote) {
        (Some(seen), Some(wrote)) => seen < wrote,
        // Not comparable: the API server decides.
        (None, Some(_)) => true,
        _ => false,
    }
}

/// Provisions a database whose recorded owners are all gone (else the refusal `msg` stands).
async fn take_over(
    ctx: &Context,
    target: &crate::db::AdminTarget,
    creds: &DbCredentials,
    me: &Owner,
    msg: String,
    changes: &mut Vec<crate::db::Change>,
) -> Result<(), Error> {
    let others = ctx.db.other_owners(target, &creds.names, me).await?;
    let mut gone = Vec::new();
    for other in &others {
        if !realm_exists(ctx, other).await {
            gone.push(other.uid.clone());
        }
    }
    if gone.len() < others.len() {
        return Err(Error::Conflict(msg));
    }
    ctx.db.ensure_reporting(creds, me, &gone, changes).await
}

/// The ownership record of a Realm (what is written on its database and roles).
pub(crate) fn owner(realm: &Realm) -> Result<Owner, Error> {
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
