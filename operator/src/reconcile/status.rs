//! Phase 6: the one status write of a reconcile. The phases report their conditions (or the
//! failure or refusal that stopped them) into a [`Report`]; [`Report::write`] merges them into
//! the status the reconcile started from, derives `Ready`, publishes the Events for conditions
//! that changed, and writes the status only when it differs.

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use pek_crds::condition::{
    self, derive_ready, ConditionStatus, ConditionType, RealmCondition, Reason, SpecState,
};
use pek_crds::{Realm, RealmStatus};
use serde_json::json;

use super::register::NO_FEDERATION_SECRET;
use super::{desired, key, publish_once, Context};
use crate::config::FIELD_MANAGER;
use crate::events::EventType;
use crate::Error;

/// What the phases of one reconcile found, to be written as the Realm's status.
pub(crate) struct Report {
    /// The status this reconcile started from (the Realm's, or this operator's newer write).
    base: Option<RealmStatus>,
    spec: SpecState,
    /// Conditions determined by this reconcile, in the order the phases found them.
    conditions: Vec<RealmCondition>,
    /// Conditions that no longer apply.
    cleared: Vec<ConditionType>,
    /// The condition of the step that failed (a Warning Event is due when it changed).
    failed: Option<ConditionType>,
    endpoint: Option<String>,
    database: Option<(String, String)>,
    credentials: Option<Credentials>,
}

/// What the status says about the worker's database login.
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) rotated_at: Option<String>,
    pub(crate) retiring: Option<String>,
}

impl Report {
    /// A report starting from the Realm's status, or from this operator's own later write when
    /// the Realm is an older copy from the cache.
    pub(crate) fn new(realm: &Realm, ctx: &Context) -> Self {
        let mut base = realm.status.clone();
        let seen = realm
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        if let Ok(mut written) = ctx.written.lock() {
            let k = key(realm);
            match written.get(&k) {
                Some((wrote, status)) if seen.is_none_or(|seen| seen < *wrote) => {
                    base = Some(status.clone());
                }
                // The cache has caught up with that write: its copy is the newer one.
                Some(_) => {
                    written.remove(&k);
                }
                None => {}
            }
        }
        Report {
            base,
            spec: SpecState::Reconciled,
            conditions: Vec::new(),
            cleared: Vec::new(),
            failed: None,
            endpoint: None,
            database: None,
            credentials: None,
        }
    }

    /// Whether the starting status says the hub lists the realm.
    pub(crate) fn was_registered(&self) -> bool {
        self.base
            .as_ref()
            .is_some_and(|s| condition::is_true(&s.conditions, ConditionType::Registered))
    }

    pub(crate) fn set(&mut self, condition: RealmCondition) {
        self.conditions.push(condition);
    }

    pub(crate) fn clear(&mut self, type_: ConditionType) {
        self.cleared.push(type_);
    }

    pub(crate) fn endpoint(&mut self, endpoint: String) {
        self.endpoint = Some(endpoint);
    }

    /// The `<name>-db` Secret and the database name.
    pub(crate) fn database(&mut self, secret: String, name: String) {
        self.database = Some((secret, name));
    }

    /// The worker's login role and where its rotation stands.
    pub(crate) fn credentials(&mut self, credentials: Credentials) {
        self.credentials = Some(credentials);
    }

    /// `spec.suspend` is true.
    pub(crate) fn suspended(&mut self) {
        self.spec = SpecState::Suspended;
    }

    /// Another Realm holds the realm id or the database.
    pub(crate) fn refused(&mut self, reason: Reason, message: String) {
        self.set(RealmCondition::new(
            ConditionType::Conflict,
            ConditionStatus::True,
            reason,
            message,
        ));
    }

    /// The step behind `condition` failed with `error` (`Ready`: the spec is invalid).
    pub(crate) fn failed(&mut self, condition: ConditionType, error: &Error) {
        if condition == ConditionType::Ready {
            self.spec = SpecState::Invalid(error.message());
        } else {
            self.set(RealmCondition::new(
                condition,
                ConditionStatus::False,
                error.reason(),
                error.message(),
            ));
        }
        self.failed = Some(condition);
    }

    /// Merges the report into the starting status, derives `Ready`, publishes the Events of
    /// what changed, and writes the status when it differs from what is stored.
    pub(crate) async fn write(self, ctx: &Context, realm: &Realm) -> Result<(), Error> {
        let now = Timestamp::now();
        let generation = realm.metadata.generation;
        let mut status = self.base.clone().unwrap_or_default();
        let mut changed = Vec::new();
        // A condition cleared and found again in the same reconcile stays (with its time).
        for type_ in &self.cleared {
            let found_again = self.conditions.iter().any(|c| c.type_ == *type_);
            if !found_again && condition::remove(&mut status.conditions, *type_) {
                changed.push(*type_);
            }
        }
        for c in &self.conditions {
            if condition::set(&mut status.conditions, c, generation, now) {
                changed.push(c.type_);
            }
        }
        let ready = derive_ready(&status.conditions, &self.spec);
        if condition::set(&mut status.conditions, &ready, generation, now) {
            changed.push(ConditionType::Ready);
        }
        if let Some(endpoint) = self.endpoint {
            status.endpoint = Some(endpoint);
        }
        if let Some((secret, name)) = self.database {
            status.database_secret = Some(secret);
            status.database_name = Some(name);
        }
        if let Some(c) = self.credentials {
            status.database_user = Some(c.user);
            status.credentials_rotated_at = c.rotated_at;
            status.retiring_database_user = c.retiring;
        }
        let is_new = |t: ConditionType| changed.contains(&t);
        let found = |t: ConditionType| condition::find(&status.conditions, t).cloned();
        // Each Event below announces a transition of the status and is published once per
        // transition: keyed by the condition it comes from (as the stored status has it) and
        // where it goes. Repeated after the operator died before this status write, it is the
        // same Event and not sent twice; never written, the transition is found (and
        // announced) again by the next reconcile.
        let from_conditions = self
            .base
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        let transition = |t: ConditionType| -> String {
            let from = condition::find(&from_conditions, t).map_or_else(
                || "none".to_string(),
                |c| format!("{}/{}/{}", c.status, c.reason, c.last_transition_time.0),
            );
            let to = found(t).map_or_else(
                || "none".to_string(),
                |c| format!("{}/{}/{}", c.status, c.reason, c.message),
            );
            format!("{t}: {from} -> {to}")
        };

        if self.spec == SpecState::Suspended && is_new(ConditionType::Ready) {
            publish_once(
                ctx,
                realm,
                EventType::Normal,
                "Suspended",
                "Reconcile",
                "reconciliation suspended; database, worker and registration are kept as they are"
                    .into(),
                &transition(ConditionType::Ready),
            )
            .await;
        }
        if let Some(t) = self.failed.filter(|t| is_new(*t)) {
            if let Some(c) = found(t) {
                publish_once(
                    ctx,
                    realm,
                    EventType::Warning,
                    &c.reason,
                    "Reconcile",
                    c.message,
                    &transition(t),
                )
                .await;
            }
        }
        let conflict = found(ConditionType::Conflict);
        if let Some(c) = conflict.filter(|c| c.status == ConditionStatus::True.as_str()) {
            if is_new(ConditionType::Conflict) {
                publish_once(
                    ctx,
                    realm,
                    EventType::Warning,
                    "Conflict",
                    "Reconcile",
                    c.message,
                    &transition(ConditionType::Conflict),
                )
                .await;
            }
        }
        let deleting = found(ConditionType::Deleting);
        if let Some(c) = deleting.filter(|c| c.status == ConditionStatus::True.as_str()) {
            if is_new(ConditionType::Deleting) {
                publish_once(
                    ctx,
                    realm,
                    EventType::Warning,
                    "DeletionNotConfirmed",
                    "Delete",
                    c.message,
                    &transition(ConditionType::Deleting),
                )
                .await;
            }
        }
        // What the database phase found in place (also when an earlier operator made it and
        // died before announcing it).
        let database = found(ConditionType::DatabaseReady);
        if let Some(c) = database.filter(|c| c.status == ConditionStatus::True.as_str()) {
            if is_new(ConditionType::DatabaseReady) {
                publish_once(
                    ctx,
                    realm,
                    EventType::Normal,
                    "DatabaseReady",
                    "Reconcile",
                    c.message,
                    &transition(ConditionType::DatabaseReady),
                )
                .await;
            }
        }
        if is_new(ConditionType::Registered)
            && condition::is_true(&status.conditions, ConditionType::Registered)
            && ctx.config.federation_secret.is_none()
        {
            publish_once(
                ctx,
                realm,
                EventType::Warning,
                "FederationSecretMissing",
                "Register",
                NO_FEDERATION_SECRET.into(),
                &transition(ConditionType::Registered),
            )
            .await;
        }
        if is_new(ConditionType::Ready) && ready.status == ConditionStatus::True {
            publish_once(
                ctx,
                realm,
                EventType::Normal,
                "Ready",
                "Reconcile",
                "realm is ready".into(),
                &transition(ConditionType::Ready),
            )
            .await;
        }

        status.observed_generation = generation;
        if self.base.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<Realm> = Api::namespaced(ctx.client.clone(), &desired::namespace(realm)?);
        let patch = json!({
            "apiVersion": "pek.sch.bme.hu/v1alpha1",
            "kind": "Realm",
            "status": status,
        });
        // What the status says has its Event already (Events go out in the background).
        ctx.events.flush(&realm.uid().unwrap_or_default()).await;
        let written = ctx
            .metrics
            .timed(
                "status_write",
                api.patch_status(
                    &realm.name_any(),
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(patch),
                ),
            )
            .await?;
        ctx.metrics.wrote("Realm/status");
        if let Some(rv) = written
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
        {
            if let Ok(mut w) = ctx.written.lock() {
                w.insert(key(realm), (rv, status));
            }
        }
        Ok(())
    }
}
