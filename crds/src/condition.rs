//! Typed status conditions of a Realm.
//!
//! `status.conditions` keeps the usual Kubernetes shape (`type`, `status`, `reason`, `message`,
//! `lastTransitionTime`, `observedGeneration`), so the schema and `kubectl` read them as always;
//! the operator only ever writes them through these types. `Ready` is never set by hand: it is
//! [`derive_ready`] of the others.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The realm's database and roles exist and the `<name>-db` Secret holds working credentials.
pub const DATABASE_READY: &str = ConditionType::DatabaseReady.as_str();
/// The worker Deployment has its minimum availability.
pub const WORKLOAD_READY: &str = ConditionType::WorkloadReady.as_str();
/// The hub's realm registry lists this realm with its current endpoint.
pub const REGISTERED: &str = ConditionType::Registered.as_str();
/// Everything above holds; the realm serves traffic.
pub const READY: &str = ConditionType::Ready.as_str();
/// Present (True) only while the Realm is refused because another Realm already uses its
/// realm id or its database; the operator then changes nothing for it.
pub const CONFLICT: &str = ConditionType::Conflict.as_str();
/// Present (True) only while a deleted Realm waits before its database is dropped (reason
/// [`Reason::ConfirmationRequired`]: the deletion is not confirmed yet).
pub const DELETING: &str = ConditionType::Deleting.as_str();

/// The condition types the operator maintains in `status.conditions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionType {
    /// See [`DATABASE_READY`].
    DatabaseReady,
    /// See [`WORKLOAD_READY`].
    WorkloadReady,
    /// See [`REGISTERED`].
    Registered,
    /// See [`READY`]; derived from the others by [`derive_ready`].
    Ready,
    /// See [`CONFLICT`].
    Conflict,
    /// See [`DELETING`].
    Deleting,
}

impl ConditionType {
    /// The conditions of the reconcile phases, in the order the phases run.
    pub const PHASES: [ConditionType; 3] = [
        ConditionType::DatabaseReady,
        ConditionType::WorkloadReady,
        ConditionType::Registered,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionType::DatabaseReady => "DatabaseReady",
            ConditionType::WorkloadReady => "WorkloadReady",
            ConditionType::Registered => "Registered",
            ConditionType::Ready => "Ready",
            ConditionType::Conflict => "Conflict",
            ConditionType::Deleting => "Deleting",
        }
    }

    /// What the condition is about, in the `Ready` message of a phase that is still waiting.
    fn subject(self) -> &'static str {
        match self {
            ConditionType::DatabaseReady => "database",
            ConditionType::WorkloadReady => "worker",
            ConditionType::Registered => "hub registration",
            ConditionType::Ready => "realm",
            ConditionType::Conflict => "conflict",
            ConditionType::Deleting => "deletion",
        }
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True / False / Unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// Why a condition has its status (the `reason` field, CamelCase). The failure reasons double
/// as the operator's error kinds (Warning Event reasons and the metrics' `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// DatabaseReady=True.
    Provisioned,
    /// WorkloadReady=True.
    Available,
    /// WorkloadReady=False: the Deployment reports it is not available.
    Unavailable,
    /// WorkloadReady=False: waiting for the Deployment's rollout.
    Progressing,
    /// WorkloadReady=False: `spec.worker.replicas` is 0.
    ScaledToZero,
    /// Registered=True.
    Registered,
    /// Ready=True.
    Ready,
    /// Ready=False: `spec.suspend` is true.
    Suspended,
    /// Ready=False while Conflict=True.
    Conflict,
    /// Conflict=True: another Realm holds the realm id.
    RealmIdInUse,
    /// Conflict=True: another Realm owns the database or its roles.
    DatabaseInUse,
    /// Conflict=True: the hub's registry entry for the realm id belongs to another Realm.
    RegistrationInUse,
    /// The Realm's spec cannot be reconciled.
    InvalidSpec,
    /// The admin-credentials Secret does not exist.
    AdminSecretNotFound,
    /// The admin-credentials Secret exists but cannot be used.
    AdminSecretInvalid,
    /// The Postgres server refused or failed a step.
    DatabaseError,
    /// The hub's admin API refused or could not be reached.
    HubError,
    /// The Kubernetes API refused or failed a call.
    KubernetesApiError,
    /// The finalizer could not be added or removed.
    FinalizerError,
    /// A bug or an impossible state.
    InternalError,
    /// Deleting=True (and Ready=False): the Realm is deleted with `deletionPolicy: Delete`, but
    /// dropping its database is not confirmed by the `pek.sch.bme.hu/confirm-delete` annotation.
    ConfirmationRequired,
    /// The logical dump that precedes every DROP of a realm's database failed or has no place
    /// to go: the database is not dropped.
    DumpFailed,
    /// `spec.database.restoreFrom` cannot be restored (the dump is missing, unreadable, of
    /// another realm or a newer schema, or the database already holds data): the worker is not
    /// started and the realm is not registered.
    RestoreFailed,
}

impl Reason {
    const ALL: [Reason; 23] = [
        Reason::Provisioned,
        Reason::Available,
        Reason::Unavailable,
        Reason::Progressing,
        Reason::ScaledToZero,
        Reason::Registered,
        Reason::Ready,
        Reason::Suspended,
        Reason::Conflict,
        Reason::RealmIdInUse,
        Reason::DatabaseInUse,
        Reason::RegistrationInUse,
        Reason::InvalidSpec,
        Reason::AdminSecretNotFound,
        Reason::AdminSecretInvalid,
        Reason::DatabaseError,
        Reason::HubError,
        Reason::KubernetesApiError,
        Reason::FinalizerError,
        Reason::InternalError,
        Reason::ConfirmationRequired,
        Reason::DumpFailed,
        Reason::RestoreFailed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Provisioned => "Provisioned",
            Reason::Available => "Available",
            Reason::Unavailable => "Unavailable",
            Reason::Progressing => "Progressing",
            Reason::ScaledToZero => "ScaledToZero",
            Reason::Registered => "Registered",
            Reason::Ready => "Ready",
            Reason::Suspended => "Suspended",
            Reason::Conflict => "Conflict",
            Reason::RealmIdInUse => "RealmIdInUse",
            Reason::DatabaseInUse => "DatabaseInUse",
            Reason::RegistrationInUse => "RegistrationInUse",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::AdminSecretNotFound => "AdminSecretNotFound",
            Reason::AdminSecretInvalid => "AdminSecretInvalid",
            Reason::DatabaseError => "DatabaseError",
            Reason::HubError => "HubError",
            Reason::KubernetesApiError => "KubernetesApiError",
            Reason::FinalizerError => "FinalizerError",
            Reason::InternalError => "InternalError",
            Reason::ConfirmationRequired => "ConfirmationRequired",
            Reason::DumpFailed => "DumpFailed",
            Reason::RestoreFailed => "RestoreFailed",
        }
    }

    /// The reason a stored condition names (None for one this version does not know).
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this reason means a step failed (as opposed to waiting, or done).
    pub const fn is_failure(self) -> bool {
        matches!(
            self,
            Reason::InvalidSpec
                | Reason::AdminSecretNotFound
                | Reason::AdminSecretInvalid
                | Reason::DatabaseError
                | Reason::HubError
                | Reason::KubernetesApiError
                | Reason::FinalizerError
                | Reason::InternalError
                | Reason::DumpFailed
                | Reason::RestoreFailed
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One condition as the operator determines it (the transition time is kept by [`set`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmCondition {
    pub type_: ConditionType,
    pub status: ConditionStatus,
    pub reason: Reason,
    pub message: String,
}

impl RealmCondition {
    pub fn new(
        type_: ConditionType,
        status: ConditionStatus,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        RealmCondition {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Sets `condition` in `conditions`, keeping its lastTransitionTime unless the status changed.
/// Returns whether anything (status, reason or message) changed.
pub fn set(
    conditions: &mut Vec<Condition>,
    condition: &RealmCondition,
    generation: Option<i64>,
    now: Timestamp,
) -> bool {
    let type_ = condition.type_.as_str();
    let status = condition.status.as_str();
    let new = |t: Timestamp| Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: condition.reason.as_str().to_string(),
        message: condition.message.clone(),
        observed_generation: generation,
        last_transition_time: Time(t),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let transition = if c.status == status {
                c.last_transition_time.0
            } else {
                now
            };
            let updated = new(transition);
            let changed = c.status != updated.status
                || c.reason != updated.reason
                || c.message != updated.message;
            *c = updated;
            changed
        }
        None => {
            conditions.push(new(now));
            true
        }
    }
}

/// Removes condition `type_`; returns whether it was there.
pub fn remove(conditions: &mut Vec<Condition>, type_: ConditionType) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_.as_str());
    conditions.len() != before
}

/// Condition `type_`, if set.
pub fn find(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// Whether condition `type_` is True.
pub fn is_true(conditions: &[Condition], type_: ConditionType) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True.as_str())
}

/// What the spec says before any phase runs, as far as `Ready` is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecState {
    /// The phases ran (or tried to): Ready follows their conditions.
    Reconciled,
    /// `spec.suspend` is true: nothing is reconciled.
    Suspended,
    /// The spec cannot be reconciled; the message says why.
    Invalid(String),
}

/// `Ready`, derived from the other conditions (the only way it is set):
/// suspended or invalid spec first; then a deletion that waits; then a Conflict; then the first phase condition (in phase
/// order) that failed; then the first one that is not True yet (still waiting); else Ready.
pub fn derive_ready(conditions: &[Condition], spec: &SpecState) -> RealmCondition {
    let not_ready = |reason, message: String| {
        RealmCondition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            reason,
            message,
        )
    };
    match spec {
        SpecState::Suspended => {
            return not_ready(
                Reason::Suspended,
                "spec.suspend is true: the operator changes nothing until it is false".into(),
            )
        }
        SpecState::Invalid(message) => return not_ready(Reason::InvalidSpec, message.clone()),
        SpecState::Reconciled => {}
    }
    if let Some(c) = find(conditions, ConditionType::Deleting)
        .filter(|c| c.status == ConditionStatus::True.as_str())
    {
        return not_ready(
            Reason::parse(&c.reason).unwrap_or(Reason::ConfirmationRequired),
            c.message.clone(),
        );
    }
    if let Some(c) = find(conditions, ConditionType::Conflict)
        .filter(|c| c.status == ConditionStatus::True.as_str())
    {
        return not_ready(Reason::Conflict, c.message.clone());
    }
    let phases = || {
        ConditionType::PHASES
            .into_iter()
            .map(|t| (t, find(conditions, t)))
    };
    let failed = phases().find_map(|(t, c)| {
        let c = c.filter(|c| c.status != ConditionStatus::True.as_str())?;
        let reason = Reason::parse(&c.reason).filter(|r| r.is_failure())?;
        Some((t, reason, c))
    });
    if let Some((t, reason, c)) = failed {
        return not_ready(reason, format!("{t}: {}", c.message));
    }
    let waiting =
        phases().find(|(_, c)| c.is_none_or(|c| c.status != ConditionStatus::True.as_str()));
    if let Some((t, c)) = waiting {
        return match c {
            Some(c) => not_ready(
                Reason::parse(&c.reason).unwrap_or(Reason::Progressing),
                format!("{}: {}", t.subject(), c.message),
            ),
            None => not_ready(
                Reason::Progressing,
                format!("{}: not checked yet", t.subject()),
            ),
        };
    }
    RealmCondition::new(
        ConditionType::Ready,
        ConditionStatus::True,
        Reason::Ready,
        "database, worker and hub registration are in place",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    fn c(t: ConditionType, s: ConditionStatus, r: Reason, m: &str) -> RealmCondition {
        RealmCondition::new(t, s, r, m)
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        use ConditionStatus::*;
        let t0 = Timestamp::now();
        let t1 = t0 + SignedDuration::from_secs(60);
        let t2 = t1 + SignedDuration::from_secs(60);
        let ready = ConditionType::Ready;
        let mut v = Vec::new();
        assert!(set(
            &mut v,
            &c(ready, False, Reason::Progressing, "waiting"),
            Some(1),
            t0
        ));
        assert!(set(
            &mut v,
            &c(ready, False, Reason::Progressing, "still waiting"),
            Some(1),
            t1
        ));
        assert_eq!(
            v[0].last_transition_time.0, t0,
            "same status keeps the time"
        );
        assert!(!set(
            &mut v,
            &c(ready, False, Reason::Progressing, "still waiting"),
            Some(1),
            t1
        ));
        assert!(set(
            &mut v,
            &c(ready, True, Reason::Ready, "ok"),
            Some(2),
            t2
        ));
        assert_eq!(v[0].last_transition_time.0, t2);
        assert_eq!(v[0].observed_generation, Some(2));
        assert!(is_true(&v, ready));
        assert_eq!(v.len(), 1);
        assert!(remove(&mut v, ready));
        assert!(!remove(&mut v, ready));
    }

    #[test]
    fn reasons_round_trip_and_compare_with_strings() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("SomethingNew"), None);
        assert!(Reason::HubError == "HubError");
        assert!(Reason::HubError.is_failure() && !Reason::Progressing.is_failure());
    }

    #[test]
    fn ready_is_derived_from_the_others() {
        use ConditionStatus::*;
        use ConditionType::*;
        let now = Timestamp::now();
        let mut v = Vec::new();
        let with = |v: &mut Vec<Condition>, x: RealmCondition| {
            set(v, &x, Some(1), now);
        };
        assert_eq!(
            derive_ready(&v, &SpecState::Reconciled).message,
            "database: not checked yet"
        );
        with(&mut v, c(DatabaseReady, True, Reason::Provisioned, "db"));
        with(
            &mut v,
            c(WorkloadReady, False, Reason::Progressing, "0/1 pods"),
        );
        with(&mut v, c(Registered, True, Reason::Registered, "listed"));
        let r = derive_ready(&v, &SpecState::Reconciled);
        assert_eq!((r.status, r.reason), (False, Reason::Progressing));
        assert_eq!(r.message, "worker: 0/1 pods");

        // A failure outranks a phase that is only waiting, also a later one.
        with(&mut v, c(Registered, False, Reason::HubError, "hub: down"));
        let r = derive_ready(&v, &SpecState::Reconciled);
        assert_eq!(
            (r.reason, r.message.as_str()),
            (Reason::HubError, "Registered: hub: down")
        );

        with(&mut v, c(Conflict, True, Reason::RealmIdInUse, "taken"));
        let r = derive_ready(&v, &SpecState::Reconciled);
        assert_eq!((r.reason, r.message.as_str()), (Reason::Conflict, "taken"));
        assert_eq!(
            derive_ready(&v, &SpecState::Suspended).reason,
            Reason::Suspended
        );
        let r = derive_ready(&v, &SpecState::Invalid("invalid Realm: x".into()));
        assert_eq!(
            (r.reason, r.message.as_str()),
            (Reason::InvalidSpec, "invalid Realm: x")
        );

        remove(&mut v, Conflict);
        // A deletion that waits for its confirmation outranks everything but the spec.
        with(
            &mut v,
            c(Deleting, True, Reason::ConfirmationRequired, "confirm it"),
        );
        let r = derive_ready(&v, &SpecState::Reconciled);
        assert_eq!(
            (r.status, r.reason, r.message.as_str()),
            (False, Reason::ConfirmationRequired, "confirm it")
        );
        remove(&mut v, Deleting);
        with(&mut v, c(Registered, True, Reason::Registered, "listed"));
        with(&mut v, c(WorkloadReady, True, Reason::Available, "1/1"));
        let r = derive_ready(&v, &SpecState::Reconciled);
        assert_eq!((r.status, r.reason), (True, Reason::Ready));
    }
}
