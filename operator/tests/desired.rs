//! Unit tests of every object the operator builds from a Realm.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use pek_crds::Realm;
use pek_operator::config::Config;
use pek_operator::db::{AdminTarget, DbCredentials, RealmDbNames};
use pek_operator::reconcile::desired;
use serde_json::{json, Value};

fn realm(spec: Value) -> Realm {
    serde_json::from_value(json!({
        "apiVersion": "pek.sch.bme.hu/v1alpha1",
        "kind": "Realm",
        "metadata": {"name": "kszk", "namespace": "realms", "uid": "u-1", "generation": 3},
        "spec": spec,
    }))
    .expect("valid realm")
}

fn basic() -> Realm {
    realm(
        json!({"realmId": "kszk", "displayName": "KSZK", "database": {"adminSecretRef": {"name": "pg-admin"}}}),
    )
}

fn creds(r: &Realm) -> DbCredentials {
    let admin = Secret {
        data: Some(BTreeMap::from([(
            "uri".to_string(),
            ByteString(
                b"postgres://postgres:adminpw@pg.db.svc:5432/postgres?sslmode=disable".to_vec(),
            ),
        )])),
        ..Default::default()
    };
    let target = AdminTarget::from_secret(&admin).expect("admin");
    let existing = Secret {
        data: Some(BTreeMap::from([
            ("ownerPassword".to_string(), ByteString(b"ownerpw".to_vec())),
            ("password".to_string(), ByteString(b"apppw".to_vec())),
        ])),
        ..Default::default()
    };
    DbCredentials::from_existing(&target, desired::db_names(r), Some(&existing)).expect("creds")
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("json")
}

fn owned_and_labelled(obj: &Value, name: &str) {
    assert_eq!(obj["metadata"]["name"], name);
    assert_eq!(obj["metadata"]["namespace"], "realms");
    let owner = &obj["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Realm");
    assert_eq!(owner["apiVersion"], "pek.sch.bme.hu/v1alpha1");
    assert_eq!(owner["uid"], "u-1");
    assert_eq!(owner["controller"], true);
    let labels = &obj["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "pek-operator");
    assert_eq!(labels["pek.sch.bme.hu/realm"], "kszk");
    assert_eq!(labels["app.kubernetes.io/instance"], "kszk");
}

#[test]
fn db_secret_holds_ready_urls_for_both_roles() {
    let r = basic();
    let s = to_json(&desired::db_secret(&r, &creds(&r)).expect("secret"));
    owned_and_labelled(&s, "kszk-db");
    let get = |k: &str| {
        let b64 = s["data"][k].as_str().unwrap_or_else(|| panic!("key {k}"));
        let bytes: ByteString = serde_json::from_value(json!(b64)).expect("base64");
        String::from_utf8(bytes.0).expect("utf8")
    };
    assert_eq!(
        get("DATABASE_URL"),
        "postgres://pek_kszk_app:apppw@pg.db.svc:5432/pek_kszk?sslmode=disable"
    );
    assert_eq!(
        get("MIGRATION_DATABASE_URL"),
        "postgres://pek_kszk_owner:ownerpw@pg.db.svc:5432/pek_kszk?sslmode=disable"
    );
    assert_eq!(get("host"), "pg.db.svc");
    assert_eq!(get("port"), "5432");
    assert_eq!(get("database"), "pek_kszk");
    assert_eq!(get("user"), "pek_kszk_app");
    assert_eq!(get("password"), "apppw");
    assert_eq!(get("ownerUser"), "pek_kszk_owner");
    assert_eq!(get("ownerPassword"), "ownerpw");
}

#[test]
fn deployment_runs_the_worker_hardened_with_env_from_the_secret() {
    let r = basic();
    let config = Config::for_tests();
    let d = to_json(&desired::deployment(&r, &config, "abc123").expect("deployment"));
    owned_and_labelled(&d, "kszk-worker");
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "pek-worker", "app.kubernetes.io/instance": "kszk"})
    );
    let pod = &d["spec"]["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["pek.sch.bme.hu/db-credentials-hash"],
        "abc123"
    );
    assert_eq!(pod["spec"]["serviceAccountName"], "kszk-worker");
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["spec"]["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["image"], "ghcr.io/schonherz/pek:0.1.0");
    assert_eq!(c["args"], json!(["serve"]));
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["resources"]["requests"]["memory"], "64Mi");
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    let env: BTreeMap<String, Value> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().expect("name").to_string(), e.clone()))
        .collect();
    assert_eq!(env["PEK_MODE"]["value"], "worker");
    assert_eq!(env["PEK_REALM_ID"]["value"], "kszk");
    assert_eq!(env["PEK_REALM_DISPLAY_NAME"]["value"], "KSZK");
    assert!(
        !env.contains_key("PEK_REALM_ADMINS"),
        "no admins: no variable"
    );
    assert_eq!(env["PEK_LISTEN"]["value"], "0.0.0.0:8080");
    assert_eq!(
        env["PEK_HUB_URL"]["value"],
        "http://pek-hub.pek-system.svc:8080"
    );
    assert_eq!(env["PEK_LOG_FORMAT"]["value"], "json");
    assert_eq!(
        env["DATABASE_URL"]["valueFrom"]["secretKeyRef"],
        json!({"name": "kszk-db", "key": "DATABASE_URL", "optional": false})
    );
    assert_eq!(
        env["PEK_MIGRATION_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"],
        "MIGRATION_DATABASE_URL"
    );
    assert_eq!(pod["spec"]["volumes"][0]["name"], "tmp");
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/tmp");
    // The realm token for membership reports, mounted read-only from <name>-hub-token.
    assert_eq!(
        env["PEK_HUB_TOKEN_FILE"]["value"],
        "/var/run/pek/hub-token/token"
    );
    assert_eq!(
        c["volumeMounts"][1],
        json!({"name": "hub-token", "mountPath": "/var/run/pek/hub-token", "readOnly": true})
    );
    assert_eq!(
        pod["spec"]["volumes"][1],
        json!({"name": "hub-token", "secret": {"secretName": "kszk-hub-token",
               "items": [{"key": "token", "path": "token"}], "defaultMode": 0o440,
               "optional": false}})
    );
    assert_eq!(
        pod["metadata"]["annotations"]["pek.sch.bme.hu/hub-token-hash"]
            .as_str()
            .map(str::len),
        Some(16)
    );
    assert!(
        !d.to_string().contains(KSZK_TOKEN),
        "the token itself is not in the Deployment"
    );
}

/// `realm_token("0123456789abcdef-federation-secret", "kszk")`, computed independently (Python
/// hmac/base64) — what `pek::federation::realm_token` gives and the hub accepts.
const KSZK_TOKEN: &str = "Fznsd-dYpjZXmQCuxT6awURimLgOqv5iY58_e0TQ1X4";

#[test]
fn hub_token_secret_holds_the_realm_token() {
    let r = basic();
    let config = Config::for_tests();
    let secret = config.federation_secret.as_ref().expect("test secret");
    let s = to_json(&desired::hub_token_secret(&r, secret).expect("secret"));
    owned_and_labelled(&s, "kszk-hub-token");
    assert_eq!(s["type"], "Opaque");
    let data = s["data"].as_object().expect("data");
    assert_eq!(data.len(), 1);
    let token: ByteString = serde_json::from_value(data["token"].clone()).expect("base64");
    assert_eq!(String::from_utf8(token.0).expect("utf8"), KSZK_TOKEN);
}

#[test]
fn rotating_the_federation_secret_rolls_the_workers() {
    let r = basic();
    let a = to_json(&desired::deployment(&r, &Config::for_tests(), "h").expect("deployment"));
    let mut other = Config::for_tests();
    other.federation_secret = Some(
        pek_operator::federation::FederationSecret::new("a-different-federation-secret")
            .expect("secret"),
    );
    let b = to_json(&desired::deployment(&r, &other, "h").expect("deployment"));
    let hash = |d: &Value| {
        d["spec"]["template"]["metadata"]["annotations"]["pek.sch.bme.hu/hub-token-hash"].clone()
    };
    assert_ne!(hash(&a), hash(&b));
}

#[test]
fn without_a_federation_secret_the_worker_gets_no_token() {
    let r = basic();
    let config = Config {
        federation_secret: None,
        ..Config::for_tests()
    };
    let d = to_json(&desired::deployment(&r, &config, "h").expect("deployment"));
    let pod = &d["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert!(!c["env"]
        .as_array()
        .expect("env")
        .iter()
        .any(|e| e["name"] == "PEK_HUB_TOKEN_FILE"));
    assert_eq!(
        pod["spec"]["volumes"],
        json!([{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}])
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "tmp", "mountPath": "/tmp"}])
    );
    assert_eq!(
        pod["metadata"]["annotations"],
        json!({"pek.sch.bme.hu/db-credentials-hash": "h"})
    );
}

#[test]
fn deployment_follows_worker_settings() {
    let r = realm(
        json!({"realmId": "kszk", "database": {"adminSecretRef": {"name": "a"}},
        "worker": {"image": "registry.local/pek:2.0.1", "replicas": 3,
                   "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}},
                   "terminationGracePeriodSeconds": 8}}),
    );
    let d = to_json(&desired::deployment(&r, &Config::for_tests(), "h").expect("deployment"));
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        8
    );
    let default = to_json(&desired::deployment(&basic(), &Config::for_tests(), "h").expect("d"));
    assert_eq!(
        default["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        30
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.local/pek:2.0.1");
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}})
    );
    assert_eq!(
        desired::version_of("registry.local:5000/pek:2.0.1"),
        "2.0.1"
    );
    assert_eq!(desired::version_of("registry.local:5000/pek"), "latest");
    assert_eq!(desired::version_of("pek@sha256:abc"), "sha256:abc");
}

#[test]
fn service_account_service_and_endpoint() {
    let r = basic();
    let sa = to_json(&desired::service_account(&r).expect("sa"));
    owned_and_labelled(&sa, "kszk-worker");
    assert_eq!(sa["automountServiceAccountToken"], false);
    let svc = to_json(&desired::service(&r).expect("svc"));
    owned_and_labelled(&svc, "kszk-worker");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        svc["spec"]["selector"],
        json!({"app.kubernetes.io/name": "pek-worker", "app.kubernetes.io/instance": "kszk"})
    );
    assert_eq!(
        desired::endpoint(&r).expect("endpoint"),
        "http://kszk-worker.realms.svc:8080"
    );
}

#[test]
fn network_policy_admits_only_hub_pods() {
    let r = basic();
    let np = to_json(&desired::network_policy(&r, &Config::for_tests()).expect("np"));
    owned_and_labelled(&np, "kszk-worker");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(
        np["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        "kszk"
    );
    let rules = np["spec"]["ingress"].as_array().expect("rules");
    assert_eq!(rules.len(), 1);
    let from = rules[0]["from"].as_array().expect("from");
    assert_eq!(from.len(), 1);
    assert_eq!(
        from[0]["namespaceSelector"]["matchLabels"],
        json!({"kubernetes.io/metadata.name": "pek-system"})
    );
    assert_eq!(
        from[0]["podSelector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "pek-hub", "app.kubernetes.io/instance": "pek"})
    );
    assert_eq!(
        rules[0]["ports"],
        json!([{"port": 8080, "protocol": "TCP"}])
    );
}

#[test]
fn pdb_only_with_more_than_one_replica() {
    assert!(desired::pod_disruption_budget(&basic())
        .expect("ok")
        .is_none());
    let r = realm(
        json!({"realmId": "kszk", "database": {"adminSecretRef": {"name": "a"}}, "worker": {"replicas": 2}}),
    );
    let pdb = to_json(
        &desired::pod_disruption_budget(&r)
            .expect("ok")
            .expect("pdb"),
    );
    owned_and_labelled(&pdb, "kszk-worker");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        "pek-worker"
    );
}

#[test]
fn validation_catches_what_the_schema_cannot() {
    let config = Config::for_tests();
    desired::validate(&basic(), &config).expect("valid");
    let mut long = basic();
    long.metadata.name = Some("x".repeat(60));
    let err = desired::validate(&long, &config).unwrap_err();
    assert!(err.to_string().contains("too long"), "{err}");
    let bad = realm(json!({"realmId": "hub", "database": {"adminSecretRef": {"name": "a"}}}));
    assert!(desired::validate(&bad, &config)
        .unwrap_err()
        .to_string()
        .contains("hub"));
    let mut no_image = Config::for_tests();
    no_image.worker_image = String::new();
    assert!(desired::validate(&basic(), &no_image)
        .unwrap_err()
        .to_string()
        .contains("image"));
    assert_eq!(
        desired::db_names(&basic()),
        RealmDbNames::for_realm("kszk", None)
    );
}

#[test]
fn worker_gets_display_name_and_realm_admins() {
    let env_of = |r: &Realm| -> BTreeMap<String, String> {
        let d = to_json(&desired::deployment(r, &Config::for_tests(), "h").expect("deployment"));
        d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?.to_string(),
                    e["value"].as_str()?.to_string(),
                ))
            })
            .collect()
    };
    let r = realm(
        json!({"realmId": "kszk", "displayName": "Kollégiumi Számítástechnikai Kör",
        "admins": ["3f2a-11", "bb-9"], "database": {"adminSecretRef": {"name": "a"}}}),
    );
    let env = env_of(&r);
    assert_eq!(
        env["PEK_REALM_DISPLAY_NAME"],
        "Kollégiumi Számítástechnikai Kör"
    );
    assert_eq!(env["PEK_REALM_ADMINS"], "3f2a-11,bb-9");
    // Without a display name the worker is told the realm id (what the hub shows too).
    let r = realm(json!({"realmId": "kszk", "database": {"adminSecretRef": {"name": "a"}}}));
    assert_eq!(env_of(&r)["PEK_REALM_DISPLAY_NAME"], "kszk");
}

#[test]
fn backup_cron_job_dumps_as_the_owner_into_the_claim_hardened() {
    let with_backup = realm(json!({
        "realmId": "kszk",
        "database": {"adminSecretRef": {"name": "pg-admin"}},
        "backup": {"schedule": "0 3 * * *", "retentionDays": 14},
    }));
    let place = pek_operator::config::Backups {
        claim: "pek-dumps".into(),
        image: "ghcr.io/schonherz/pek:pg".into(),
        pg_dump: "/usr/lib/postgresql/17/bin/pg_dump".into(),
    };
    let config = Config {
        backups: Some(place),
        ..Config::for_tests()
    };
    // No CronJob without spec.backup, or without a place for backups.
    assert!(desired::backup_cron_job(&basic(), &config)
        .expect("builds")
        .is_none());
    assert!(desired::backup_cron_job(&with_backup, &Config::for_tests())
        .expect("builds")
        .is_none());

    let cj = to_json(
        &desired::backup_cron_job(&with_backup, &config)
            .expect("builds")
            .expect("a CronJob"),
    );
    owned_and_labelled(&cj, "kszk-backup");
    let spec = &cj["spec"];
    assert_eq!(spec["schedule"], "0 3 * * *");
    assert_eq!(spec["timeZone"], "Etc/UTC");
    assert_eq!(spec["concurrencyPolicy"], "Forbid");
    let job = &spec["jobTemplate"]["spec"];
    let pod = &job["template"]["spec"];
    // Not a worker pod: the worker Service and Deployment never select it.
    let pod_labels = &job["template"]["metadata"]["labels"];
    assert_eq!(pod_labels["app.kubernetes.io/name"], "pek-backup");
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "ghcr.io/schonherz/pek:pg");
    assert_eq!(c["command"], json!(["/usr/local/bin/pek-operator"]));
    assert_eq!(
        c["args"],
        json!([
            "backup",
            "--realm-id",
            "kszk",
            "--dir",
            "/var/lib/pek/dumps",
            "--stem",
            "realms_kszk_pek_kszk-backup",
            "--retention-days",
            "14"
        ])
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    // The only credentials it sees: the realm owner's URL from the <name>-db Secret.
    let env = c["env"].as_array().expect("env");
    let url = env
        .iter()
        .find(|e| e["name"] == "PEK_BACKUP_DATABASE_URL")
        .expect("the database URL");
    assert_eq!(
        url["valueFrom"]["secretKeyRef"],
        json!({"name": "kszk-db", "key": "MIGRATION_DATABASE_URL", "optional": false})
    );
    assert!(!serde_json::to_string(&cj)
        .expect("json")
        .contains("pg-admin"));
    assert_eq!(
        env.iter()
            .find(|e| e["name"] == "PEK_PG_DUMP")
            .expect("pg_dump")["value"],
        "/usr/lib/postgresql/17/bin/pg_dump"
    );
    let volumes = pod["volumes"].as_array().expect("volumes");
    assert_eq!(
        volumes[0]["persistentVolumeClaim"]["claimName"],
        "pek-dumps"
    );
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/var/lib/pek/dumps");
}
