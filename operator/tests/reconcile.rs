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
    ns: String,
    name: String,
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
        Self::with_config(id, spec_extra, with_admin_secret, Config::for_tests())
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
            config,
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
                "POST events Registered".into(),
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
    // A live session must not block the drop.
    let _session = sqlx::PgConnection::connect(&h.app_url())
        .await
        .expect("app session");
    h.fake.delete(&h.realm_path());
    h.reconcile().await.expect("cleanup");
    assert_eq!(
        h.fake.take_log(),
        [
            "POST events Deregistered".to_string(),
            "GET secrets/pg-admin".into(),
            "POST events DatabaseDropped".into(),
            "POST events RoleDropped".into(),
            format!("PATCH(json) realms/{n}"),
        ]
    );
    assert_eq!(h.hub.take_calls(), [format!("DELETE {n}")]);
    assert!(h.realm().is_none());
    assert!(!h.database_exists().await, "Delete drops the database");
    assert_eq!(h.roles().await, 0, "Delete drops both roles");
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
