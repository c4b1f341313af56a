//! The `Realm` custom resource (group `pek.sch.bme.hu`, version `v1alpha1`).
//!
//! A Realm is one isolated PéK deployment: the operator gives it its own Postgres database
//! (an owner role and an app role), a worker Deployment/Service/NetworkPolicy, and registers
//! it in the hub's realm registry. `crds/realm.yaml` is [`crd_yaml`]'s output; a test fails
//! when the two drift apart.

// clippy reads the repeated `printcolumn(type_ = ..)` entries of `#[kube(..)]` as duplicates.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the PéK custom resources.
pub const GROUP: &str = "pek.sch.bme.hu";
/// Finalizer the operator puts on every Realm it manages.
pub const FINALIZER: &str = "realms.pek.sch.bme.hu/cleanup";
/// The annotation that confirms dropping a `deletionPolicy: Delete` Realm's database: its value
/// must be the Realm's realm id (`kubectl annotate realm kszk pek.sch.bme.hu/confirm-delete=kszk`).
/// The operator checks it in its finalizer, before or after the Realm's deletion started.
pub const CONFIRM_DELETE_ANNOTATION: &str = "pek.sch.bme.hu/confirm-delete";
/// The annotation that asks for a rotation of the worker's database credentials now: any new
/// value (`kubectl annotate realm kszk --overwrite pek.sch.bme.hu/rotate-credentials="$(date +%s)"`)
/// starts one rotation; the value a rotation answered is remembered, so the same value never
/// starts a second one.
pub const ROTATE_CREDENTIALS_ANNOTATION: &str = "pek.sch.bme.hu/rotate-credentials";
/// The realm id rule (see `pek-realm-id`): the CEL rule on `spec.realmId` below is
/// `self.matches('<REALM_ID_PATTERN>')`, and a test checks that the apiserver's CEL and
/// [`is_valid_realm_id`] agree.
pub use pek_realm_id::{
    is_valid_realm_id, is_well_formed_realm_id, REALM_ID_PATTERN, RESERVED_REALM_ID,
};

/// Typed status conditions (types, reasons, and `Ready` derived from the others).
pub mod condition;

/// A PéK realm: an isolated deployment with its own database and worker, registered with the hub.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pek.sch.bme.hu",
    version = "v1alpha1",
    kind = "Realm",
    plural = "realms",
    singular = "realm",
    namespaced,
    shortname = "rlm",
    category = "pek",
    status = "RealmStatus",
    derive = "PartialEq",
    doc = "A PéK realm: an isolated deployment with its own Postgres database and worker, registered with the hub. The operator provisions the database (an owner and an app role, credentials in the Secret <name>-db), runs the worker, and keeps the hub's realm registry up to date.",
    printcolumn(
        name = "Realm",
        type_ = "string",
        description = "Realm id",
        json_path = ".spec.realmId"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the realm is ready",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        description = "Why the realm is (not) ready",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Endpoint",
        type_ = "string",
        description = "In-cluster URL of the realm's worker",
        json_path = ".status.endpoint"
    ),
    printcolumn(
        name = "Suspended",
        type_ = "boolean",
        description = "Whether reconciliation is suspended",
        json_path = ".spec.suspend",
        priority = 1
    ),
    printcolumn(
        name = "Deletion",
        type_ = "string",
        description = "Why a deletion waits (ConfirmationRequired: annotate the Realm with pek.sch.bme.hu/confirm-delete=<realmId>, or set spec.database.deletionPolicy to Retain)",
        json_path = ".status.conditions[?(@.type==\"Deleting\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RealmSpec {
    /// Realm id: lowercase letters, digits and '-', 2 to 63 characters, starting with a letter
    /// and ending with a letter or digit; `hub` is reserved. It is the realm's name in API paths
    /// (/api/v1/realms/{realmId}/...) and in the hub registry. Immutable.
    #[x_kube(
        validation = Rule::new("self.matches('^[a-z][a-z0-9-]{0,61}[a-z0-9]$')").message("realmId must be 2-63 lowercase letters, digits or '-', start with a letter and end with a letter or digit").reason(Reason::FieldValueInvalid),
        validation = Rule::new("self != 'hub'").message("realmId 'hub' is reserved for the hub itself").reason(Reason::FieldValueForbidden),
        validation = Rule::new("self == oldSelf").message("realmId is immutable").reason(Reason::FieldValueForbidden)
    )]
    #[schemars(length(min = 2, max = 63))]
    pub realm_id: String,

    /// Human-readable name shown in the hub's realm list. Defaults to the realm id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub display_name: Option<String>,

    /// AuthSCH ids of the realm's administrators: the worker trusts these users as realm
    /// admins (passed to it as PEK_REALM_ADMINS, comma-separated). Each id is 1 to 128
    /// characters without commas or whitespace; at most 64 ids, no duplicates. Empty or unset:
    /// the realm has no administrators besides the hub's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(
        validation = Rule::new("self.all(a, a.matches('^[^,\\\\s]+$'))").message("admins must be AuthSCH ids without commas or whitespace").reason(Reason::FieldValueInvalid),
        merge_strategy = ListMerge::Set
    )]
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    pub admins: Vec<String>,

    /// Sign-in providers (ids of the hub's provider registry, e.g. `authsch`) whose sessions may
    /// use this realm: the hub mints a token for the realm only for a session signed in through
    /// one of them, and shows the realm to others as "sign in with ... to see this". Unset: every
    /// global provider of the hub. At most 16 ids, each 1-64 of a-z, 0-9 and '-'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("self.all(p, p.matches('^[a-z0-9-]{1,64}$'))").message("providers must be provider ids: 1-64 of a-z, 0-9 and '-'").reason(Reason::FieldValueInvalid),
        merge_strategy = ListMerge::Set
    )]
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 64)))]
    pub providers: Option<Vec<String>>,

    /// Database settings: which Postgres server hosts the realm's database and what happens to it
    /// when the Realm is deleted.
    pub database: DatabaseSpec,

    /// Worker settings: image, replicas and resources of the realm's worker Deployment.
    #[serde(default)]
    pub worker: WorkerSpec,

    /// Scheduled logical backups of the realm's database: a CronJob `<name>-backup` writes a
    /// `pg_dump` custom-format archive into the operator's dump place on this schedule (files
    /// `<namespace>_<name>_<database>-backup-<UTC time>.dump`, which `database.restoreFrom`
    /// can name) and removes this Realm's backups older than the retention. Unset: no backups
    /// (removing it deletes the CronJob; the files stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,

    /// Suspend reconciliation: when true the operator changes nothing (database, worker, hub
    /// registration) and keeps everything as it is. Deleting a suspended Realm releases it without
    /// deregistering it or dropping its database.
    #[serde(default)]
    pub suspend: bool,
}

/// Where and how the realm's Postgres database is provisioned.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)").message("database.name is immutable").reason(Reason::FieldValueForbidden),
    validation = Rule::new("has(self.restoreFrom) == has(oldSelf.restoreFrom) && (!has(self.restoreFrom) || self.restoreFrom == oldSelf.restoreFrom)").message("database.restoreFrom is immutable: it only says what a new Realm's database starts from").reason(Reason::FieldValueForbidden)
)]
pub struct DatabaseSpec {
    /// Secret (in the Realm's namespace) with admin credentials of the Postgres server: either a
    /// key `uri` holding a postgres:// URL, or keys `host`, `port` (default 5432), `username`,
    /// `password` and optionally `dbname` (default `postgres`) and `sslmode`. The admin needs
    /// CREATEROLE and CREATEDB (or superuser).
    pub admin_secret_ref: SecretRef,

    /// Name of the realm's database. Defaults to `pek_<realmId with '-' as '_'>`. The owner and app
    /// roles are named `<database>_owner` and `<database>_app`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[a-z_][a-z0-9_]{0,49}$')").message("database.name must be 1-50 lowercase letters, digits or '_' and must not start with a digit").reason(Reason::FieldValueInvalid))]
    #[schemars(length(min = 1, max = 50))]
    pub name: Option<String>,

    /// What happens to the database and its roles when the Realm is deleted: `Retain` (default)
    /// keeps them, `Delete` drops them, but only once the Realm carries the annotation
    /// `pek.sch.bme.hu/confirm-delete` with the realm id as its value (set before or after the
    /// delete). Until then a deleted Realm waits: its worker is removed, the database is kept,
    /// and the condition `Deleting` (reason `ConfirmationRequired`) says what to do; switching
    /// to `Retain` releases it with the database kept.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Rotate the worker's database password this often: a duration such as `720h`, `30d` or
    /// `1d12h` (units s, m, h, d), counted from the last rotation (or from when the operator
    /// generated the credentials). Unset: only on demand, with the annotation
    /// `pek.sch.bme.hu/rotate-credentials` set to a new value. A rotation never stops the worker:
    /// a second login role (`<database>_app_a` or `_b`, a member of `<database>_app`) gets a new
    /// password, the `<name>-db` Secret switches to it, the worker Deployment rolls, and the old
    /// login is disabled (NOLOGIN, no password) only after every worker pod runs with the new
    /// one. Credentials in a `<name>-db` Secret the operator did not generate are never
    /// rotated. Checked at each resync (`resyncSeconds`), so a rotation may start up to one
    /// resync period late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]{1,6}[smhd])+$')").message("rotateEvery must be a duration such as 720h, 30d or 1d12h (units s, m, h, d)").reason(Reason::FieldValueInvalid))]
    #[schemars(length(min = 2, max = 32))]
    pub rotate_every: Option<String>,

    /// Start the realm's database from a logical dump instead of empty: the operator checks the
    /// dump (readable, of this realm id, of a schema this version knows), creates the database
    /// and roles, restores the dump into it as the owner role in one transaction, and only then
    /// starts the worker (which applies newer migrations) and registers the realm. It is
    /// restored once: the `<name>-db` Secret records it, and a database that already holds
    /// data is never restored over (the Realm then fails with reason `RestoreFailed`, as it
    /// does for a missing or unreadable dump). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RestoreSource>,
}

/// A logical dump to restore a new realm's database from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSource {
    /// File name of a dump in the operator's dump place (`PEK_DUMP_DIR`; chart:
    /// `operator.dumps.persistentVolumeClaim`): a `pg_dump --format=custom` archive such as the
    /// operator writes before every DROP (`<namespace>_<name>_<database>-<UTC time>.dump`) or a
    /// scheduled backup writes. A plain file name ending in `.dump`, no directories.
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_][A-Za-z0-9._-]{0,250}[.]dump$')").message("restoreFrom.dumpFile must be a file name in the operator's dump place ending in .dump (letters, digits, '.', '_', '-'; no '/', not hidden)").reason(Reason::FieldValueInvalid))]
    #[schemars(length(min = 6, max = 255))]
    pub dump_file: String,
}

impl RestoreSource {
    /// Whether `dump_file` is a plain file name the operator may open in its dump place (the
    /// same rule as the CRD's; checked again by the operator, which must never open a path
    /// outside that directory whatever the API server let through).
    pub fn is_valid_file_name(name: &str) -> bool {
        let bytes = name.as_bytes();
        name.len() >= 6
            && name.len() <= 255
            && name.ends_with(".dump")
            && bytes
                .first()
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }
}

/// `spec.database.rotateEvery` as a duration (None when unset or not a duration).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !number.is_empty() || total == 0 {
        return None;
    }
    Some(std::time::Duration::from_secs(total))
}

/// Reference to a Secret in the Realm's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What to do with the realm's database when the Realm is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Keep the database and its roles (the data survives the Realm).
    #[default]
    Retain,
    /// Drop the database and its roles, once the deletion is confirmed with the annotation
    /// `pek.sch.bme.hu/confirm-delete: <realmId>`.
    Delete,
}

/// Scheduled backups of a realm's database.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// When to back up: a cron schedule in UTC (`0 3 * * *`: every day at 03:00), five fields,
    /// or a macro such as `@daily`.
    #[x_kube(validation = Rule::new("self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9*/,?LW#A-Za-z-]+( +[0-9*/,?LW#A-Za-z-]+){4})$')").message("backup.schedule must be a cron schedule of five fields (e.g. '0 3 * * *') or a macro such as @daily").reason(Reason::FieldValueInvalid))]
    #[schemars(length(min = 6, max = 100))]
    pub schedule: String,

    /// Days a backup is kept: after each backup, this Realm's backups older than this are
    /// removed, but never the newest one. Default 30.
    #[serde(default = "default_backup_retention_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub retention_days: u32,
}

fn default_backup_retention_days() -> u32 {
    30
}

/// The realm's worker Deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// Container image of the `pek` binary (run in worker mode). Defaults to the operator's
    /// configured worker image (the image the chart installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// Number of worker pods. With more than one a PodDisruptionBudget keeps one available.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,

    /// CPU and memory requests and limits of the worker container. Defaults to requests of 50m
    /// CPU and 64Mi memory and a 512Mi memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Seconds a stopping worker pod has to finish its requests: it leaves the Service
    /// first (5 s), then drains. Also how long a credential rotation waits after the
    /// worker's rollout before it disables the old login (a stopping pod may still use
    /// it). Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 6, max = 3600))]
    pub termination_grace_period_seconds: Option<i64>,
}

fn default_replicas() -> i32 {
    1
}

impl Default for WorkerSpec {
    fn default() -> Self {
        Self {
            image: None,
            replicas: default_replicas(),
            resources: None,
            termination_grace_period_seconds: None,
        }
    }
}

/// Observed state of a Realm, written by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RealmStatus {
    /// The metadata.generation the operator last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// DatabaseReady, WorkloadReady, Registered and Ready, each with reason, message and the time
    /// of the last transition; Conflict while another Realm holds the realm id or database, and
    /// Deleting while a deletion waits (reason ConfirmationRequired: the database is dropped only
    /// after the pek.sch.bme.hu/confirm-delete annotation names the realm id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// In-cluster URL of the realm's worker, as registered with the hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,

    /// Name of the Secret holding the realm's database credentials (DATABASE_URL,
    /// MIGRATION_DATABASE_URL, host, port, database, user, password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_secret: Option<String>,

    /// Name of the realm's Postgres database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,

    /// The login role the worker's credentials (the `<name>-db` Secret) name: `<database>_app`
    /// until the first rotation, then `<database>_app_a` and `<database>_app_b` in turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_user: Option<String>,

    /// When the worker's database credentials last switched to a new login role (a rotation by
    /// `spec.database.rotateEvery` or by the annotation `pek.sch.bme.hu/rotate-credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_rotated_at: Option<String>,

    /// A login role still allowed to log in while the worker pods move to the new credentials;
    /// it is disabled once every worker pod uses the new ones (unset: no rotation under way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_database_user: Option<String>,
}

impl Realm {
    /// The realm's display name (the realm id when unset).
    pub fn display_name(&self) -> &str {
        self.spec
            .display_name
            .as_deref()
            .unwrap_or(&self.spec.realm_id)
    }
}

/// The Realm CRD as it is installed: the derived one with every description unwrapped into
/// paragraphs (doc comments keep their hard line breaks, which `kubectl explain` would print as
/// ragged lines) and without `worker.resources.claims` (alpha dynamic resource allocation: a
/// worker pod that sets it cannot start, so it is not offered).
pub fn crd() -> CustomResourceDefinition {
    let mut crd = Realm::crd();
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            if let Some(resources) = schema
                .properties
                .as_mut()
                .and_then(|p| p.get_mut("spec"))
                .and_then(|s| s.properties.as_mut())
                .and_then(|p| p.get_mut("worker"))
                .and_then(|w| w.properties.as_mut())
                .and_then(|p| p.get_mut("resources"))
                .and_then(|r| r.properties.as_mut())
            {
                resources.remove("claims");
            }
            unwrap_descriptions(schema);
        }
    }
    crd
}

/// Joins the lines of each paragraph of every description (blank lines separate paragraphs).
fn unwrap_descriptions(schema: &mut JSONSchemaProps) {
    if let Some(d) = schema.description.as_mut() {
        *d = unwrap_paragraphs(d);
    }
    for props in [
        schema.properties.as_mut(),
        schema.pattern_properties.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        props.values_mut().for_each(unwrap_descriptions);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        unwrap_descriptions(items);
    }
    if let Some(JSONSchemaPropsOrArray::Schemas(items)) = schema.items.as_mut() {
        items.iter_mut().for_each(unwrap_descriptions);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
        unwrap_descriptions(extra);
    }
    for list in [
        schema.all_of.as_mut(),
        schema.any_of.as_mut(),
        schema.one_of.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        list.iter_mut().for_each(unwrap_descriptions);
    }
}

/// `text` with the single line breaks inside each paragraph replaced by spaces; paragraphs
/// (separated by blank lines) stay apart.
pub fn unwrap_paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|p| {
            p.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The CRD as YAML, exactly as `pek-operator crd` prints it and `crds/realm.yaml` holds it.
pub fn crd_yaml() -> String {
    let body = serde_yaml::to_string(&crd()).expect("the CRD serialises to YAML");
    format!(
        "# Generated by `pek-operator crd` from the Rust types in crds/src/lib.rs; do not edit.\n\
         # Regenerate: cargo run -q -p pek-operator -- crd > crds/realm.yaml && cp crds/realm.yaml charts/pek-hub/crds/realm.yaml\n\
         {body}"
    )
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn rotate_every_durations() {
        assert_eq!(
            parse_duration("720h"),
            Some(Duration::from_secs(720 * 3600))
        );
        assert_eq!(
            parse_duration("1d12h"),
            Some(Duration::from_secs(36 * 3600))
        );
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        for bad in ["", "0s", "12", "1w", "h", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn restore_file_names_stay_in_the_dump_place() {
        use super::RestoreSource;
        for good in [
            "pek-system_kszk_pek_kszk-20261207T120000Z.dump",
            "a.dump",
            "_x.dump",
        ] {
            assert!(RestoreSource::is_valid_file_name(good), "{good}");
        }
        for bad in [
            "",
            ".dump",
            "../x.dump",
            "a/b.dump",
            ".hidden.dump",
            "x.sql",
            "x.dump.partial",
            "a b.dump",
        ] {
            assert!(!RestoreSource::is_valid_file_name(bad), "{bad}");
        }
    }
}
