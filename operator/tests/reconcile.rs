//! Mocked-API reconcile tests, in the style of kube-rs's controller-rs `ApiServerVerifier`: the
//! kube `Client` talks to a `tower_test::mock` service whose requests are answered by an
//! in-memory API server ([`FakeApi`]); every test asserts the exact API calls a reconcile makes.
//! The database side is a real Postgres (a throwaway cluster from `pek-localpg`).

use std::sync::Arc;

use http::{Request, Response};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::Client;
use localpg::LocalPostgres;
use pek_crds::Realm;
use pek_operator::cache::Compact;
use pek_operator::config::Config;
use pek_operator::metrics::Metrics;
use pek_operator::reconcile::{reconcile, Caches, Context};
use pek_operator::testing::{FakeApi, RecordingHub, TEST_FEDERATION_SECRET};
use pek_operator::Error;
use serde_json::{json, Value};
use sqlx::Connection;

struct Harness {
    fake: FakeApi,
    hub: Arc<RecordingHub>,
    ctx: Arc<Context>,
    config: Config,
    ns: String,
    name: String,
}

/// Where a harness' operator writes the dumps before a DROP (one directory per test).
fn dump_dir(id: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pek-op-dumps-{}-{id}", std::process::id()))
}

/// The test configuration, with dumps into [`dump_dir`] by the local Postgres' pg_dump.
fn config_with_dumps(id: &str) -> Config {
    let bindir = localpg::find_bindir().expect("Postgres binaries");
    let _ = std::fs::remove_dir_all(dump_dir(id));
    Config {
        dumps: Some(pek_operator::dump::Dumps {
            dir: dump_dir(id),
            pg_dump: bindir.join("pg_dump"),
            pg_restore: bindir.join("pg_restore"),
            retention: None,
        }),
        ..Config::for_tests()
    }
}

fn pg() -> &'static LocalPostgres {
    LocalPostgres::per_process().expect("throwaway Postgres")
}

fn b64(s: &str) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec())).expect("b64")
}

fn unb64(v: &Value) -> String {
    let b: k8s_openapi::ByteString = serde_json::from_value(v.clone()).expect("base64");
    String::from_utf8(b.0).expect("utf8")
}

const REALMS: &str = "/apis/pek.sch.bme.hu/v1alpha1/namespaces";

impl Harness {
    /// A fake API server behind a tower-test mock, an admin Secret pointing at the real Postgres
    /// (unless `with_admin_secret` is false) and a Realm `name` with realm id `id`.
    fn new(id: &str, spec_extra: Value, with_admin_secret: bool) -> Self {
        Self::with_config(id, spec_extra, with_admin_secret, config_with_dumps(id))
    }

    fn with_config(id: &str, spec_extra: Value, with_admin_secret: bool, config: Config) -> Self {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = FakeApi::new();
        let server = fake.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                send.send_response(server.handle(req).await);
            }
        });
        let client = Client::new(mock, "default");
        let hub = Arc::new(RecordingHub::default());
        let ctx = Arc::new(Context::new(
            client,
            config.clone(),
            hub.clone(),
            Metrics::default(),
        ));
        let ns = format!("ns-{id}");
        if with_admin_secret {
            fake.insert(
                &format!("/api/v1/namespaces/{ns}/secrets"),
                json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "pg-admin", "namespace": ns},
                       "data": {"uri": b64(&pg().superuser_url("postgres"))}}),
            );
        }
        let mut spec = json!({"realmId": id, "displayName": format!("Realm {id}"),
                              "database": {"adminSecretRef": {"name": "pg-admin"}}});
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        fake.insert(
            &format!("{REALMS}/{ns}/realms"),
            json!({"apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
                   "metadata": {"name": id, "namespace": ns}, "spec": spec}),
        );
        Harness {
            fake,
            hub,
            ctx,
            config,
            ns,
            name: id.to_string(),
        }
    }

    fn realm_path(&self) -> String {
        format!("{REALMS}/{}/realms/{}", self.ns, self.name)
    }

    fn path(&self, group_version: &str, resource: &str, name: &str) -> String {
        let prefix = if group_version == "v1" {
            "/api/v1".to_string()
        } else {
            format!("/apis/{group_version}")
        };
        format!("{prefix}/namespaces/{}/{resource}/{name}", self.ns)
    }

    fn realm(&self) -> Option<Realm> {
        self.fake
            .get(&self.realm_path())
            .map(|v| serde_json::from_value(v).expect("realm"))
    }

    async fn reconcile(&self) -> Result<Action, Error> {
        let realm = self.realm().expect("realm exists");
        reconcile(Arc::new(realm), self.ctx.clone()).await
    }

    fn edit_spec(&self, f: impl FnOnce(&mut Value)) {
        self.fake.edit(&self.realm_path(), |r| {
            f(&mut r["spec"]);
            let g = r["metadata"]["generation"].as_i64().unwrap_or(1);
            r["metadata"]["generation"] = json!(g + 1);
        });
    }

    fn condition(&self, type_: &str) -> (String, String, String) {
        let r = self.fake.get(&self.realm_path()).expect("realm");
        let c = r["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
            .unwrap_or_else(|| panic!("no {type_} condition in {:#}", r["status"]));
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        (s("status"), s("reason"), s("message"))
    }

    fn make_deployment_available(&self) {
        let path = self.path("apps/v1", "deployments", &format!("{}-worker", self.name));
        assert!(self.fake.edit(&path, |d| {
            d["status"] = json!({"observedGeneration": d["metadata"]["generation"], "replicas": 1,
                "availableReplicas": 1, "readyReplicas": 1,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]});
        }));
    }

    /// Finalizer, then a full first reconcile, then the Deployment becomes available and the
    /// realm turns Ready. Asserts each call on the way.
    async fn create_until_ready(&self) {
        let n = &self.name;
        self.reconcile().await.expect("finalizer");
        assert_eq!(self.fake.take_log(), [format!("PATCH(json) realms/{n}")]);
        assert_eq!(
            self.realm().expect("realm").metadata.finalizers,
            Some(vec![pek_crds::FINALIZER.to_string()])
        );

        self.reconcile().await.expect("first reconcile");
        assert_eq!(
            self.fake.take_log(),
            [
                "GET secrets/pg-admin".to_string(),
                format!("GET secrets/{n}-db"),
                format!("PATCH(apply) secrets/{n}-db"),
                "POST events SecretCreated".into(),
                "POST events RoleCreated".into(),
                "POST events DatabaseCreated".into(),
                "POST events DatabaseConnectRestricted".into(),
                format!("GET serviceaccounts/{n}-worker"),
                format!("PATCH(apply) serviceaccounts/{n}-worker"),
                "POST events ServiceAccountCreated".into(),
                format!("GET services/{n}-worker"),
                format!("PATCH(apply) services/{n}-worker"),
                "POST events ServiceCreated".into(),
                format!("GET secrets/{n}-hub-token"),
                format!("PATCH(apply) secrets/{n}-hub-token"),
                "POST events SecretCreated".into(),
                format!("GET deployments/{n}-worker"),
                format!("PATCH(apply) deployments/{n}-worker"),
                "POST events DeploymentCreated".into(),
                format!("GET networkpolicies/{n}-worker"),
                format!("PATCH(apply) networkpolicies/{n}-worker"),
                "POST events NetworkPolicyCreated".into(),
                format!("GET poddisruptionbudgets/{n}-worker"),
                format!("GET cronjobs/{n}-backup"),
                "POST events Registered".into(),
                "POST events DatabaseReady".into(),
                format!("PATCH(apply) realms/{n}/status"),
            ]
        );
        self.assert_hub_token_wired();
        assert_eq!(self.hub.take_calls(), [format!("PUT {n}")]);
        assert_eq!(self.condition("DatabaseReady").0, "True");
        assert_eq!(self.condition("Registered").0, "True");
        let (s, reason, _) = self.condition("WorkloadReady");
        assert_eq!((s.as_str(), reason.as_str()), ("False", "Progressing"));
        assert_eq!(self.condition("Ready").0, "False");

        self.make_deployment_available();
        self.reconcile().await.expect("second reconcile");
        let log = self.fake.take_log();
        assert!(
            log.iter().all(|l| l.starts_with("GET ")
                || l == "POST events Ready"
                || l == &format!("PATCH(apply) realms/{n}/status")),
            "{log:?}"
        );
        assert!(log.contains(&"POST events Ready".to_string()), "{log:?}");
        assert_eq!(self.condition("Ready").0, "True");
        assert_eq!(self.condition("WorkloadReady").1, "Available");
        assert!(
            self.hub.take_calls().is_empty(),
            "registration is not repeated"
        );
        let status = self.realm().expect("realm").status.expect("status");
        assert_eq!(
            status.observed_generation,
            self.realm().expect("realm").metadata.generation
        );
        assert_eq!(
            status.endpoint.as_deref(),
            Some(format!("http://{n}-worker.{}.svc:8080", self.ns).as_str())
        );
        assert_eq!(
            status.database_secret.as_deref(),
            Some(format!("{n}-db").as_str())
        );
    }

    /// The `<name>-hub-token` Secret holds the realm token, owned by the Realm, and the worker
    /// Deployment mounts it read-only and names it in PEK_HUB_TOKEN_FILE.
    fn assert_hub_token_wired(&self) {
        let n = &self.name;
        let secret = self
            .fake
            .get(&self.path("v1", "secrets", &format!("{n}-hub-token")))
            .expect("hub token secret");
        let realm = self.realm().expect("realm");
        let id = &realm.spec.realm_id;
        assert_eq!(
            unb64(&secret["data"]["token"]),
            pek_operator::federation::realm_token(TEST_FEDERATION_SECRET.as_bytes(), id)
        );
        let owner = &secret["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["uid"].as_str()),
            (Some("Realm"), realm.metadata.uid.as_deref())
        );
        assert_eq!(secret["metadata"]["labels"]["pek.sch.bme.hu/realm"], *id);
        let d = self
            .fake
            .get(&self.path("apps/v1", "deployments", &format!("{n}-worker")))
            .expect("deployment");
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let env = c["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|e| e["name"] == "PEK_HUB_TOKEN_FILE")
            .expect("PEK_HUB_TOKEN_FILE");
        assert_eq!(env["value"], "/var/run/pek/hub-token/token");
        let mount = c["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["name"] == "hub-token")
            .expect("hub-token mount");
        assert_eq!(
            mount,
            &json!({"name": "hub-token", "mountPath": "/var/run/pek/hub-token", "readOnly": true})
        );
        let volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "hub-token")
            .expect("hub-token volume");
        assert_eq!(volume["secret"]["secretName"], format!("{n}-hub-token"));
    }

    fn app_url(&self) -> String {
        let s = self
            .fake
            .get(&self.path("v1", "secrets", &format!("{}-db", self.name)))
            .expect("db secret");
        unb64(&s["data"]["DATABASE_URL"])
    }

    async fn database_exists(&self) -> bool {
        let mut c = sqlx::PgConnection::connect(&pg().superuser_url("postgres"))
            .await
            .expect("admin");
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(format!("pek_{}", self.name.replace('-', "_")))
            .fetch_one(&mut c)
            .await
            .expect("query")
    }

    async fn roles(&self) -> i64 {
        let mut c = sqlx::PgConnection::connect(&pg().superuser_url("postgres"))
            .await
            .expect("admin");
        sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE $1")
            .bind(format!("pek_{}_%", self.name.replace('-', "_")))
            .fetch_one(&mut c)
            .await
            .expect("query")
    }

    /// The operator restarted (killed and started again): a fresh Context, same API server.
    fn restart(&mut self) {
        self.restart_with(|_| {});
    }

    /// [`Self::restart`] with a changed configuration.
    fn restart_with(&mut self, change: impl FnOnce(&mut Config)) {
        change(&mut self.config);
        self.ctx = Arc::new(Context::new(
            self.fake.client(),
            self.config.clone(),
            self.hub.clone(),
            Metrics::default(),
        ));
    }

    /// The dump files the operator wrote (not partial ones).
    fn dumps(&self) -> Vec<std::path::PathBuf> {
        let mut out: Vec<_> = std::fs::read_dir(dump_dir(&self.name))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The notes of the Events with `reason` the operator published.
    fn event_notes(&self, reason: &str) -> Vec<String> {
        let prefix = format!("/apis/events.k8s.io/v1/namespaces/{}/events/", self.ns);
        self.fake
            .paths(&prefix)
            .into_iter()
            .filter_map(|p| self.fake.get(&p))
            .filter(|e| e["reason"] == reason)
            .map(|e| e["note"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn owner_url(&self) -> String {
        let s = self
            .fake
            .get(&self.path("v1", "secrets", &format!("{}-db", self.name)))
            .expect("db secret");
        unb64(&s["data"]["MIGRATION_DATABASE_URL"])
    }

    fn annotate(&self, key: &str, value: &str) {
        self.fake.edit(&self.realm_path(), |r| {
            r["metadata"]["annotations"][key] = json!(value);
        });
    }

    fn confirm_delete(&self) {
        let id = self.realm().expect("realm").spec.realm_id;
        self.annotate(pek_crds::CONFIRM_DELETE_ANNOTATION, &id);
    }

    /// Points the admin Secret at `uri`.
    fn admin_uri(&self, uri: &str) {
        assert!(self
            .fake
            .edit(&self.path("v1", "secrets", "pg-admin"), |s| {
                s["data"]["uri"] = b64(uri);
            }));
    }

    fn writes(&self) -> Vec<String> {
        self.fake
            .take_log()
            .into_iter()
            .filter(|l| !l.starts_with("GET "))
            .collect()
    }

    fn only_reads(&self) {
        let log = self.fake.take_log();
        assert!(
            log.iter().all(|l| l.starts_with("GET ")),
            "steady state must not write: {log:?}"
        );
    }
}

#[tokio::test]
async fn create_provisions_database_worker_and_registration_then_stays_quiet() {
    let h = Harness::new("rc-create", json!({}), true);
    h.create_until_ready().await;

    // The worker's credentials work and are the app role's, which cannot bypass RLS.
    let mut app = sqlx::PgConnection::connect(&h.app_url())
        .await
        .expect("app role logs in");
    let (user, bypass): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut app)
    .await
    .expect("query");
    assert_eq!((user.as_str(), bypass), ("pek_rc_create_app", false));
    assert_eq!(
        h.hub.registry.lock().expect("lock")["rc-create"].endpoint,
        "http://rc-create-worker.ns-rc-create.svc:8080"
    );

    // Steady state: nothing changed, so only reads; no hub call either.
    h.reconcile().await.expect("steady");
    h.only_reads();
    assert!(h.hub.take_calls().is_empty());
    let metrics = h.ctx.metrics.encode();
    assert!(
        metrics.contains("pek_operator_reconciles_total 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn spec_update_reapplies_changed_objects_and_reregisters() {
    let h = Harness::new("rc-update", json!({}), true);
    h.create_until_ready().await;
    h.edit_spec(|s| {
        s["worker"] = json!({"replicas": 2, "image": "registry.local/pek:9.9.9"});
        s["displayName"] = json!("Renamed");
    });
    h.reconcile().await.expect("update");
    let n = "rc-update";
    let writes: Vec<String> = h
        .fake
        .take_log()
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    assert_eq!(
        writes,
        [
            format!("PATCH(apply) deployments/{n}-worker"),
            "POST events DeploymentUpdated".into(),
            format!("PATCH(apply) poddisruptionbudgets/{n}-worker"),
            "POST events PodDisruptionBudgetCreated".into(),
            format!("PATCH(apply) realms/{n}/status"),
        ]
    );
    // The changed Deployment is rolling out again until it reports availability.
    assert_eq!(h.condition("WorkloadReady").1, "Progressing");
    assert_eq!(h.hub.take_calls(), [format!("PUT {n}")]);
    let reg = h.hub.registry.lock().expect("lock")[n].clone();
    assert_eq!(
        (reg.display_name.as_str(), reg.version.as_str()),
        ("Renamed", "9.9.9")
    );
    let d = h
        .fake
        .get(&h.path("apps/v1", "deployments", &format!("{n}-worker")))
        .expect("deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/pek:9.9.9"
    );
    let r = h.realm().expect("realm");
    assert_eq!(
        r.status.expect("status").observed_generation,
        r.metadata.generation
    );

    // Back to one replica: the PodDisruptionBudget goes away.
    h.edit_spec(|s| s["worker"]["replicas"] = json!(1));
    h.reconcile().await.expect("scale down");
    let writes: Vec<String> = h
        .fake
        .take_log()
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    assert!(
        writes.contains(&format!("DELETE poddisruptionbudgets/{n}-worker")),
        "{writes:?}"
    );
    assert!(h
        .fake
        .get(&h.path("policy/v1", "poddisruptionbudgets", &format!("{n}-worker")))
        .is_none());
}

#[tokio::test]
async fn drift_in_owned_objects_is_put_back() {
    let h = Harness::new("rc-drift", json!({}), true);
    h.create_until_ready().await;
    let n = "rc-drift";
    let deploy = h.path("apps/v1", "deployments", &format!("{n}-worker"));
    h.fake.edit(&deploy, |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil/image:1");
        d["spec"]["template"]["spec"]["containers"][0]["securityContext"]
            ["readOnlyRootFilesystem"] = json!(false);
    });
    h.fake
        .remove(&h.path("v1", "services", &format!("{n}-worker")));
    let secret = h.path("v1", "secrets", &format!("{n}-db"));
    let url_before = h.app_url();
    h.fake.edit(&secret, |s| {
        s["data"]["DATABASE_URL"] = b64("postgres://tampered")
    });
    let token = h.path("v1", "secrets", &format!("{n}-hub-token"));
    h.fake
        .edit(&token, |s| s["data"]["token"] = b64("forged-token"));

    h.reconcile().await.expect("drift reconcile");
    let writes: Vec<String> = h
        .fake
        .take_log()
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    assert_eq!(
        writes,
        [
            format!("PATCH(apply) secrets/{n}-db"),
            "POST events SecretUpdated".into(),
            format!("PATCH(apply) services/{n}-worker"),
            "POST events ServiceCreated".into(),
            format!("PATCH(apply) secrets/{n}-hub-token"),
            "POST events SecretUpdated".into(),
            format!("PATCH(apply) deployments/{n}-worker"),
            "POST events DeploymentUpdated".into(),
            // The Deployment's generation moved, so WorkloadReady waits for the rollout.
            format!("PATCH(apply) realms/{n}/status"),
        ]
    );
    let d = h.fake.get(&deploy).expect("deployment");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/schonherz/pek:0.1.0"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(h.app_url(), url_before, "the working password is kept");
    h.assert_hub_token_wired();
    sqlx::PgConnection::connect(&h.app_url())
        .await
        .expect("still logs in");
    h.make_deployment_available();
    h.reconcile().await.expect("ready again");
    h.fake.take_log();
    h.reconcile().await.expect("steady");
    h.only_reads();
}

#[tokio::test]
async fn suspend_changes_nothing_and_keeps_everything() {
    let h = Harness::new("rc-suspend", json!({}), true);
    h.create_until_ready().await;
    let n = "rc-suspend";
    h.edit_spec(|s| s["suspend"] = json!(true));
    h.reconcile().await.expect("suspend");
    assert_eq!(
        h.fake.take_log(),
        [
            "POST events Suspended".to_string(),
            format!("PATCH(apply) realms/{n}/status")
        ]
    );
    assert_eq!(h.condition("Ready").1, "Suspended");

    // Hand edits are not reverted while suspended; nothing is read or written.
    let deploy = h.path("apps/v1", "deployments", &format!("{n}-worker"));
    h.fake.edit(&deploy, |d| d["spec"]["replicas"] = json!(0));
    h.reconcile().await.expect("suspended again");
    assert!(h.fake.take_log().is_empty());
    assert!(h.hub.take_calls().is_empty());
    assert_eq!(h.fake.get(&deploy).expect("kept")["spec"]["replicas"], 0);
    assert!(h.database_exists().await);

    // Resume: the drift is put back.
    h.edit_spec(|s| s["suspend"] = json!(false));
    h.reconcile().await.expect("resume");
    assert_eq!(
        h.fake.get(&deploy).expect("deployment")["spec"]["replicas"],
        1
    );
}

#[tokio::test]
async fn missing_admin_secret_is_a_condition_not_a_crash() {
    let h = Harness::new("rc-nosecret", json!({}), false);
    let n = "rc-nosecret";
    h.reconcile().await.expect("finalizer");
    h.fake.take_log();
    let err = h
        .reconcile()
        .await
        .expect_err("cannot provision without the admin Secret");
    assert_eq!(err.reason(), "AdminSecretNotFound");
    assert_eq!(
        h.fake.take_log(),
        [
            "GET secrets/pg-admin".to_string(),
            "POST events AdminSecretNotFound".into(),
            format!("PATCH(apply) realms/{n}/status")
        ]
    );
    let (s, reason, message) = h.condition("DatabaseReady");
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("False", "AdminSecretNotFound")
    );
    assert!(message.contains("\"pg-admin\""), "{message}");
    assert_eq!(h.condition("Ready").1, "AdminSecretNotFound");
    assert!(
        h.fake.paths("/apis/apps").is_empty(),
        "no worker without a database"
    );
    assert!(h.hub.take_calls().is_empty());

    // Retrying with the same problem neither rewrites the status nor repeats the event.
    h.reconcile().await.expect_err("still missing");
    assert_eq!(h.fake.take_log(), ["GET secrets/pg-admin".to_string()]);
    assert!(h
        .ctx
        .metrics
        .encode()
        .contains("reason=\"AdminSecretNotFound\"} 2"));

    // Once the Secret exists the realm converges.
    h.fake.insert(
        &format!("/api/v1/namespaces/{}/secrets", h.ns),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-admin", "namespace": h.ns},
               "data": {"uri": b64(&pg().superuser_url("postgres"))}}),
    );
    h.reconcile().await.expect("converges");
    assert_eq!(h.condition("DatabaseReady").0, "True");
}

/// A spec the operator cannot reconcile is a condition, not a crash: Ready=False with reason
/// InvalidSpec and one Warning Event; retrying with the same spec neither repeats the Event nor
/// rewrites the status, and nothing is provisioned or registered.
#[tokio::test]
async fn invalid_spec_is_reported_once() {
    let n = "rc-invalid-";
    let h = Harness::new(n, json!({}), true);
    h.reconcile().await.expect("finalizer");
    h.fake.take_log();
    let err = h.reconcile().await.expect_err("invalid realm id");
    assert_eq!(err.reason(), "InvalidSpec");
    assert_eq!(
        h.fake.take_log(),
        [
            "POST events InvalidSpec".to_string(),
            format!("PATCH(apply) realms/{n}/status")
        ]
    );
    let (s, reason, message) = h.condition("Ready");
    assert_eq!((s.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(message.contains("not a valid realm id"), "{message}");

    h.reconcile().await.expect_err("still invalid");
    assert!(
        h.fake.take_log().is_empty(),
        "the same problem again is neither announced nor written twice"
    );
    assert!(h.hub.take_calls().is_empty());
    assert!(!h.database_exists().await);
}

#[tokio::test]
async fn delete_with_retain_deregisters_and_keeps_the_database() {
    let h = Harness::new("rc-retain", json!({}), true);
    h.create_until_ready().await;
    let n = "rc-retain";
    h.fake.delete(&h.realm_path());
    h.reconcile().await.expect("cleanup");
    assert_eq!(
        h.fake.take_log(),
        [
            "POST events Deregistered".to_string(),
            "POST events DatabaseRetained".into(),
            format!("PATCH(json) realms/{n}")
        ]
    );
    assert_eq!(h.hub.take_calls(), [format!("DELETE {n}")]);
    assert!(h.realm().is_none(), "finalizer released, Realm gone");
    assert!(
        h.fake
            .paths(&format!("/apis/apps/v1/namespaces/{}", h.ns))
            .is_empty(),
        "children garbage-collected"
    );
    assert!(h.database_exists().await, "Retain keeps the database");
    assert_eq!(h.roles().await, 2, "Retain keeps both roles");
}

/// `deletionPolicy: Delete` confirmed before the delete (the annotation names the realm id):
/// the worker goes, then the database and both roles are dropped and the Realm is released.
#[tokio::test]
async fn delete_with_delete_drops_database_and_roles() {
    let h = Harness::new(
        "rc-delete",
        json!({"database": {"adminSecretRef": {"name": "pg-admin"}, "deletionPolicy": "Delete"}}),
        true,
    );
    h.create_until_ready().await;
    let n = "rc-delete";
    assert!(h.database_exists().await);
    // Data, written as the owner role (a table the dump must hold).
    let mut owner = sqlx::PgConnection::connect(&h.owner_url())
        .await
        .expect("owner session");
    sqlx::raw_sql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('the data')")
        .execute(&mut owner)
        .await
        .expect("write data");
    // A live session must not block the drop.
    let _session = sqlx::PgConnection::connect(&h.app_url())
        .await
        .expect("app session");
    h.confirm_delete();
    h.fake.delete(&h.realm_path());
    h.reconcile().await.expect("cleanup");
    assert_eq!(
        h.writes(),
        [
            "POST events Deregistered".to_string(),
            format!("DELETE deployments/{n}-worker"),
            format!("DELETE services/{n}-worker"),
            format!("DELETE networkpolicies/{n}-worker"),
            format!("DELETE serviceaccounts/{n}-worker"),
            "POST events WorkerRemoved".into(),
            "POST events DatabaseDumped".into(),
            "POST events DatabaseDropped".into(),
            "POST events RoleDropped".into(),
            format!("PATCH(json) realms/{n}"),
        ]
    );
    assert_eq!(h.hub.take_calls(), [format!("DELETE {n}")]);
    assert!(h.realm().is_none());
    assert!(!h.database_exists().await, "Delete drops the database");
    assert_eq!(h.roles().await, 0, "Delete drops both roles");

    // The dump came first: one complete file, named by the Event, that pg_restore reads.
    let dumps = h.dumps();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let file = &dumps[0];
    let name = file
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    assert!(
        name.starts_with(&format!("{}_{n}_pek_rc_delete-", h.ns)) && name.ends_with(".dump"),
        "{name}"
    );
    let notes = h.event_notes("DatabaseDumped");
    assert!(
        notes.len() == 1 && notes[0].contains(&file.display().to_string()),
        "{notes:?}"
    );
    let bindir = localpg::find_bindir().expect("bindir");
    let listed = std::process::Command::new(bindir.join("pg_restore"))
        .arg("--list")
        .arg(file)
        .output()
        .expect("pg_restore");
    assert!(listed.status.success(), "{listed:?}");
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains("TABLE public kept") && listing.contains("TABLE DATA public kept"),
        "{listing}"
    );
}

/// A dump that fails drops nothing: the Realm waits with `DatabaseReady=False` (reason
/// `DumpFailed`, pg_dump's error in the message) and no partial file is left; without a place
/// for dumps nothing is dropped either; once a dump works the database goes.
#[tokio::test]
async fn a_failed_dump_drops_nothing() {
    let mut h = Harness::new(
        "rc-dumpfail",
        json!({"database": {"adminSecretRef": {"name": "pg-admin"}, "deletionPolicy": "Delete"}}),
        true,
    );
    h.create_until_ready().await;
    let good = h.config.dumps.clone();
    let broken = std::env::temp_dir().join(format!("pek-op-broken-pg-dump-{}", std::process::id()));
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'pg_dump: error: disk on fire' >&2\nexit 1\n",
    )
    .expect("write");
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    h.restart_with(|c| {
        if let Some(d) = c.dumps.as_mut() {
            d.pg_dump = broken.clone();
        }
    });
    h.confirm_delete();
    h.fake.delete(&h.realm_path());
    let err = h.reconcile().await.expect_err("the dump fails");
    assert_eq!(err.reason(), "DumpFailed");
    let (s, reason, message) = h.condition("DatabaseReady");
    assert_eq!((s.as_str(), reason.as_str()), ("False", "DumpFailed"));
    assert!(message.contains("disk on fire"), "{message}");
    assert!(h.realm().is_some());
    assert!(h.database_exists().await, "no dump, no DROP");
    assert_eq!(h.roles().await, 2);
    assert!(
        h.dumps().is_empty(),
        "a partial dump was left: {:?}",
        h.dumps()
    );

    // No place for dumps at all: nothing is dropped either, and the message says what to do.
    h.restart_with(|c| c.dumps = None);
    let err = h.reconcile().await.expect_err("no place for the dump");
    assert_eq!(err.reason(), "DumpFailed");
    let (_, _, message) = h.condition("DatabaseReady");
    assert!(
        message.contains("PEK_DUMP_DIR") && message.contains("deletionPolicy: Retain"),
        "{message}"
    );
    assert!(h.database_exists().await);

    h.restart_with(|c| c.dumps = good);
    h.reconcile().await.expect("dumped and dropped");
    assert!(h.realm().is_none());
    assert!(!h.database_exists().await);
    assert_eq!(h.dumps().len(), 1);
    let _ = std::fs::remove_file(&broken);
}

/// `deletionPolicy: Delete` without the confirmation: deregistered, the worker removed, the
/// database kept, and the Realm waits with `Deleting=True` (reason `ConfirmationRequired`),
/// `Ready=False` and one Warning Event saying what to do — without counting as a failure.
/// A wrong value does not confirm; the right one, set after the delete, drops the database.
#[tokio::test]
async fn an_unconfirmed_delete_keeps_the_database_until_confirmed() {
    let mut h = Harness::new(
        "rc-confirm",
        json!({"database": {"adminSecretRef": {"name": "pg-admin"}, "deletionPolicy": "Delete"}}),
        true,
    );
    h.create_until_ready().await;
    let n = "rc-confirm";
    // Scheduled backups too: their CronJob goes with the worker (its pods would run as the
    // worker's ServiceAccount, which goes).
    h.restart_with(|c| {
        c.backups = Some(pek_operator::config::Backups {
            claim: "pek-dumps".into(),
            image: "ghcr.io/schonherz/pek:0.1.0".into(),
            pg_dump: "pg_dump".into(),
        })
    });
    h.edit_spec(|s| s["backup"] = json!({"schedule": "0 3 * * *"}));
    h.reconcile().await.expect("the backup CronJob");
    assert!(h
        .fake
        .get(&h.path("batch/v1", "cronjobs", &format!("{n}-backup")))
        .is_some());
    h.fake.take_log();
    h.hub.take_calls();
    h.fake.delete(&h.realm_path());
    h.reconcile().await.expect("waiting is not an error");
    assert_eq!(
        h.writes(),
        [
            "POST events Deregistered".to_string(),
            format!("DELETE deployments/{n}-worker"),
            format!("DELETE services/{n}-worker"),
            format!("DELETE networkpolicies/{n}-worker"),
            format!("DELETE cronjobs/{n}-backup"),
            format!("DELETE serviceaccounts/{n}-worker"),
            "POST events WorkerRemoved".into(),
            "POST events DeletionNotConfirmed".into(),
            format!("PATCH(apply) realms/{n}/status"),
        ]
    );
    assert_eq!(h.hub.take_calls(), [format!("DELETE {n}")]);
    assert!(h.realm().is_some(), "the finalizer stays");
    assert!(h.database_exists().await, "unconfirmed: the database stays");
    assert_eq!(h.roles().await, 2);
    assert!(h
        .fake
        .get(&h.path("apps/v1", "deployments", &format!("{n}-worker")))
        .is_none());
    let (s, reason, message) = h.condition("Deleting");
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("True", "ConfirmationRequired")
    );
    assert!(
        message.contains(&format!(
            "kubectl -n {} annotate realm {n} --overwrite pek.sch.bme.hu/confirm-delete={n}",
            h.ns
        )) && message.contains("deletionPolicy\":\"Retain"),
        "{message}"
    );
    let (s, reason, _) = h.condition("Ready");
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("False", "ConfirmationRequired")
    );
    assert!(
        !h.ctx.metrics.encode().contains("ConfirmationRequired"),
        "waiting is not counted as a failure"
    );

    // Again: nothing is announced, deleted or written twice.
    h.reconcile().await.expect("still waiting");
    h.only_reads();
    assert!(h.hub.take_calls().is_empty());

    // A confirmation naming another realm confirms nothing.
    h.annotate(pek_crds::CONFIRM_DELETE_ANNOTATION, "some-other-realm");
    h.reconcile().await.expect("still waiting");
    assert!(h.realm().is_some() && h.database_exists().await);
    assert!(h
        .condition("Deleting")
        .2
        .contains("\"some-other-realm\", not the realm id"));
    h.fake.take_log();

    // Confirmed after the delete: dumped, dropped, released.
    h.confirm_delete();
    h.reconcile().await.expect("dropped");
    assert_eq!(
        h.writes(),
        [
            "POST events DatabaseDumped".to_string(),
            "POST events DatabaseDropped".into(),
            "POST events RoleDropped".into(),
            format!("PATCH(json) realms/{n}"),
        ]
    );
    assert!(h.realm().is_none());
    assert!(!h.database_exists().await);
    assert_eq!(h.roles().await, 0);
}

/// An unconfirmed deletion switched to `deletionPolicy: Retain` is released with the database.
#[tokio::test]
async fn an_unconfirmed_delete_switched_to_retain_keeps_the_database() {
    let h = Harness::new(
        "rc-toretain",
        json!({"database": {"adminSecretRef": {"name": "pg-admin"}, "deletionPolicy": "Delete"}}),
        true,
    );
    h.create_until_ready().await;
    let n = "rc-toretain";
    h.fake.delete(&h.realm_path());
    h.reconcile().await.expect("waiting");
    assert_eq!(h.condition("Deleting").1, "ConfirmationRequired");
    h.fake.take_log();
    h.edit_spec(|s| s["database"]["deletionPolicy"] = json!("Retain"));
    h.reconcile().await.expect("released");
    assert_eq!(
        h.writes(),
        [
            "POST events DatabaseRetained".to_string(),
            format!("PATCH(json) realms/{n}"),
        ]
    );
    assert!(h.realm().is_none());
    assert!(h.database_exists().await);
    assert_eq!(h.roles().await, 2);
}

/// The operator killed after `CREATE DATABASE` but before the status write, then the Realm
/// deleted (confirmed) while its admin Secret points at a server that does not answer: the
/// `<name>-db` Secret, written before any SQL, says a database may exist, so the Realm is not
/// released as "never provisioned" — it waits and says why; once the server answers, the
/// database is dropped.
#[tokio::test]
async fn a_realm_killed_before_its_status_write_is_not_released_as_never_provisioned() {
    let mut h = Harness::new(
        "rc-crashed",
        json!({"database": {"adminSecretRef": {"name": "pg-admin"}, "deletionPolicy": "Delete"}}),
        true,
    );
    let n = "rc-crashed";
    h.reconcile().await.expect("finalizer");
    h.reconcile().await.expect("provisioned");
    assert!(h.database_exists().await);
    // The fault point: everything up to the status write happened, the write did not.
    h.fake.edit(&h.realm_path(), |r| {
        r.as_object_mut().expect("object").remove("status");
    });
    h.restart();
    h.admin_uri("postgres://postgres:x@127.0.0.1:1/postgres");
    h.confirm_delete();
    h.fake.delete(&h.realm_path());
    h.fake.take_log();
    let err = h.reconcile().await.expect_err("the database may exist");
    assert_eq!(err.reason(), "DatabaseError");
    let log = h.fake.take_log();
    assert!(
        !log.contains(&"POST events DatabaseNeverProvisioned".to_string()),
        "{log:?}"
    );
    assert!(log.contains(&format!("GET secrets/{n}-db")), "{log:?}");
    assert!(h.realm().is_some(), "not released");
    let (s, reason, message) = h.condition("DatabaseReady");
    assert_eq!((s.as_str(), reason.as_str()), ("False", "DatabaseError"));
    assert!(message.contains("spec.suspend: true"), "{message}");
    assert!(h.database_exists().await);

    h.admin_uri(&pg().superuser_url("postgres"));
    h.reconcile()
        .await
        .expect("dropped once the server answers");
    assert!(h.realm().is_none());
    assert!(!h.database_exists().await);
    assert_eq!(h.roles().await, 0);
}

/// Events follow the status transitions a reconcile finds, not only the changes it makes: an
/// operator that provisioned a Realm and died before its Events went out and before its status
/// write leaves a successor that finds everything in place, changes nothing, and still
/// announces the database (`DatabaseReady`, naming it); one that died after its Events went
/// out but before the status write does not get them sent twice.
#[tokio::test]
async fn events_follow_what_a_reconcile_finds_after_a_crash() {
    let mut h = Harness::new("rc-announce", json!({}), true);
    h.reconcile().await.expect("finalizer");
    h.reconcile().await.expect("provisioned");
    assert_eq!(h.event_notes("DatabaseReady").len(), 1);
    let events = format!("/apis/events.k8s.io/v1/namespaces/{}/events/", h.ns);
    let forget_status = |h: &Harness| {
        h.fake.edit(&h.realm_path(), |r| {
            r.as_object_mut().expect("object").remove("status");
        });
    };
    // Died before its Events were sent and before the status write.
    for p in h.fake.paths(&events) {
        h.fake.remove(&p);
    }
    forget_status(&h);
    h.restart();
    h.fake.take_log();
    h.reconcile().await.expect("found in place");
    assert!(
        h.event_notes("RoleCreated").is_empty() && h.event_notes("DatabaseCreated").is_empty(),
        "nothing was changed"
    );
    let found = h.event_notes("DatabaseReady");
    assert!(
        found.len() == 1 && found[0].contains("database pek_rc_announce with roles"),
        "{found:?}"
    );
    assert_eq!(h.condition("DatabaseReady").0, "True");

    // Died after its Events were sent, before the status write: the same transitions again
    // are the same Events, not new ones.
    let before = h.fake.paths(&events).len();
    let registered_before = h.event_notes("Registered").len();
    forget_status(&h);
    h.restart();
    h.reconcile().await.expect("again");
    assert_eq!(h.event_notes("DatabaseReady").len(), 1, "sent twice");
    // (The hub is asked again, the status not saying it was: that registration is new.)
    let registered_again = h.event_notes("Registered").len() - registered_before;
    assert_eq!(
        h.fake.paths(&events).len() - before,
        registered_again,
        "Events of the same transitions sent again"
    );
}

/// Roles created in a database run whose later step fails are announced all the same
/// (`RoleCreated`), next to the Warning of the failure: an admin that may create roles but
/// not databases.
#[tokio::test]
async fn roles_created_before_a_failing_step_are_announced() {
    let mut su = sqlx::PgConnection::connect(&pg().superuser_url("postgres"))
        .await
        .expect("admin");
    for stmt in [
        "DROP ROLE IF EXISTS rc_nocreatedb_admin",
        "CREATE ROLE rc_nocreatedb_admin LOGIN CREATEROLE NOCREATEDB NOSUPERUSER PASSWORD 'nocreatedb-pw'",
    ] {
        sqlx::query(stmt).execute(&mut su).await.expect(stmt);
    }
    let h = Harness::new("rc-partial", json!({}), true);
    let url = {
        let mut u = url::Url::parse(&pg().superuser_url("postgres")).expect("url");
        u.set_username("rc_nocreatedb_admin").expect("user");
        u.set_password(Some("nocreatedb-pw")).expect("password");
        u.to_string()
    };
    h.admin_uri(&url);
    h.reconcile().await.expect("finalizer");
    h.fake.take_log();
    let err = h.reconcile().await.expect_err("may not create a database");
    assert_eq!(err.reason(), "DatabaseError");
    let log = h.fake.take_log();
    let at = |line: &str| log.iter().position(|l| l == line);
    let created =
        at("POST events RoleCreated").unwrap_or_else(|| panic!("no RoleCreated: {log:?}"));
    let warned = at("POST events DatabaseError").unwrap_or_else(|| panic!("no Warning: {log:?}"));
    assert!(created < warned, "{log:?}");
    assert_eq!(h.roles().await, 2, "the roles exist");
    assert!(!h.database_exists().await);
    // Clean up the roles (granted to the limited admin) and the admin itself.
    for stmt in [
        "DROP ROLE IF EXISTS pek_rc_partial_app",
        "DROP ROLE IF EXISTS pek_rc_partial_owner",
        "DROP ROLE IF EXISTS rc_nocreatedb_admin",
    ] {
        sqlx::query(stmt).execute(&mut su).await.expect(stmt);
    }
}

/// The retry backoff grows with the time a Realm has been failing, not with the number of
/// failed reconciles: ten failures in quick succession (the Realm's own changes start
/// reconciles too) still retry after 2 s, so a Realm recovers within seconds of its cause
/// going away.
#[tokio::test]
async fn quick_failures_do_not_push_the_retry_away() {
    let h = Harness::new("rc-backoff", json!({}), true);
    let realm = Arc::new(h.realm().expect("realm"));
    let err = Error::hub_answer("hub down");
    let first = pek_operator::reconcile::error_policy(realm.clone(), &err, h.ctx.clone());
    assert_eq!(first, Action::requeue(std::time::Duration::from_secs(2)));
    for i in 1..10 {
        let action = pek_operator::reconcile::error_policy(realm.clone(), &err, h.ctx.clone());
        assert_eq!(action, first, "failure {i} pushed the retry away");
    }
}

#[tokio::test]
async fn deletion_waits_for_the_hub_and_suspend_releases_it() {
    let h = Harness::new("rc-hubgone", json!({}), true);
    h.create_until_ready().await;
    let n = "rc-hubgone";
    *h.hub.fail.lock().expect("lock") = Some("connection refused".into());
    h.fake.delete(&h.realm_path());
    let err = h.reconcile().await.expect_err("hub unreachable");
    assert!(err.to_string().contains("suspend"), "{err}");
    assert!(
        h.realm().is_some(),
        "finalizer kept while the hub cannot be told"
    );
    let (s, _, message) = h.condition("Registered");
    assert_eq!(s, "False");
    assert!(message.contains("spec.suspend: true"), "{message}");
    assert!(
        message.starts_with("hub: connection refused;") && !message.contains("hub: hub:"),
        "one prefix, the cause kept: {message}"
    );
    h.fake.take_log();
    h.hub.take_calls();

    h.edit_spec(|s| s["suspend"] = json!(true));
    h.reconcile().await.expect("released");
    assert_eq!(
        h.fake.take_log(),
        [
            "POST events CleanupSkipped".to_string(),
            format!("PATCH(json) realms/{n}")
        ]
    );
    assert!(h.hub.take_calls().is_empty());
    assert!(h.realm().is_none());
    assert!(h.database_exists().await);
}

#[tokio::test]
async fn deleting_a_never_provisioned_realm_with_delete_policy_does_not_hang() {
    let h = Harness::new(
        "rc-never",
        json!({"database": {"adminSecretRef": {"name": "pg-admin"}, "deletionPolicy": "Delete"}}),
        false,
    );
    let n = "rc-never";
    h.reconcile().await.expect("finalizer");
    h.reconcile().await.expect_err("no admin Secret");
    h.fake.take_log();
    h.fake.delete(&h.realm_path());
    h.reconcile().await.expect("released");
    assert_eq!(
        h.fake.take_log(),
        [
            "POST events Deregistered".to_string(),
            format!("GET secrets/{n}-db"),
            "GET secrets/pg-admin".into(),
            "POST events DatabaseNeverProvisioned".into(),
            format!("PATCH(json) realms/{n}"),
        ]
    );
    assert!(h.realm().is_none());
}

#[tokio::test]
async fn without_a_federation_secret_the_realm_works_but_warns_once() {
    let config = Config {
        federation_secret: None,
        ..Config::for_tests()
    };
    let h = Harness::with_config("rc-nofed", json!({}), true, config);
    let n = "rc-nofed";
    h.reconcile().await.expect("finalizer");
    h.fake.take_log();
    h.reconcile()
        .await
        .expect("no federation secret is not an error");
    let log = h.fake.take_log();
    assert!(
        !log.iter().any(|l| l.contains("hub-token")),
        "no token Secret without a federation secret: {log:?}"
    );
    let at = |line: &str| log.iter().position(|l| l == line);
    let warned = at("POST events FederationSecretMissing").expect("warning event");
    assert!(at("POST events Registered").expect("registered") < warned);
    assert!(warned < at(&format!("PATCH(apply) realms/{n}/status")).expect("status"));
    let (s, reason, message) = h.condition("Registered");
    assert_eq!((s.as_str(), reason.as_str()), ("True", "Registered"));
    assert!(
        message.contains("cannot report membership changes")
            && message.contains("PEK_FEDERATION_SECRET_FILE"),
        "{message}"
    );
    let d = h
        .fake
        .get(&h.path("apps/v1", "deployments", &format!("{n}-worker")))
        .expect("deployment");
    let pod = &d["spec"]["template"]["spec"];
    assert!(!pod["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .any(|e| e["name"] == "PEK_HUB_TOKEN_FILE"));
    assert_eq!(pod["volumes"].as_array().expect("volumes").len(), 1);

    // Ready all the same; the warning is not repeated and the steady state does not write.
    h.make_deployment_available();
    h.reconcile().await.expect("ready");
    assert_eq!(h.condition("Ready").0, "True");
    let log = h.fake.take_log();
    assert!(
        !log.contains(&"POST events FederationSecretMissing".to_string()),
        "{log:?}"
    );
    h.reconcile().await.expect("steady");
    h.only_reads();
}

/// Resyncs re-verify registrations with one listing of the hub registry for all Realms instead
/// of one registration per Realm; an entry the hub lost is registered again; a reconcile that
/// reads a Realm whose status lags behind this operator's own write registers nothing twice
/// and repeats no Event.
#[tokio::test]
async fn resync_reverifies_with_one_listing_and_never_registers_twice() {
    let mut config = Config::for_tests();
    config.resync = std::time::Duration::from_millis(1500);
    let h = Harness::with_config("rc-resync", json!({}), true, config);
    h.create_until_ready().await;
    // A second Realm in the same operator.
    let other = "rc-resync-b";
    h.fake.insert(
        &format!("{REALMS}/{}/realms", h.ns),
        json!({"apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
               "metadata": {"name": other, "namespace": h.ns},
               "spec": {"realmId": other, "database": {"adminSecretRef": {"name": "pg-admin"}}}}),
    );
    let other_path = format!("{REALMS}/{}/realms/{other}", h.ns);
    let get_other = || -> Realm {
        serde_json::from_value(h.fake.get(&other_path).expect("realm")).expect("realm")
    };
    reconcile(Arc::new(get_other()), h.ctx.clone())
        .await
        .expect("finalizer");
    // The reconcile started by its own new children sees the Realm as it was before its own
    // status write landed: nothing is registered or announced twice.
    let before_status = get_other();
    reconcile(Arc::new(before_status.clone()), h.ctx.clone())
        .await
        .expect("first reconcile");
    assert_eq!(h.hub.take_calls(), [format!("PUT {other}")]);
    h.fake.take_log();
    reconcile(Arc::new(before_status), h.ctx.clone())
        .await
        .expect("stale copy");
    assert!(h.hub.take_calls().is_empty(), "registered twice");
    let log = h.fake.take_log();
    assert!(
        !log.iter().any(|l| l.starts_with("POST events")),
        "Events repeated from a stale copy: {log:?}"
    );

    // A resync later: one listing re-verifies both Realms, nothing is registered again.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    h.reconcile().await.expect("resync a");
    reconcile(Arc::new(get_other()), h.ctx.clone())
        .await
        .expect("resync b");
    assert_eq!(h.hub.take_calls(), ["LIST"]);

    // The hub lost an entry: the next resync puts it back.
    h.hub.registry.lock().expect("lock").remove(other);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    h.reconcile().await.expect("resync a");
    reconcile(Arc::new(get_other()), h.ctx.clone())
        .await
        .expect("resync b");
    assert_eq!(
        h.hub.take_calls(),
        ["LIST".to_string(), format!("PUT {other}")]
    );
}

/// A watch cache of `K` as the controller keeps it (compact, initial listing done), filled
/// from the fake API's objects of `resource` in the harness' namespace.
fn watch_cache<K>(h: &Harness, group_version: &str, resource: &str) -> Store<Compact<K>>
where
    K: kube::Resource<DynamicType = ()>
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Clone
        + 'static,
{
    let (store, mut writer) = reflector::store::<Compact<K>>();
    writer.apply_watcher_event(&watcher::Event::Init);
    let prefix = h.path(group_version, resource, "");
    for path in h.fake.paths(&prefix) {
        let obj: K = serde_json::from_value(h.fake.get(&path).expect("object")).expect("parses");
        writer.apply_watcher_event(&watcher::Event::InitApply(Compact::new(obj)));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    store
}

fn watch_caches(h: &Harness) -> Caches {
    Caches {
        secrets: watch_cache(h, "v1", "secrets"),
        service_accounts: watch_cache(h, "v1", "serviceaccounts"),
        services: watch_cache(h, "v1", "services"),
        deployments: watch_cache(h, "apps/v1", "deployments"),
        network_policies: watch_cache(h, "networking.k8s.io/v1", "networkpolicies"),
        pod_disruption_budgets: watch_cache(h, "policy/v1", "poddisruptionbudgets"),
        cron_jobs: watch_cache(h, "batch/v1", "cronjobs"),
    }
}

/// A new Realm with the watch caches synced and holding none of its objects: they do not
/// exist, so the first provisioning creates the `<name>-db` Secret and every child without
/// reading any of them first (on a real API server that is one GET fewer per object).
#[tokio::test]
async fn a_new_realm_is_provisioned_without_reading_what_synced_caches_say_is_absent() {
    let h = Harness::new("rc-absent", json!({}), true);
    h.ctx.set_caches(watch_caches(&h));
    h.reconcile().await.expect("finalizer");
    h.fake.take_log();
    h.reconcile().await.expect("first reconcile");
    let log = h.fake.take_log();
    let reads: Vec<_> = log.iter().filter(|l| l.starts_with("GET ")).collect();
    assert_eq!(reads, ["GET secrets/pg-admin"], "{log:?}");
    let n = &h.name;
    for applied in [
        format!("PATCH(apply) secrets/{n}-db"),
        format!("PATCH(apply) serviceaccounts/{n}-worker"),
        format!("PATCH(apply) deployments/{n}-worker"),
    ] {
        assert!(log.contains(&applied), "{applied} missing: {log:?}");
    }
    assert_eq!(h.condition("DatabaseReady").0, "True");
    assert_eq!(h.condition("Registered").0, "True");
}

/// A reconcile reads the Realm's children from the controller's watch caches: with the
/// caches filled, a steady-state reconcile makes no GET of any child (one read only: the
/// admin Secret, which is not the operator's object and not watched).
#[tokio::test]
async fn steady_state_reads_children_from_the_watch_caches_not_the_api() {
    let h = Harness::new("rc-cached", json!({}), true);
    h.create_until_ready().await;
    h.ctx.set_caches(watch_caches(&h));
    h.reconcile().await.expect("steady");
    let log = h.fake.take_log();
    // (The admin Secret read just before is reused, so not even that one here.)
    assert!(
        log.iter().all(|l| l == "GET secrets/pg-admin"),
        "children read from the API server: {log:?}"
    );
    assert!(h.hub.take_calls().is_empty());
}

/// The hub's entry for the realm id belongs to another Realm (one that another operator
/// watches, say): this Realm is refused (Conflict, reason RegistrationInUse) with one Warning
/// Event; the next reconciles neither repeat the Event nor rewrite the status; and deleting it
/// leaves the other Realm's entry alone.
#[tokio::test]
async fn a_hub_entry_of_another_realm_refuses_this_one_once() {
    let n = "rc-hubowned";
    let h = Harness::new(n, json!({}), true);
    let theirs = pek_operator::hub::Registration {
        display_name: "Theirs".into(),
        endpoint: "http://theirs-worker.elsewhere.svc:8080".into(),
        version: "1".into(),
        owner_uid: Some("uid-of-another-realm".into()),
        providers: None,
    };
    h.hub
        .registry
        .lock()
        .expect("lock")
        .insert(n.to_string(), theirs.clone());
    h.reconcile().await.expect("finalizer");
    h.fake.take_log();

    h.reconcile().await.expect("refused is not an error");
    let (s, reason, _) = h.condition("Conflict");
    assert_eq!((s.as_str(), reason.as_str()), ("True", "RegistrationInUse"));
    assert_eq!(h.condition("Ready").1, "Conflict");
    let log = h.fake.take_log();
    assert!(log.contains(&"POST events Conflict".to_string()), "{log:?}");
    assert_eq!(h.hub.take_calls(), [format!("PUT {n}")]);

    h.reconcile().await.expect("refused again");
    let log = h.fake.take_log();
    assert!(
        log.iter().all(|l| l.starts_with("GET ")),
        "the same refusal is neither announced nor written again: {log:?}"
    );
    assert_eq!(h.hub.registry.lock().expect("lock")[n], theirs);

    h.fake.delete(&h.realm_path());
    h.reconcile().await.expect("released");
    assert!(h.realm().is_none());
    assert!(h
        .fake
        .take_log()
        .contains(&"POST events CleanupSkipped".to_string()));
    assert_eq!(h.hub.registry.lock().expect("lock")[n], theirs);
}

impl Harness {
    fn db_secret(&self) -> Value {
        self.fake
            .get(&self.path("v1", "secrets", &format!("{}-db", self.name)))
            .expect("db secret")
    }

    fn secret_key(&self, key: &str) -> Option<String> {
        let s = self.db_secret();
        s["data"].get(key).map(unb64)
    }

    /// The worker Deployment's rollout finished `secs_ago` seconds ago: every replica runs
    /// the current template (and the grace period of old pods has passed when it is > 30).
    fn complete_rollout(&self, secs_ago: i64) {
        let path = self.path("apps/v1", "deployments", &format!("{}-worker", self.name));
        let at = k8s_openapi::jiff::Timestamp::now()
            - k8s_openapi::jiff::SignedDuration::from_secs(secs_ago);
        assert!(self.fake.edit(&path, |d| {
            let replicas = d["spec"]["replicas"].clone();
            d["status"] = json!({"observedGeneration": d["metadata"]["generation"],
                "replicas": replicas, "updatedReplicas": replicas,
                "availableReplicas": replicas, "readyReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                     "lastUpdateTime": at.to_string()}]});
        }));
    }

    fn credentials_hash(&self) -> String {
        let d = self
            .fake
            .get(&self.path("apps/v1", "deployments", &format!("{}-worker", self.name)))
            .expect("deployment");
        d["spec"]["template"]["metadata"]["annotations"]["pek.sch.bme.hu/db-credentials-hash"]
            .as_str()
            .expect("hash")
            .to_string()
    }

    fn status(&self) -> pek_crds::RealmStatus {
        self.realm().expect("realm").status.expect("status")
    }
}

/// Logs in with `url` and reads the table `kept` (granted to the app role): what a worker pod
/// does with the credentials it started with.
async fn works(url: &str) -> Result<String, sqlx::Error> {
    let mut c = sqlx::PgConnection::connect(url).await?;
    let user: String = sqlx::query_scalar("SELECT current_user::text FROM kept")
        .fetch_one(&mut c)
        .await?;
    let _ = c.close().await;
    Ok(user)
}

/// Rotation on demand: the other login role gets a new password and the Secret switches to it
/// while the old login still works; the old login is disabled only after the worker rollout
/// completed (and old pods' grace period passed). Three rotations alternate `_app` → `_app_a`
/// → `_app_b` → `_app_a`, each with a fresh password; Events and the status say so; a
/// confirmed delete drops every login role.
#[tokio::test]
async fn rotation_alternates_login_roles_and_retires_the_old_one_after_the_rollout() {
    let h = Harness::new(
        "rc-rotate",
        json!({"database": {"adminSecretRef": {"name": "pg-admin"}, "deletionPolicy": "Delete"}}),
        true,
    );
    h.create_until_ready().await;
    // The worker's migrations grant table privileges to the login role of the day; the first
    // one is the app role itself, which the rotated logins are members of.
    let mut owner = sqlx::PgConnection::connect(&h.owner_url())
        .await
        .expect("owner");
    sqlx::raw_sql(
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x'); \
         GRANT SELECT ON kept TO pek_rc_rotate_app",
    )
    .execute(&mut owner)
    .await
    .expect("table");
    let first = h.app_url();
    assert_eq!(
        works(&first).await.expect("first login"),
        "pek_rc_rotate_app"
    );
    // A pod that is running keeps its session through all of it.
    let mut pod = sqlx::PgConnection::connect(&first).await.expect("pod");

    let mut previous_url = first;
    let mut previous_user = "pek_rc_rotate_app".to_string();
    let mut passwords = vec![h.secret_key("password").expect("password")];
    for (round, expected) in [
        "pek_rc_rotate_app_a",
        "pek_rc_rotate_app_b",
        "pek_rc_rotate_app_a",
    ]
    .into_iter()
    .enumerate()
    {
        let hash_before = h.credentials_hash();
        h.annotate(
            pek_crds::ROTATE_CREDENTIALS_ANNOTATION,
            &format!("r{round}"),
        );
        h.reconcile().await.expect("rotation starts");
        h.fake.take_log();
        let url = h.app_url();
        assert_eq!(h.secret_key("user").as_deref(), Some(expected));
        assert_eq!(
            h.secret_key("previousUser").as_deref(),
            Some(previous_user.as_str())
        );
        assert_eq!(h.secret_key("nextUser"), None);
        let password = h.secret_key("password").expect("password");
        assert!(!passwords.contains(&password), "a fresh password");
        passwords.push(password);
        assert_ne!(h.credentials_hash(), hash_before, "the worker pods roll");
        // Both logins work while pods move.
        assert_eq!(works(&url).await.expect("new login"), expected);
        assert_eq!(
            works(&previous_url).await.expect("old login still works"),
            previous_user
        );
        let status = h.status();
        assert_eq!(status.database_user.as_deref(), Some(expected));
        assert_eq!(
            status.retiring_database_user.as_deref(),
            Some(previous_user.as_str())
        );
        assert!(status.credentials_rotated_at.is_some());

        // Rollout not complete (or old pods maybe still terminating): the old login stays.
        h.reconcile().await.expect("waiting");
        assert!(works(&previous_url).await.is_ok(), "round {round}");
        h.complete_rollout(5);
        h.reconcile().await.expect("grace period");
        assert!(works(&previous_url).await.is_ok(), "round {round}: grace");

        h.complete_rollout(60);
        h.reconcile().await.expect("retire");
        let err = works(&previous_url).await.expect_err("old login disabled");
        assert!(
            err.to_string().contains("not permitted to log in")
                || err.to_string().contains("password authentication failed"),
            "{err}"
        );
        assert_eq!(works(&url).await.expect("new login"), expected);
        assert_eq!(h.secret_key("previousUser"), None);
        assert_eq!(h.status().retiring_database_user, None);
        assert_eq!(h.event_notes("CredentialsRotating").len(), round + 1);
        assert_eq!(h.event_notes("CredentialsRotated").len(), round + 1);

        // The same annotation value does not rotate again.
        h.reconcile().await.expect("steady");
        assert_eq!(h.secret_key("user").as_deref(), Some(expected));
        previous_url = url;
        previous_user = expected.to_string();
    }
    let _: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut pod)
        .await
        .expect("a session opened before the rotations still works");
    drop(pod);
    drop(owner);

    h.confirm_delete();
    h.fake.delete(&h.realm_path());
    h.reconcile().await.expect("cleanup");
    assert_eq!(h.roles().await, 0, "every login role is dropped");
}

/// `spec.database.rotateEvery` rotates once it elapsed since the credentials were generated or
/// last rotated; an operator killed between storing the next password and the switch finishes
/// the switch with that password.
#[tokio::test]
async fn rotate_every_rotates_when_due_and_a_prepared_rotation_survives_a_restart() {
    let mut h = Harness::new("rc-every", json!({}), true);
    h.create_until_ready().await;
    h.edit_spec(|s| s["database"]["rotateEvery"] = json!("1d"));
    h.reconcile().await.expect("not due yet");
    assert_eq!(h.secret_key("user").as_deref(), Some("pek_rc_every_app"));
    // The credentials were generated a day ago.
    let path = h.path("v1", "secrets", "rc-every-db");
    assert!(h.fake.edit(&path, |s| {
        s["metadata"]["annotations"]["pek.sch.bme.hu/credentials-since"] =
            json!("2025-01-01T00:00:00Z");
    }));
    h.reconcile().await.expect("scheduled rotation");
    assert_eq!(h.secret_key("user").as_deref(), Some("pek_rc_every_app_a"));
    h.complete_rollout(60);
    h.reconcile().await.expect("retire");
    assert_eq!(h.secret_key("previousUser"), None);
    h.reconcile().await.expect("not due again");
    assert_eq!(h.secret_key("user").as_deref(), Some("pek_rc_every_app_a"));

    // A rotation prepared (next login and password stored) when the operator died.
    assert!(h.fake.edit(&path, |s| {
        s["data"]["nextUser"] = b64("pek_rc_every_app_b");
        s["data"]["nextPassword"] = b64("prepared-before-the-crash");
    }));
    h.restart();
    h.reconcile().await.expect("resumed");
    assert_eq!(h.secret_key("user").as_deref(), Some("pek_rc_every_app_b"));
    assert_eq!(
        h.secret_key("password").as_deref(),
        Some("prepared-before-the-crash")
    );
    assert!(sqlx::PgConnection::connect(&h.app_url()).await.is_ok());
}

/// A `<name>-db` Secret the user supplied (not generated by the operator) is never rotated:
/// neither by the annotation nor by the schedule; a Warning Event says why, once per cause.
#[tokio::test]
async fn a_user_supplied_secret_is_never_rotated() {
    let h = Harness::new(
        "rc-own",
        json!({"database": {"adminSecretRef": {"name": "pg-admin"}, "rotateEvery": "1s"}}),
        true,
    );
    h.fake.insert(
        &format!("/api/v1/namespaces/{}/secrets", h.ns),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "rc-own-db", "namespace": h.ns},
               "data": {"password": b64("users-own-app-pw"), "ownerPassword": b64("users-own-owner-pw")}}),
    );
    h.reconcile().await.expect("finalizer");
    h.reconcile().await.expect("provision");
    h.make_deployment_available();
    h.annotate(pek_crds::ROTATE_CREDENTIALS_ANNOTATION, "now");
    for _ in 0..3 {
        h.reconcile().await.expect("reconcile");
    }
    assert_eq!(h.secret_key("user").as_deref(), Some("pek_rc_own_app"));
    assert_eq!(
        h.secret_key("password").as_deref(),
        Some("users-own-app-pw")
    );
    assert_eq!(
        h.secret_key("ownerPassword").as_deref(),
        Some("users-own-owner-pw")
    );
    assert_eq!(h.secret_key("nextUser"), None);
    assert!(sqlx::PgConnection::connect(&h.app_url()).await.is_ok());
    // One Warning for the schedule, one for the annotation's value; none repeated.
    let notes = h.event_notes("CredentialRotationRefused");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes.iter().all(|n| n.contains("never overwritten")),
        "{notes:?}"
    );
    assert!(h.status().credentials_rotated_at.is_none());
    assert!(h.event_notes("CredentialsRotating").is_empty());
}

/// `spec.database.restoreFrom`: a missing dump stops the reconcile before the worker and the
/// registration (`RestoreFailed`); once the dump is there it is restored into the new database
/// and only then the worker applied; it is restored once — a restore that committed before its
/// mark was written is only recorded, and a database holding data without the mark is never
/// restored over.
#[tokio::test]
async fn restore_runs_once_before_the_worker_and_never_over_data() {
    let mut h = Harness::new(
        "rc-restore",
        json!({"database": {"adminSecretRef": {"name": "pg-admin"},
                            "restoreFrom": {"dumpFile": "src.dump"}}}),
        true,
    );
    h.reconcile().await.expect("finalizer");
    h.fake.take_log();
    let err = h.reconcile().await.expect_err("no such dump yet");
    assert_eq!(err.reason(), "RestoreFailed");
    let (s, reason, message) = h.condition("DatabaseReady");
    assert_eq!((s.as_str(), reason.as_str()), ("False", "RestoreFailed"));
    assert!(message.contains("no such dump"), "{message}");
    let log = h.fake.take_log();
    assert!(
        !log.iter().any(|l| l.contains("deployments")) && h.hub.calls().is_empty(),
        "no worker, no registration before the restore: {log:?}"
    );

    // The dump of a realm database (what a worker leaves: its schema with forced RLS).
    let mut su = sqlx::PgConnection::connect(&pg().superuser_url("postgres"))
        .await
        .expect("superuser");
    for stmt in [
        "DROP DATABASE IF EXISTS rc_restore_src",
        "CREATE DATABASE rc_restore_src",
    ] {
        sqlx::raw_sql(stmt)
            .execute(&mut su)
            .await
            .expect("source database");
    }
    let _ = su.close().await;
    let mut src = sqlx::PgConnection::connect(&pg().superuser_url("rc_restore_src"))
        .await
        .expect("source");
    sqlx::raw_sql(
        "CREATE TABLE realms (id text PRIMARY KEY);
         CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
             installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL,
             checksum bytea NOT NULL, execution_time bigint NOT NULL);
         CREATE TABLE groups (realm_id text NOT NULL REFERENCES realms (id), name text NOT NULL);
         ALTER TABLE groups ENABLE ROW LEVEL SECURITY;
         ALTER TABLE groups FORCE ROW LEVEL SECURITY;
         CREATE POLICY realm_isolation ON groups
             USING (realm_id = current_setting('pek.realm_id', true));
         INSERT INTO realms VALUES ('hub'), ('rc-restore');
         INSERT INTO _sqlx_migrations VALUES (20261123000001, 'realm core', now(), true, '\\x00', 1);
         INSERT INTO groups VALUES ('rc-restore', 'Kör'), ('rc-restore', 'Projekt');",
    )
    .execute(&mut src)
    .await
    .expect("source schema");
    let _ = src.close().await;
    let bindir = localpg::find_bindir().expect("Postgres binaries");
    std::fs::create_dir_all(dump_dir("rc-restore")).expect("dump dir");
    let out = std::process::Command::new(bindir.join("pg_dump"))
        .arg("--format=custom")
        .arg("--file")
        .arg(dump_dir("rc-restore").join("src.dump"))
        .arg("--dbname")
        .arg(pg().superuser_url("rc_restore_src"))
        .output()
        .expect("pg_dump");
    assert!(out.status.success(), "{out:?}");

    h.reconcile().await.expect("restored");
    let log = h.fake.take_log();
    let restored_at = log
        .iter()
        .position(|l| l == "POST events DatabaseRestored")
        .unwrap_or_else(|| panic!("a DatabaseRestored Event: {log:?}"));
    let worker_at = log
        .iter()
        .position(|l| l.starts_with("PATCH(apply) deployments/"))
        .unwrap_or_else(|| panic!("the worker: {log:?}"));
    assert!(
        restored_at < worker_at,
        "restored before the worker: {log:?}"
    );
    let mark = |h: &Harness| {
        h.db_secret()["metadata"]["annotations"]["pek.sch.bme.hu/restore"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(mark(&h).as_deref(), Some("restored src.dump"));
    let groups = || async {
        let mut c = sqlx::PgConnection::connect(&pg().superuser_url("pek_rc_restore"))
            .await
            .expect("restored database");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM groups")
            .fetch_one(&mut c)
            .await
            .expect("groups");
        let _ = c.close().await;
        n
    };
    assert_eq!(groups().await, 2);

    // Killed after the commit, before the mark: recorded, not restored again.
    let secret = h.path("v1", "secrets", "rc-restore-db");
    assert!(h.fake.edit(&secret, |s| {
        s["metadata"]["annotations"]["pek.sch.bme.hu/restore"] = json!("restoring src.dump");
    }));
    h.restart();
    h.reconcile().await.expect("recorded");
    assert_eq!(mark(&h).as_deref(), Some("restored src.dump"));
    assert!(!h
        .fake
        .take_log()
        .contains(&"POST events DatabaseRestored".to_string()));
    assert_eq!(groups().await, 2, "not restored twice");

    // Data without the mark (a Realm re-created onto a retained database): never restored over.
    assert!(h.fake.edit(&secret, |s| {
        if let Some(a) = s["metadata"]["annotations"].as_object_mut() {
            a.remove("pek.sch.bme.hu/restore");
        }
    }));
    h.restart();
    let err = h.reconcile().await.expect_err("refused");
    assert_eq!(err.reason(), "RestoreFailed");
    assert!(
        err.message().contains("already holds data"),
        "{}",
        err.message()
    );
    assert_eq!(groups().await, 2);
}
