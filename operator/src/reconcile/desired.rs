//! The objects a Realm should have, built as pure functions of the Realm and the operator
//! configuration (unit-tested without any API server).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, Lifecycle, LifecycleHandler, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    Secret, SecretKeySelector, SecretVolumeSource, SecurityContext, Service, ServiceAccount,
    ServicePort, ServiceSpec, SleepAction, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;
use kube::{Resource, ResourceExt};
use pek_crds::Realm;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::db::{
    DbCredentials, RealmDbNames, CREDENTIALS_SINCE_ANNOTATION, GENERATED_ANNOTATION,
    ROTATED_AT_ANNOTATION, ROTATION_REQUEST_ANNOTATION,
};
use crate::federation::FederationSecret;
use crate::Error;

/// Port the worker listens on (`PEK_LISTEN=0.0.0.0:8080`).
pub(crate) const WORKER_PORT: i32 = 8080;
/// Label every object the operator manages carries (also the owned-object watch selector).
pub(crate) const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "pek-operator");
/// Label with the realm id on every managed object.
pub(crate) const REALM_LABEL: &str = "pek.sch.bme.hu/realm";
/// Pod-template annotation that changes when the database credentials change (rolls the pods).
pub(crate) const CREDENTIALS_HASH_ANNOTATION: &str = "pek.sch.bme.hu/db-credentials-hash";
/// Pod-template annotation that changes when the realm token changes (federation secret
/// rotated), so the workers restart and read the new token.
pub(crate) const HUB_TOKEN_HASH_ANNOTATION: &str = "pek.sch.bme.hu/hub-token-hash";
/// On the `<name>-db` Secret: the server (`host:port/database`) on which a database of the
/// Realm may exist. The Secret is first written once the server answered and before any SQL,
/// so deletion can tell "never provisioned" (no such Secret) from "may exist" without
/// relying on the status, which is written after the SQL.
pub const PROVISIONED_ON_ANNOTATION: &str = "pek.sch.bme.hu/provisioned-on";
/// Where the worker finds its realm token (`PEK_HUB_TOKEN_FILE`).
pub(crate) const HUB_TOKEN_DIR: &str = "/var/run/pek/hub-token";
/// Key of the realm token in the `<name>-hub-token` Secret (and file name in the mount).
pub(crate) const HUB_TOKEN_KEY: &str = "token";
/// UID the image runs as.
pub(crate) const RUN_AS_USER: i64 = 65532;
/// Seconds a worker pod keeps serving after it was told to stop, before it gets SIGTERM: the
/// Service's endpoints (and every node's proxy rules) drop a terminating pod only after the
/// deletion has been seen, and a connection routed to it meanwhile must still be answered.
pub(crate) const SHUTDOWN_DELAY_SECONDS: i64 = 5;

/// Names of the child objects of a Realm.
pub(crate) fn worker_name(realm: &Realm) -> String {
    format!("{}-worker", realm.name_any())
}

/// Name of the Secret holding the realm's database credentials.
pub(crate) fn db_secret_name(realm: &Realm) -> String {
    format!("{}-db", realm.name_any())
}

/// Name of the Secret holding the worker's realm token for reporting to the hub.
pub(crate) fn hub_token_secret_name(realm: &Realm) -> String {
    format!("{}-hub-token", realm.name_any())
}

/// The namespace of a (namespaced) Realm.
pub fn namespace(realm: &Realm) -> Result<String, Error> {
    realm
        .namespace()
        .ok_or_else(|| Error::InvalidSpec("Realm has no namespace".into()))
}

/// In-cluster URL of the realm's worker Service (what the hub is told).
pub fn endpoint(realm: &Realm) -> Result<String, Error> {
    Ok(format!(
        "http://{}.{}.svc:{WORKER_PORT}",
        worker_name(realm),
        namespace(realm)?
    ))
}

/// The worker image: the Realm's own or the operator's default.
pub fn worker_image<'a>(realm: &'a Realm, config: &'a Config) -> &'a str {
    realm
        .spec
        .worker
        .image
        .as_deref()
        .unwrap_or(&config.worker_image)
}

/// Version reported to the hub: the image tag (or digest), `latest` when untagged.
pub fn version_of(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return digest.to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag.to_string(),
        None => "latest".into(),
    }
}

/// Selector labels of the worker pods.
pub(crate) fn selector_labels(realm: &Realm) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "pek-worker".into()),
        ("app.kubernetes.io/instance".into(), realm.name_any()),
    ])
}

/// Labels on every object the operator creates for a Realm.
pub fn labels(realm: &Realm) -> BTreeMap<String, String> {
    let mut l = selector_labels(realm);
    l.insert("app.kubernetes.io/component".into(), "worker".into());
    l.insert("app.kubernetes.io/part-of".into(), "pek".into());
    l.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    l.insert(REALM_LABEL.into(), realm.spec.realm_id.clone());
    l
}

fn owner_ref(realm: &Realm) -> Result<OwnerReference, Error> {
    realm
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec("Realm has no uid yet".into()))
}

fn meta(realm: &Realm, name: String) -> Result<ObjectMeta, Error> {
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(namespace(realm)?),
        labels: Some(labels(realm)),
        owner_references: Some(vec![owner_ref(realm)?]),
        ..Default::default()
    })
}

fn selector(realm: &Realm) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(realm)),
        ..Default::default()
    }
}

/// The `<name>-db` Secret: connection URLs for the worker (app role) and its migrations (owner
/// role) plus the individual parts.
pub fn db_secret(realm: &Realm, creds: &DbCredentials) -> Result<Secret, Error> {
    let mut data = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        data.insert(k.to_string(), ByteString(v.into_bytes()));
    };
    put("DATABASE_URL", creds.app_url());
    put("MIGRATION_DATABASE_URL", creds.owner_url());
    put("host", creds.host.clone());
    put("port", creds.port.to_string());
    put("database", creds.names.database.clone());
    put("user", creds.app_user.clone());
    put("password", creds.app_password.clone());
    put("ownerUser", creds.names.owner_role.clone());
    put("ownerPassword", creds.owner_password.clone());
    // A rotation under way: the login prepared next (its password stored before the role gets
    // it), and the one the worker pods are leaving.
    let rotation = &creds.rotation;
    if let Some((user, password)) = &rotation.next {
        put("nextUser", user.clone());
        put("nextPassword", password.clone());
    }
    if let Some(previous) = &rotation.previous {
        put("previousUser", previous.clone());
    }
    let mut metadata = meta(realm, db_secret_name(realm))?;
    let mut annotations = BTreeMap::from([(
        PROVISIONED_ON_ANNOTATION.to_string(),
        format!("{}:{}/{}", creds.host, creds.port, creds.names.database),
    )]);
    if rotation.generated {
        annotations.insert(GENERATED_ANNOTATION.to_string(), "true".to_string());
    }
    if let Some(at) = &rotation.rotated_at {
        annotations.insert(ROTATED_AT_ANNOTATION.to_string(), at.clone());
    }
    if let Some(since) = &rotation.since {
        annotations.insert(CREDENTIALS_SINCE_ANNOTATION.to_string(), since.clone());
    }
    if let Some(request) = &rotation.request {
        annotations.insert(ROTATION_REQUEST_ANNOTATION.to_string(), request.clone());
    }
    if let Some(restore) = &creds.restore {
        annotations.insert(crate::db::RESTORE_ANNOTATION.to_string(), restore.clone());
    }
    metadata.annotations = Some(annotations);
    Ok(Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    })
}

/// The `<name>-hub-token` Secret: the realm token (`token`) the worker presents to the hub when
/// it reports membership changes, derived from the federation secret and the realm id.
pub fn hub_token_secret(realm: &Realm, secret: &FederationSecret) -> Result<Secret, Error> {
    Ok(Secret {
        metadata: meta(realm, hub_token_secret_name(realm))?,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            HUB_TOKEN_KEY.to_string(),
            ByteString(secret.realm_token(&realm.spec.realm_id).into_bytes()),
        )])),
        ..Default::default()
    })
}

/// The worker's ServiceAccount (no API token mounted: the worker never talks to Kubernetes).
pub fn service_account(realm: &Realm) -> Result<ServiceAccount, Error> {
    Ok(ServiceAccount {
        metadata: meta(realm, worker_name(realm))?,
        automount_service_account_token: Some(false),
        ..Default::default()
    })
}

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), Quantity("50m".into())),
            ("memory".into(), Quantity("64Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".into(),
            Quantity("512Mi".into()),
        )])),
        ..Default::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn env_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i32, failure: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failure),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

/// A short digest of the credentials, so a password change rolls the worker pods.
pub(crate) fn credentials_hash(creds: &DbCredentials) -> String {
    let mut h = Sha256::new();
    h.update(creds.app_url().as_bytes());
    h.update([0]);
    h.update(creds.owner_url().as_bytes());
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A short digest of a value (pod-template annotations that roll the pods when it changes).
fn short_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The worker Deployment: the `pek` image in worker mode, non-root, read-only root fs. With a
/// federation secret configured, the realm token Secret is mounted read-only and named by
/// `PEK_HUB_TOKEN_FILE`.
pub fn deployment(
    realm: &Realm,
    config: &Config,
    credentials_hash: &str,
) -> Result<Deployment, Error> {
    let secret = db_secret_name(realm);
    let mut pod_labels = labels(realm);
    pod_labels.remove(MANAGED_BY.0);
    let mut env_vars = vec![
        env("PEK_MODE", "worker"),
        env("PEK_REALM_ID", realm.spec.realm_id.clone()),
        env("PEK_REALM_DISPLAY_NAME", realm.display_name()),
        env_secret("DATABASE_URL", &secret, "DATABASE_URL"),
        env_secret(
            "PEK_MIGRATION_DATABASE_URL",
            &secret,
            "MIGRATION_DATABASE_URL",
        ),
        env("PEK_LISTEN", format!("0.0.0.0:{WORKER_PORT}")),
        env("PEK_HUB_URL", config.worker_hub_url().to_string()),
        env("PEK_LOG_FORMAT", "json"),
    ];
    if !realm.spec.admins.is_empty() {
        // The realm's administrators (AuthSCH ids; the CRD forbids commas in them).
        env_vars.push(env("PEK_REALM_ADMINS", realm.spec.admins.join(",")));
    }
    let mut mounts = vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    }];
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("64Mi".into())),
            ..Default::default()
        }),
        ..Default::default()
    }];
    let mut annotations = BTreeMap::from([(
        CREDENTIALS_HASH_ANNOTATION.to_string(),
        credentials_hash.to_string(),
    )]);
    if let Some(fed) = &config.federation_secret {
        env_vars.push(env(
            "PEK_HUB_TOKEN_FILE",
            format!("{HUB_TOKEN_DIR}/{HUB_TOKEN_KEY}"),
        ));
        mounts.push(VolumeMount {
            name: "hub-token".into(),
            mount_path: HUB_TOKEN_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(Volume {
            name: "hub-token".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(hub_token_secret_name(realm)),
                items: Some(vec![KeyToPath {
                    key: HUB_TOKEN_KEY.into(),
                    path: HUB_TOKEN_KEY.into(),
                    ..Default::default()
                }]),
                default_mode: Some(0o440),
                optional: Some(false),
            }),
            ..Default::default()
        });
        annotations.insert(
            HUB_TOKEN_HASH_ANNOTATION.into(),
            short_hash(&fed.realm_token(&realm.spec.realm_id)),
        );
    }
    let container = Container {
        name: "worker".into(),
        image: Some(worker_image(realm, config).into()),
        image_pull_policy: config.worker_image_pull_policy.clone(),
        args: Some(vec!["serve".into()]),
        env: Some(env_vars),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: WORKER_PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(http_probe("/readyz", 2, 3)),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: SHUTDOWN_DELAY_SECONDS,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        startup_probe: Some(http_probe("/healthz", 2, 60)),
        resources: Some(
            realm
                .spec
                .worker
                .resources
                .clone()
                .unwrap_or_else(default_resources),
        ),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    Ok(Deployment {
        metadata: meta(realm, worker_name(realm))?,
        spec: Some(DeploymentSpec {
            replicas: Some(realm.spec.worker.replicas),
            selector: selector(realm),
            // A new pod is Ready before an old one goes, also with one replica (the default
            // 25% rounds to the same for small counts, but only by accident).
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    // The pre-stop delay plus time to finish the requests in flight.
                    termination_grace_period_seconds: Some(
                        realm
                            .spec
                            .worker
                            .termination_grace_period_seconds
                            .unwrap_or(SHUTDOWN_DELAY_SECONDS + 25)
                            .max(SHUTDOWN_DELAY_SECONDS + 1),
                    ),
                    service_account_name: Some(worker_name(realm)),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(pod_security()),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The worker Service (ClusterIP, port 8080 named `http`).
pub fn service(realm: &Realm) -> Result<Service, Error> {
    Ok(Service {
        metadata: meta(realm, worker_name(realm))?,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(realm)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: WORKER_PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Ingress to the worker pods only from the hub pods (in the hub's namespace), on the http port.
pub fn network_policy(realm: &Realm, config: &Config) -> Result<NetworkPolicy, Error> {
    Ok(NetworkPolicy {
        metadata: meta(realm, worker_name(realm))?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(realm)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(
                            "kubernetes.io/metadata.name".into(),
                            config.hub_namespace.clone(),
                        )])),
                        ..Default::default()
                    }),
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(config.hub_pod_labels.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(WORKER_PORT)),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
            }]),
            ..Default::default()
        }),
    })
}

/// Keeps one worker pod up during voluntary disruptions; only wanted with more than one replica.
pub fn pod_disruption_budget(realm: &Realm) -> Result<Option<PodDisruptionBudget>, Error> {
    if realm.spec.worker.replicas <= 1 {
        return Ok(None);
    }
    Ok(Some(PodDisruptionBudget {
        metadata: meta(realm, worker_name(realm))?,
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(selector(realm)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

/// Database and role names of a Realm.
pub fn db_names(realm: &Realm) -> RealmDbNames {
    RealmDbNames::for_realm(&realm.spec.realm_id, realm.spec.database.name.as_deref())
}

/// Checks of the spec that the CRD schema cannot express; a failure is shown as a condition.
pub fn validate(realm: &Realm, config: &Config) -> Result<(), Error> {
    if !pek_crds::is_valid_realm_id(&realm.spec.realm_id) {
        return Err(Error::InvalidSpec(format!(
            "realmId {:?} is not a valid realm id (pattern {}, `hub` reserved)",
            realm.spec.realm_id,
            pek_crds::REALM_ID_PATTERN
        )));
    }
    if worker_name(realm).len() > 63 {
        return Err(Error::InvalidSpec(format!(
            "metadata.name {:?} is too long: the worker Service name {:?} must fit 63 characters",
            realm.name_any(),
            worker_name(realm)
        )));
    }
    if worker_image(realm, config).is_empty() {
        return Err(Error::InvalidSpec(
            "no worker image: set spec.worker.image or the operator's PEK_WORKER_IMAGE".into(),
        ));
    }
    Ok(())
}

/// The pod security of every pod the operator makes (the worker's and the backup's): the
/// image's non-root user, its group owning the volumes, the runtime's seccomp profile.
fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        fs_group: Some(RUN_AS_USER),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The container security of every container the operator makes: no privilege
/// escalation, a read-only root filesystem, no capabilities, the non-root user.
fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Name of a Realm's backup CronJob.
pub fn backup_name(realm: &Realm) -> String {
    format!("{}-backup", realm.name_any())
}

/// Where the backup pod mounts the dump place.
pub const BACKUP_DIR: &str = "/var/lib/pek/dumps";

/// The file-name stem of a Realm's scheduled backups (`<stem>-<UTC time>.dump`): the one of the
/// dump before a DROP plus `-backup`, so both sort by Realm and a backup's retention touches
/// only this Realm's backups.
pub fn backup_stem(realm: &Realm) -> Result<String, Error> {
    Ok(format!(
        "{}_{}_{}-backup",
        namespace(realm)?,
        realm.name_any(),
        db_names(realm).database
    ))
}

/// The `<name>-backup` CronJob of a Realm with `spec.backup`, when the operator has a place for
/// backups (None otherwise). It runs `pek-operator backup` from the operator's image (which
/// carries the dump code and the pg_dump the operator's own dumps use) as the realm's **owner
/// role** (its URL from the `<name>-db` Secret, the only Secret the pod sees) with row-level
/// security on and `pek.realm_id` set to the realm: the owner is bound by the forced RLS, so
/// it dumps exactly the realm's rows and needs no role that bypasses RLS. Non-root, read-only
/// root filesystem, no service account token, one run at a time.
pub fn backup_cron_job(realm: &Realm, config: &Config) -> Result<Option<CronJob>, Error> {
    let (Some(backup), Some(place)) = (&realm.spec.backup, &config.backups) else {
        return Ok(None);
    };
    let mut pod_labels = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "pek-backup".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), realm.name_any()),
        (
            "app.kubernetes.io/component".to_string(),
            "backup".to_string(),
        ),
        ("app.kubernetes.io/part-of".to_string(), "pek".to_string()),
    ]);
    pod_labels.insert(REALM_LABEL.into(), realm.spec.realm_id.clone());
    let mut labels = labels(realm);
    labels.insert("app.kubernetes.io/component".into(), "backup".into());
    let mut metadata = meta(realm, backup_name(realm))?;
    metadata.labels = Some(labels);
    let container = Container {
        name: "backup".into(),
        image: Some(place.image.clone()),
        image_pull_policy: config.worker_image_pull_policy.clone(),
        // The image's entrypoint is `pek`.
        command: Some(vec!["/usr/local/bin/pek-operator".into()]),
        args: Some(vec![
            "backup".into(),
            "--realm-id".into(),
            realm.spec.realm_id.clone(),
            "--dir".into(),
            BACKUP_DIR.into(),
            "--stem".into(),
            backup_stem(realm)?,
            "--retention-days".into(),
            backup.retention_days.to_string(),
        ]),
        env: Some(vec![
            env_secret(
                "PEK_BACKUP_DATABASE_URL",
                &db_secret_name(realm),
                "MIGRATION_DATABASE_URL",
            ),
            env("PEK_PG_DUMP", place.pg_dump.clone()),
            env("PEK_LOG_FORMAT", "json"),
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), Quantity("50m".into())),
                ("memory".into(), Quantity("64Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".into(),
                Quantity("512Mi".into()),
            )])),
            ..Default::default()
        }),
        security_context: Some(container_security()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "dumps".into(),
                mount_path: BACKUP_DIR.into(),
                ..Default::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let pod = PodSpec {
        restart_policy: Some("Never".into()),
        service_account_name: Some(worker_name(realm)),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(pod_security()),
        containers: vec![container],
        volumes: Some(vec![
            Volume {
                name: "dumps".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: place.claim.clone(),
                    read_only: Some(false),
                }),
                ..Default::default()
            },
            Volume {
                name: "tmp".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity("64Mi".into())),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    Ok(Some(CronJob {
        metadata,
        spec: Some(CronJobSpec {
            schedule: backup.schedule.clone(),
            time_zone: Some("Etc/UTC".into()),
            // A backup still running when the next is due is not joined by a second one.
            concurrency_policy: Some("Forbid".into()),
            // A run missed by more than an hour (controller down) waits for the next one.
            starting_deadline_seconds: Some(3600),
            successful_jobs_history_limit: Some(1),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels.clone()),
                    ..Default::default()
                }),
                spec: Some(JobSpec {
                    backoff_limit: Some(2),
                    active_deadline_seconds: Some(6 * 3600),
                    ttl_seconds_after_finished: Some(7 * 86400),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(pod_labels),
                            ..Default::default()
                        }),
                        spec: Some(pod),
                    },
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }))
}
