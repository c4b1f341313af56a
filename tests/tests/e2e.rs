//! End-to-end on a real Kubernetes API server (`tests/run.sh` starts one from
//! `../shared/k8s/control-plane.sh` and sets KUBECONFIG; any cluster the host can reach works).
//!
//! What runs where: the pek-hub chart is installed with real Helm (CRD, ServiceAccount, RBAC);
//! the hub, Postgres and the operator run as processes on this host. The operator runs **as the
//! chart's ServiceAccount** (a token from the TokenRequest API), so the chart's RBAC is what is
//! tested. There is no kubelet: where a test needs the worker to be available, a *kubelet
//! stand-in* ([`KubeletStandIn`]) marks the Realm's Pending pods Ready through the pods/status
//! subresource, as the admin.
//!
//! Every test gets its own namespace, hub and operator (its own Lease), and cleans up after
//! itself in `Drop` (also when it fails): the operator is killed, leftover finalizers are
//! removed and the namespace is deleted.
//!
//! The suite runs only when asked (`PEK_E2E=1`, or `PEK_E2E_REQUIRE=1` which also makes a
//! missing cluster a failure; tests/checks/k8s-e2e.sh sets it after starting the control
//! plane); otherwise, or without a cluster, each test prints a loud SKIPPED line and returns.
//! Helm comes from `PEK_E2E_HELM` (tests/run.sh passes the one tests/checks/helm.sh fetched),
//! else `helm` on PATH.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Secret, Service, ServiceAccount};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use pek_crds::Realm;
use pek_tests::auth_support::Scratch;
use pek_tests::{free_port, workspace_root, HubProcess};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::sync::OnceCell;

/// Release and namespace of the chart install the tests share.
const RELEASE: &str = "pek-e2e";
const RELEASE_NS: &str = "pek-e2e";
const OPERATOR_SA: &str = "pek-e2e-pek-hub-operator";
const WORKER_IMAGE: &str = "ghcr.io/schonherz/pek:e2e";

fn say(line: &str) {
    // The real stderr (not eprintln!, which the test harness captures), so a skip is visible.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// An admin client, or None after a loud SKIPPED line (a failure under PEK_E2E_REQUIRE=1).
async fn cluster() -> Option<Client> {
    let required = std::env::var("PEK_E2E_REQUIRE").is_ok_and(|v| v == "1");
    // Only on request: the suite installs a Helm release into the cluster KUBECONFIG names,
    // which must not happen to a user's cluster by a plain `cargo test`.
    if !required && std::env::var("PEK_E2E").is_err() {
        say("\n*** SKIPPED: e2e on a Kubernetes API server (set PEK_E2E=1 and KUBECONFIG; tests/checks/k8s-e2e.sh does, with ../shared/k8s) ***\n");
        return None;
    }
    let skip = |why: String| {
        assert!(
            !required,
            "PEK_E2E_REQUIRE=1 but no Kubernetes API server: {why}"
        );
        say(&format!(
            "\n*** SKIPPED: e2e needs a Kubernetes API server ({why}); tests/run.sh starts one when ../shared/k8s exists ***\n"
        ));
        None
    };
    if std::env::var_os("KUBECONFIG").is_none() {
        return skip("KUBECONFIG is not set".into());
    }
    let client = match tokio::time::timeout(Duration::from_secs(10), Client::try_default()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return skip(format!("no usable kubeconfig: {e}")),
        Err(_) => return skip("timed out loading the kubeconfig".into()),
    };
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => Some(client),
        Ok(Err(e)) => skip(format!("the API server did not answer: {e}")),
        Err(_) => skip("the API server did not answer within 10 s".into()),
    }
}

fn helm() -> String {
    std::env::var("PEK_E2E_HELM").unwrap_or_else(|_| "helm".into())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `pek-operator` from the target directory, built when missing.
fn operator_binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let bin = target.join("debug").join("pek-operator");
    if !bin.is_file() {
        run(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "-p", "pek-operator", "--bin", "pek-operator"])
                .current_dir(workspace_root()),
        );
    }
    bin
}

/// What the tests share: the chart installed once, and a kubeconfig that acts as the chart's
/// operator ServiceAccount.
struct Shared {
    operator_kubeconfig: PathBuf,
    _dir: Scratch,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

async fn shared(client: &Client) -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            let dir = Scratch::new("e2e-shared").expect("scratch dir");
            let chart = workspace_root().join("charts/pek-hub");
            run(Command::new(helm())
                .args(["upgrade", "--install", RELEASE])
                .arg(&chart)
                .args(["--namespace", RELEASE_NS, "--create-namespace"])
                .args([
                    "--set",
                    "postgresql.enabled=true",
                    "--set",
                    "operator.replicas=0",
                ])
                .args(["--set", "hub.replicas=0", "--wait=false"]));
            let kubeconfig = operator_kubeconfig(client, &dir.0).await;
            Shared {
                operator_kubeconfig: kubeconfig,
                _dir: dir,
            }
        })
        .await
}

/// A kubeconfig for the same API server whose user is the operator's ServiceAccount, with a
/// token from the TokenRequest API.
async fn operator_kubeconfig(client: &Client, dir: &Path) -> PathBuf {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), RELEASE_NS);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut token = None;
    for _ in 0..30 {
        match sas
            .create_subresource::<TokenRequest, TokenRequest>(
                "token",
                OPERATOR_SA,
                &PostParams::default(),
                &request,
            )
            .await
        {
            Ok(t) => {
                token = t.status.map(|s| s.token);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let token = token.expect("a TokenRequest token for the operator's ServiceAccount");
    let mut config = kube::config::Kubeconfig::read().expect("admin kubeconfig");
    let context = config
        .current_context
        .clone()
        .or_else(|| config.contexts.first().map(|c| c.name.clone()))
        .expect("a context");
    let cluster = config
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .expect("the context's cluster");
    config.auth_infos = vec![kube::config::NamedAuthInfo {
        name: "pek-operator".into(),
        auth_info: Some(kube::config::AuthInfo {
            token: Some(token.into()),
            ..Default::default()
        }),
        other: Default::default(),
    }];
    config.contexts = vec![kube::config::NamedContext {
        name: "pek-operator".into(),
        context: Some(kube::config::Context {
            cluster,
            user: Some("pek-operator".into()),
            ..Default::default()
        }),
        other: Default::default(),
    }];
    config.current_context = Some("pek-operator".into());
    // JSON is YAML: kubeconfig readers take it as it is.
    let path = dir.join("operator-kubeconfig");
    std::fs::write(&path, serde_json::to_vec(&config).expect("json")).expect("write kubeconfig");
    path
}

/// A `pek-operator run` process acting as the chart's ServiceAccount; killed on drop.
struct OperatorProcess {
    child: Child,
    log: PathBuf,
}

impl OperatorProcess {
    fn start(env: &TestEnv, identity: &str, extra: &[(&str, &str)]) -> Self {
        let log = env.dir.0.join(format!("operator-{identity}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(operator_binary());
        cmd.arg("run")
            .env("KUBECONFIG", &env.shared.operator_kubeconfig)
            .env("PEK_HUB_URL", &env.hub.url)
            .env("PEK_HUB_TOKEN_FILE", &env.hub_token_file)
            .env("PEK_WORKER_IMAGE", WORKER_IMAGE)
            .env("PEK_WATCH_NAMESPACE", &env.ns)
            .env("POD_NAMESPACE", RELEASE_NS)
            .env("POD_NAME", identity)
            .env("PEK_LEASE_NAME", format!("lease-{}", env.ns))
            .env(
                "PEK_OPERATOR_LISTEN",
                format!("127.0.0.1:{}", free_port().expect("port")),
            )
            .env("PEK_RESYNC_SECONDS", "10")
            // The dump before every DROP, with this host's pg_dump (the one of the Postgres
            // the tests run).
            .env("PEK_DUMP_DIR", env.dir.0.join("dumps"))
            .env(
                "PEK_PG_DUMP",
                localpg::find_bindir()
                    .expect("Postgres binaries")
                    .join("pg_dump"),
            )
            .env(
                "PEK_PG_RESTORE",
                localpg::find_bindir()
                    .expect("Postgres binaries")
                    .join("pg_restore"),
            )
            // Scheduled backups into this claim (no kubelet runs them here: the CronJob is
            // what is checked).
            .env("PEK_BACKUP_CLAIM", "pek-dumps")
            .env("PEK_LOG_FORMAT", "text")
            .env("RUST_LOG", "info,kube=warn,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start pek-operator");
        OperatorProcess { child, log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        run(Command::new("kill").args([sig, &self.child.id().to_string()]));
    }

    /// Waits for the process to exit; its exit status.
    async fn exited(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kubelet's part, played by the test: marks the Pending pods of the namespace Running and
/// Ready through the pods/status subresource (as the admin), every second, until dropped.
struct KubeletStandIn(tokio::task::JoinHandle<()>);

impl KubeletStandIn {
    fn start(client: &Client, ns: &str) -> Self {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        KubeletStandIn(tokio::spawn(async move {
            loop {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    for pod in list {
                        let ready = pod
                            .status
                            .as_ref()
                            .and_then(|s| s.phase.as_deref())
                            .is_some_and(|p| p == "Running");
                        if ready || pod.metadata.deletion_timestamp.is_some() {
                            continue;
                        }
                        let now = k8s_openapi::jiff::Timestamp::now().to_string();
                        let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
                        let status = json!({"status": {
                            "phase": "Running",
                            "conditions": [cond("PodScheduled"), cond("Initialized"), cond("ContainersReady"), cond("Ready")],
                        }});
                        let _ = pods
                            .patch_status(
                                &pod.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&status),
                            )
                            .await;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}

impl Drop for KubeletStandIn {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A TCP forwarder to the hub that can be switched off: while off it refuses new connections
/// and cuts the open ones, as a hub outage does.
struct HubSwitch {
    url: String,
    down: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HubSwitch {
    async fn start(hub_url: &str) -> Self {
        let target = hub_url.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (down, watch) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *watch.borrow() {
                    continue;
                }
                let target = target.clone();
                let mut cut = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|d| *d) => {}
                    }
                });
            }
        });
        HubSwitch { url, down, task }
    }

    fn set_down(&self, down: bool) {
        let _ = self.down.send(down);
    }
}

impl Drop for HubSwitch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One test's world: a namespace with the Postgres admin Secret, a hub, and (usually) an
/// operator. Dropping it kills the processes, removes leftover finalizers and deletes the
/// namespace.
struct TestEnv {
    client: Client,
    ns: String,
    shared: &'static Shared,
    hub: std::sync::Arc<HubProcess>,
    hub_token_file: PathBuf,
    dir: Scratch,
    operators: Vec<OperatorProcess>,
}

const ADMIN_SECRET: &str = "pg-admin";

fn pg() -> &'static localpg::LocalPostgres {
    localpg::LocalPostgres::per_process().expect("throwaway Postgres")
}

impl TestEnv {
    /// None when there is no cluster (skipped).
    async fn new(tag: &str, with_operator: bool) -> Option<Self> {
        let client = cluster().await?;
        let shared = shared(&client).await;
        let ns = format!("e2e-{tag}-{}", std::process::id());
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
            )
            .await
            .expect("create the test namespace");
        let hub = HubProcess::start().await.expect("start the hub");
        let dir = Scratch::new(&format!("e2e-{tag}")).expect("scratch dir");
        let hub_token_file = dir.write("hub-token", &hub.token).expect("token file");
        let mut env = TestEnv {
            client,
            ns,
            shared,
            hub: std::sync::Arc::new(hub),
            hub_token_file,
            dir,
            operators: Vec::new(),
        };
        env.secret(ADMIN_SECRET, &pg().superuser_url("postgres"))
            .await;
        if with_operator {
            env.start_operator("op-1", &[]);
        }
        Some(env)
    }

    /// Another namespace with the same hub and, when `with_operator`, an operator of its own
    /// that watches only that namespace (as a second installation sharing the hub would).
    async fn sibling(&self, tag: &str, with_operator: bool) -> TestEnv {
        let ns = format!("{}-{tag}", self.ns);
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
            )
            .await
            .expect("create the sibling namespace");
        let mut env = TestEnv {
            client: self.client.clone(),
            ns,
            shared: self.shared,
            hub: self.hub.clone(),
            hub_token_file: self.hub_token_file.clone(),
            dir: Scratch::new(&format!("e2e-{tag}")).expect("scratch dir"),
            operators: Vec::new(),
        };
        env.secret(ADMIN_SECRET, &pg().superuser_url("postgres"))
            .await;
        if with_operator {
            env.start_operator(&format!("op-{tag}"), &[]);
        }
        env
    }

    fn start_operator(&mut self, identity: &str, extra: &[(&str, &str)]) {
        let op = OperatorProcess::start(self, identity, extra);
        self.operators.push(op);
    }

    async fn secret(&self, name: &str, uri: &str) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": name}, "stringData": {"uri": uri}
        }))
        .expect("secret");
        secrets
            .patch(name, &PatchParams::apply("e2e").force(), &Patch::Apply(&s))
            .await
            .expect("admin Secret");
    }

    fn realms(&self) -> Api<Realm> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates a Realm `name` (realm id `id`) with `spec` merged over the defaults.
    async fn create_realm(&self, name: &str, id: &str, spec: Value) -> Realm {
        let mut base =
            json!({"realmId": id, "database": {"adminSecretRef": {"name": ADMIN_SECRET}}});
        merge(&mut base, spec);
        let realm: Realm = serde_json::from_value(json!({
            "apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
            "metadata": {"name": name}, "spec": base
        }))
        .expect("realm");
        self.realms()
            .create(&PostParams::default(), &realm)
            .await
            .expect("create Realm")
    }

    async fn patch_spec(&self, name: &str, spec: Value) {
        self.realms()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .expect("patch Realm");
    }

    async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Realm {
        let realms = self.realms();
        let what = format!("Realm {name}: {type_}={status} ({reason:?})");
        let found = wait_for(&what, Duration::from_secs(90), || async {
            realms.get(name).await.ok().filter(|r| {
                cond(r, type_).is_some_and(|c| {
                    c.status == status && reason.is_none_or(|want| c.reason == want)
                })
            })
        })
        .await;
        match found {
            Some(r) => r,
            None => panic!(
                "timed out waiting for {what}; last status: {:?}\noperator log:\n{}",
                realms.get(name).await.ok().and_then(|r| r.status),
                self.operator_logs()
            ),
        }
    }

    fn operator_logs(&self) -> String {
        self.operators
            .iter()
            .map(|o| o.logs())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    async fn wait_gone(&self, name: &str) {
        let realms = self.realms();
        let gone = wait_for(
            &format!("Realm {name} to be gone"),
            Duration::from_secs(90),
            || async {
                realms
                    .get_opt(name)
                    .await
                    .ok()
                    .and_then(|r| r.is_none().then_some(()))
            },
        )
        .await;
        if gone.is_none() {
            panic!(
                "Realm {name} was not deleted; status: {:?}\noperator log:\n{}",
                realms
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.status),
                self.operator_logs()
            );
        }
    }

    /// The hub's registry: realm id → endpoint.
    async fn registry(&self) -> BTreeMap<String, String> {
        let body: Value = reqwest::Client::new()
            .get(format!("{}/internal/v1/realms", self.hub.url))
            .bearer_auth(&self.hub.token)
            .send()
            .await
            .expect("hub registry")
            .json()
            .await
            .expect("registry json");
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap_or_default().to_string(),
                    i["endpoint"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The owner (Realm uid) the hub's registry records for `id`.
    async fn registry_owner(&self, id: &str) -> Option<String> {
        let body: Value = reqwest::Client::new()
            .get(format!("{}/internal/v1/realms", self.hub.url))
            .bearer_auth(&self.hub.token)
            .send()
            .await
            .expect("hub registry")
            .json()
            .await
            .expect("registry json");
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["id"] == id)
            .and_then(|i| i["ownerUid"].as_str().map(str::to_string))
    }

    /// Events of the namespace about `name` with `reason`.
    async fn events(&self, name: &str, reason: &str) -> Vec<Event> {
        let events: Api<Event> = self.api();
        events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect()
    }

    /// Confirms dropping the database of Realm `name` (realm id `id`) on deletion.
    async fn confirm_delete(&self, name: &str, id: &str) {
        self.realms()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {
                    (pek_crds::CONFIRM_DELETE_ANNOTATION): id}}})),
            )
            .await
            .expect("annotate the Realm");
    }

    /// The Realm's row as `kubectl get realms` prints it (the API server's Table, from the
    /// CRD's printer columns): column name → cell.
    async fn printed(&self, name: &str) -> BTreeMap<String, String> {
        let mut req = kube::core::Request::new(format!(
            "/apis/pek.sch.bme.hu/v1alpha1/namespaces/{}/realms",
            self.ns
        ))
        .get(name, &kube::api::GetParams::default())
        .expect("request");
        req.headers_mut().insert(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io"
                .parse()
                .expect("header"),
        );
        let table: Value = self
            .client
            .request(req)
            .await
            .expect("the Realm as a Table");
        let columns = table["columnDefinitions"].as_array().expect("columns");
        let cells = table["rows"][0]["cells"].as_array().expect("cells");
        columns
            .iter()
            .zip(cells)
            .map(|(c, v)| {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                (c["name"].as_str().unwrap_or_default().to_string(), text)
            })
            .collect()
    }

    fn endpoint(&self, name: &str) -> String {
        format!("http://{name}-worker.{}.svc:8080", self.ns)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.operators.clear();
        let ns = self.ns.clone();
        // Drop runs inside the test's (single-threaded, now blocked) runtime: clean up on a
        // thread with a runtime and a client of its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let Ok(client) = Client::try_default().await else {
                    return;
                };
                let realms: Api<Realm> = Api::namespaced(client.clone(), &ns);
                if let Ok(list) = realms.list(&ListParams::default()).await {
                    for r in list {
                        let _ = realms
                            .patch(
                                &r.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                            )
                            .await;
                    }
                }
                let namespaces: Api<Namespace> = Api::all(client);
                let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
            });
        });
        let _ = cleanup.join();
    }
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

fn cond(
    r: &Realm,
    type_: &str,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    r.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// Polls `check` every 500 ms until it returns Some or `timeout` passes.
async fn wait_for<T, F, Fut>(_what: &str, timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn pg_scalar(sql: &str, arg: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(&pg().superuser_url("postgres"))
        .await
        .expect("connect as superuser");
    let n: i64 = sqlx::query_scalar(sql)
        .bind(arg)
        .fetch_one(&mut conn)
        .await
        .expect("query");
    let _ = conn.close().await;
    n
}

async fn database_exists(name: &str) -> bool {
    pg_scalar("SELECT count(*) FROM pg_database WHERE datname = $1", name).await == 1
}

fn unique(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

fn db_name(id: &str) -> String {
    format!("pek_{}", id.replace('-', "_"))
}

/// Can the credentials in the Realm's `<name>-db` Secret log in?
async fn db_secret_works(env: &TestEnv, name: &str) -> bool {
    let secrets: Api<Secret> = env.api();
    let s = secrets.get(&format!("{name}-db")).await.expect("db Secret");
    let url = String::from_utf8(s.data.expect("data")["DATABASE_URL"].0.clone()).expect("utf8");
    match sqlx::PgConnection::connect(&url).await {
        Ok(c) => {
            let _ = c.close().await;
            true
        }
        Err(_) => false,
    }
}

/// A key of the Realm's `<name>-db` Secret.
async fn db_secret_key(env: &TestEnv, name: &str, key: &str) -> String {
    let secrets: Api<Secret> = env.api();
    let s = secrets.get(&format!("{name}-db")).await.expect("db Secret");
    String::from_utf8(s.data.expect("data")[key].0.clone()).expect("utf8")
}

/// A realm's data as a worker leaves it: the schema migrated as the owner role (what the
/// worker does at start; no kubelet runs it here), then two groups, three memberships, a
/// semester with an accepted scoreboard and its point history, written as the superuser.
async fn seed_realm_data(env: &TestEnv, name: &str, id: &str) {
    let owner_url = db_secret_key(env, name, "MIGRATION_DATABASE_URL").await;
    let user = db_secret_key(env, name, "user").await;
    pek::db::migrate(&owner_url, pek::config::Mode::Worker, Some(&user))
        .await
        .expect("migrate the realm database");
    let mut conn = sqlx::PgConnection::connect(&pg().superuser_url(&db_name(id)))
        .await
        .expect("connect as superuser");
    let seed = include_str!("../e2e/realm-seed.sql").replace("'rx'", &format!("'{id}'"));
    sqlx::raw_sql(&seed)
        .execute(&mut conn)
        .await
        .expect("seed the realm");
    let _ = conn.close().await;
}

/// What a restore must bring back: the rows of the realm's tables and the semester figure
/// (each person's points in the semester), read as the superuser (past row-level security).
async fn realm_figures(id: &str) -> BTreeMap<String, i64> {
    let mut conn = sqlx::PgConnection::connect(&pg().superuser_url(&db_name(id)))
        .await
        .expect("connect as superuser");
    let mut out = BTreeMap::new();
    for table in [
        "groups",
        "memberships",
        "semesters",
        "scoreboards",
        "point_history",
        "federation_outbox",
    ] {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE realm_id = $1"))
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .expect("count");
        out.insert(table.to_string(), n);
    }
    let points: Vec<(String, i64)> = sqlx::query_as(
        "SELECT h.user_id::text, sum(h.points)::bigint FROM point_history h \
         JOIN semesters s ON s.realm_id = h.realm_id AND s.id = h.semester_id \
         WHERE h.realm_id = $1 AND s.name = '2026/27/1' GROUP BY h.user_id",
    )
    .bind(id)
    .fetch_all(&mut conn)
    .await
    .expect("semester figure");
    for (user, total) in points {
        out.insert(format!("2026/27/1 points of {user}"), total);
    }
    let _ = conn.close().await;
    out
}

#[tokio::test]
async fn realm_lifecycle_on_a_real_api_server() {
    let Some(env) = TestEnv::new("life", true).await else {
        return;
    };
    let _kubelet = KubeletStandIn::start(&env.client, &env.ns);
    let id = unique("life");
    let name = "life";
    env.create_realm(
        name,
        &id,
        json!({"displayName": "Lifecycle realm", "admins": ["AUTHSCH-1", "AUTHSCH-2"],
               "database": {"deletionPolicy": "Delete"}}),
    )
    .await;
    let r = env.wait_condition(name, "Ready", "True", None).await;
    let status = r.status.clone().expect("status");
    assert_eq!(status.observed_generation, r.metadata.generation);
    assert_eq!(
        status.endpoint.as_deref(),
        Some(env.endpoint(name).as_str())
    );
    // Postgres: the database and both roles exist, and the Secret's credentials work.
    assert!(database_exists(&db_name(&id)).await);
    assert_eq!(
        pg_scalar(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1 || '\\_%'",
            &db_name(&id)
        )
        .await,
        2
    );
    assert!(db_secret_works(&env, name).await);
    // The hub lists the realm at its endpoint, owned by this Realm (its uid).
    assert_eq!(env.registry().await.get(&id), Some(&env.endpoint(name)));
    assert_eq!(env.registry_owner(&id).await, r.metadata.uid);
    // Children: owned by the Realm (controller reference), applied by the operator's field manager.
    let deployments: Api<Deployment> = env.api();
    let d = deployments
        .get(&format!("{name}-worker"))
        .await
        .expect("worker Deployment");
    let owner = &d
        .metadata
        .owner_references
        .clone()
        .expect("owner references")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Realm", name, Some(true))
    );
    assert!(d
        .metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .iter()
        .any(|m| m.manager.as_deref() == Some("pek-operator")
            && m.operation.as_deref() == Some("Apply")));
    let envs: BTreeMap<String, String> = d
        .spec
        .clone()
        .expect("spec")
        .template
        .spec
        .expect("pod")
        .containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect();
    assert_eq!(
        envs.get("PEK_REALM_DISPLAY_NAME").map(String::as_str),
        Some("Lifecycle realm")
    );
    assert_eq!(
        envs.get("PEK_REALM_ADMINS").map(String::as_str),
        Some("AUTHSCH-1,AUTHSCH-2")
    );

    // The realm gets data (what its worker would have written), which a restore must bring
    // back below.
    seed_realm_data(&env, name, &id).await;
    let figures = realm_figures(&id).await;
    assert_eq!(figures.get("memberships"), Some(&3), "{figures:?}");

    // Scheduled backups: spec.backup makes the operator own a CronJob (as the chart's
    // ServiceAccount: its RBAC allows it), a changed schedule is applied, and removing
    // spec.backup deletes it.
    let backups_started = Instant::now();
    let cron_jobs: Api<k8s_openapi::api::batch::v1::CronJob> = env.api();
    let backup_name = format!("{name}-backup");
    env.patch_spec(
        name,
        json!({"backup": {"schedule": "0 3 * * *", "retentionDays": 7}}),
    )
    .await;
    let schedule_is = |want: &'static str| {
        let cron_jobs = cron_jobs.clone();
        let backup_name = backup_name.clone();
        async move {
            cron_jobs
                .get_opt(&backup_name)
                .await
                .ok()
                .flatten()
                .filter(|c| c.spec.as_ref().is_some_and(|s| s.schedule == want))
        }
    };
    let cj = wait_for("the backup CronJob", Duration::from_secs(60), || {
        schedule_is("0 3 * * *")
    })
    .await
    .unwrap_or_else(|| panic!("no backup CronJob:\n{}", env.operator_logs()));
    let owner = &cj.metadata.owner_references.clone().expect("owner")[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Realm", name));
    let pod = cj
        .spec
        .clone()
        .expect("spec")
        .job_template
        .spec
        .expect("job")
        .template
        .spec
        .expect("pod");
    assert_eq!(
        pod.containers[0]
            .args
            .clone()
            .unwrap_or_default()
            .last()
            .map(String::as_str),
        Some("7")
    );
    assert_eq!(
        pod.volumes.clone().unwrap_or_default()[0]
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("pek-dumps")
    );
    env.patch_spec(name, json!({"backup": {"schedule": "@daily"}}))
        .await;
    assert!(
        wait_for("the new schedule", Duration::from_secs(60), || {
            schedule_is("@daily")
        })
        .await
        .is_some(),
        "the schedule was not applied:\n{}",
        env.operator_logs()
    );
    env.patch_spec(name, json!({"backup": null})).await;
    let gone = wait_for("the CronJob deleted", Duration::from_secs(60), || async {
        cron_jobs
            .get_opt(&backup_name)
            .await
            .ok()
            .and_then(|c| c.is_none().then_some(()))
    })
    .await;
    assert!(
        gone.is_some(),
        "the CronJob stays:\n{}",
        env.operator_logs()
    );
    say(&format!(
        "e2e: backup CronJob created, updated and deleted in {:?}",
        backups_started.elapsed()
    ));

    // Drift: a deleted Service comes back.
    let services: Api<Service> = env.api();
    services
        .delete(&format!("{name}-worker"), &DeleteParams::default())
        .await
        .expect("delete the Service");
    let back = wait_for("the Service back", Duration::from_secs(60), || async {
        services
            .get_opt(&format!("{name}-worker"))
            .await
            .ok()
            .flatten()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
    })
    .await;
    assert!(
        back.is_some(),
        "the deleted Service was not put back:\n{}",
        env.operator_logs()
    );

    // Suspend: the operator leaves things alone and says so.
    env.patch_spec(name, json!({"suspend": true})).await;
    env.wait_condition(name, "Ready", "False", Some("Suspended"))
        .await;
    env.patch_spec(name, json!({"suspend": false})).await;
    env.wait_condition(name, "Ready", "True", None).await;

    // Deletion with Delete, not confirmed: deregistered, the worker removed, the database and
    // roles kept; the Realm waits and says what to do (condition, Warning Event, and the
    // Deletion column of `kubectl get realms`).
    env.realms()
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete the Realm");
    let r = env
        .wait_condition(name, "Deleting", "True", Some("ConfirmationRequired"))
        .await;
    assert_eq!(
        cond(&r, "Ready").map(|c| c.reason).as_deref(),
        Some("ConfirmationRequired")
    );
    assert!(
        cond(&r, "Deleting")
            .expect("condition")
            .message
            .contains("pek.sch.bme.hu/confirm-delete="),
        "{:?}",
        r.status
    );
    assert!(
        !env.events(name, "DeletionNotConfirmed").await.is_empty(),
        "a Warning Event"
    );
    let row = env.printed(name).await;
    assert_eq!(
        row.get("Deletion").map(String::as_str),
        Some("ConfirmationRequired"),
        "{row:?}"
    );
    assert_eq!(
        row.get("Ready").map(String::as_str),
        Some("False"),
        "{row:?}"
    );
    let removed = wait_for("the worker removed", Duration::from_secs(60), || async {
        deployments
            .get_opt(&format!("{name}-worker"))
            .await
            .ok()
            .and_then(|d| d.is_none().then_some(()))
    })
    .await;
    assert!(
        removed.is_some(),
        "the worker of an unconfirmed deletion stays:\n{}",
        env.operator_logs()
    );
    assert!(!env.registry().await.contains_key(&id));
    assert!(
        database_exists(&db_name(&id)).await,
        "an unconfirmed deletion dropped the database"
    );
    // A few resyncs later it still waits, and the database is still there.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(env.realms().get_opt(name).await.expect("get").is_some());
    assert!(database_exists(&db_name(&id)).await);

    // Confirmed after the delete: dumped, then database and roles dropped, the Realm released.
    env.confirm_delete(name, &id).await;
    env.wait_gone(name).await;
    assert!(!database_exists(&db_name(&id)).await);
    let dumps: Vec<PathBuf> = std::fs::read_dir(env.dir.0.join("dumps"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(dumps.len(), 1, "one dump before the DROP: {dumps:?}");
    let dumped = env.events(name, "DatabaseDumped").await;
    assert!(
        dumped.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.contains(&dumps[0].display().to_string()))),
        "the Event names the dump: {dumped:?}"
    );
    let listed = Command::new(
        localpg::find_bindir()
            .expect("Postgres binaries")
            .join("pg_restore"),
    )
    .arg("--list")
    .arg(&dumps[0])
    .output()
    .expect("pg_restore");
    assert!(listed.status.success(), "not a pg_dump archive: {listed:?}");
    assert_eq!(
        pg_scalar(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1 || '\\_%'",
            &db_name(&id)
        )
        .await,
        0
    );

    // Restore: a new Realm with the same realm id starts from that dump; beside it, one naming
    // a dump that does not exist and one naming a dump of another realm fail clearly, with no
    // worker, and nothing restored.
    let restore_started = Instant::now();
    let file = dumps[0]
        .file_name()
        .and_then(|f| f.to_str())
        .expect("file name")
        .to_string();
    let other = unique("other");
    env.create_realm(
        name,
        &id,
        json!({"database": {"deletionPolicy": "Delete", "restoreFrom": {"dumpFile": file}}}),
    )
    .await;
    env.create_realm(
        "missing",
        &unique("missing"),
        json!({"database": {"restoreFrom": {"dumpFile": "no-such-realm.dump"}}}),
    )
    .await;
    env.create_realm(
        "other",
        &other,
        json!({"database": {"restoreFrom": {"dumpFile": file}}}),
    )
    .await;
    let r = env.wait_condition(name, "Ready", "True", None).await;
    assert_eq!(
        realm_figures(&id).await,
        figures,
        "every row and the semester figure are back"
    );
    assert_eq!(
        pg_scalar(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> $1",
            &format!("{}_owner", db_name(&id))
        )
        .await,
        0,
        "the restored tables belong to the realm's owner role"
    );
    let restored = env.events(name, "DatabaseRestored").await;
    assert_eq!(restored.len(), 1, "{restored:?}");
    let secrets: Api<Secret> = env.api();
    let mark = secrets
        .get(&format!("{name}-db"))
        .await
        .expect("db Secret")
        .annotations()
        .get("pek.sch.bme.hu/restore")
        .cloned();
    assert_eq!(mark, Some(format!("restored {file}")));
    assert_eq!(env.registry().await.get(&id), Some(&env.endpoint(name)));
    assert!(r.status.is_some());

    for (bad, says) in [("missing", "no such dump"), ("other", "is a dump of realm")] {
        let r = env
            .wait_condition(bad, "DatabaseReady", "False", Some("RestoreFailed"))
            .await;
        let message = cond(&r, "DatabaseReady").expect("condition").message;
        assert!(message.contains(says), "{bad}: {message}");
        assert!(
            !env.events(bad, "RestoreFailed").await.is_empty(),
            "{bad}: a Warning Event"
        );
        assert!(
            deployments
                .get_opt(&format!("{bad}-worker"))
                .await
                .expect("get")
                .is_none(),
            "{bad}: no worker before the restore"
        );
    }
    let mut conn = sqlx::PgConnection::connect(&pg().superuser_url(&db_name(&other)))
        .await
        .expect("the refused Realm's database");
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .expect("count");
    let _ = conn.close().await;
    assert_eq!(tables, 0, "nothing of a foreign dump was restored");
    assert!(!env.registry().await.contains_key(&other));
    say(&format!(
        "e2e: re-created from the dump (and two refused) in {:?}",
        restore_started.elapsed()
    ));
}

/// Two Realms with the same realm id (and so the same database), or the same database name:
/// the later one is refused with a Conflict condition and a Warning Event, and the first keeps
/// its passwords, its hub entry and its database — also when the refused one is deleted with
/// `deletionPolicy: Delete`.
#[tokio::test]
async fn duplicate_realm_id_or_database_is_refused() {
    let Some(env) = TestEnv::new("dup", true).await else {
        return;
    };
    let id = unique("dup");
    env.create_realm("first", &id, json!({"worker": {"replicas": 0}}))
        .await;
    env.wait_condition("first", "Registered", "True", None)
        .await;
    env.create_realm(
        "second",
        &id,
        json!({"worker": {"replicas": 0}, "database": {"deletionPolicy": "Delete"}}),
    )
    .await;
    let r = env
        .wait_condition("second", "Conflict", "True", Some("RealmIdInUse"))
        .await;
    assert_eq!(
        cond(&r, "Ready").map(|c| c.reason).as_deref(),
        Some("Conflict")
    );
    assert!(
        !env.events("second", "Conflict").await.is_empty(),
        "a Warning Event"
    );
    // Same database name under another realm id.
    let other = unique("dup-other");
    env.create_realm(
        "third",
        &other,
        json!({"worker": {"replicas": 0}, "database": {"name": db_name(&id), "deletionPolicy": "Delete"}}),
    )
    .await;
    let r = env
        .wait_condition("third", "Conflict", "True", Some("DatabaseInUse"))
        .await;
    assert!(
        cond(&r, "Conflict")
            .expect("condition")
            .message
            .contains("first"),
        "{:?}",
        r.status
    );

    // A few resyncs later, the first Realm's credentials still work and the hub lists it.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        db_secret_works(&env, "first").await,
        "the first Realm's password was reset"
    );
    assert_eq!(env.registry().await.get(&id), Some(&env.endpoint("first")));
    assert!(
        !env.registry().await.contains_key(&other),
        "the refused Realm is not registered"
    );

    // Deleting the refused Realms (deletionPolicy Delete) takes nothing from the first one.
    env.realms()
        .delete("second", &DeleteParams::default())
        .await
        .expect("delete");
    env.realms()
        .delete("third", &DeleteParams::default())
        .await
        .expect("delete");
    env.wait_gone("second").await;
    env.wait_gone("third").await;
    assert!(
        database_exists(&db_name(&id)).await,
        "the first Realm's database was dropped"
    );
    assert!(db_secret_works(&env, "first").await);
    assert_eq!(env.registry().await.get(&id), Some(&env.endpoint("first")));
    let r = env
        .wait_condition("first", "DatabaseReady", "True", None)
        .await;
    assert!(cond(&r, "Conflict").is_none());
}

/// Two installations sharing one hub, each watching its own namespace, so neither sees the
/// other's Realm: the hub's registry records the owning Realm's uid and refuses the second
/// Realm's registration (`Conflict`, reason `RegistrationInUse`), the first stays registered,
/// and deleting the second (deletionPolicy Delete) drops only its own database and leaves the
/// first Realm's hub entry alone.
#[tokio::test]
async fn a_duplicate_realm_id_another_operator_watches_is_refused_by_the_hub() {
    let Some(env) = TestEnv::new("hubown", true).await else {
        return;
    };
    let other = env.sibling("b", true).await;
    let id = unique("hubown");
    let first = env
        .create_realm("first", &id, json!({"worker": {"replicas": 0}}))
        .await;
    env.wait_condition("first", "Registered", "True", None)
        .await;
    assert_eq!(env.registry_owner(&id).await, first.metadata.uid);
    let second_db = format!("{}_b", db_name(&id));
    other
        .create_realm(
            "second",
            &id,
            json!({"worker": {"replicas": 0},
                   "database": {"name": second_db, "deletionPolicy": "Delete"}}),
        )
        .await;
    let r = other
        .wait_condition("second", "Conflict", "True", Some("RegistrationInUse"))
        .await;
    let message = cond(&r, "Conflict").expect("condition").message;
    assert!(
        first
            .metadata
            .uid
            .as_deref()
            .is_some_and(|uid| message.contains(uid)),
        "{message}"
    );
    assert_eq!(env.registry().await.get(&id), Some(&env.endpoint("first")));
    assert_eq!(env.registry_owner(&id).await, first.metadata.uid);

    other.confirm_delete("second", &id).await;
    other
        .realms()
        .delete("second", &DeleteParams::default())
        .await
        .expect("delete");
    other.wait_gone("second").await;
    assert!(
        !database_exists(&second_db).await,
        "its own database is dropped"
    );
    assert!(database_exists(&db_name(&id)).await);
    assert_eq!(env.registry().await.get(&id), Some(&env.endpoint("first")));
    assert_eq!(env.registry_owner(&id).await, first.metadata.uid);
}

/// Two operators on one Lease: only the holder reconciles; SIGTERM makes it release the Lease
/// and exit cleanly, and the standby takes over well within the lease duration (15 s).
#[tokio::test]
async fn leader_election_and_sigterm_takeover() {
    let Some(mut env) = TestEnv::new("lead", false).await else {
        return;
    };
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), RELEASE_NS);
    let lease = format!("lease-{}", env.ns);
    let holder = |leases: Api<Lease>, lease: String| async move {
        leases
            .get_opt(&lease)
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity)
    };
    env.start_operator("op-a", &[]);
    let a = wait_for("op-a to lead", Duration::from_secs(30), || async {
        holder(leases.clone(), lease.clone())
            .await
            .filter(|h| h == "op-a")
    })
    .await;
    assert!(
        a.is_some(),
        "op-a never took the Lease:\n{}",
        env.operator_logs()
    );
    env.start_operator("op-b", &[]);
    let id = unique("lead");
    env.create_realm("lead-one", &id, json!({"worker": {"replicas": 0}}))
        .await;
    env.wait_condition("lead-one", "Registered", "True", None)
        .await;
    assert!(env.operators[0].logs().contains("became leader"));
    assert!(
        !env.operators[1].logs().contains("became leader"),
        "the standby reconciles too:\n{}",
        env.operators[1].logs()
    );

    env.operators[0].signal("-TERM");
    let terminated = Instant::now();
    let status = env.operators[0].exited(Duration::from_secs(10)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "op-a did not exit cleanly on SIGTERM ({status:?}):\n{}",
        env.operators[0].logs()
    );
    let b = wait_for("op-b to lead", Duration::from_secs(30), || async {
        holder(leases.clone(), lease.clone())
            .await
            .filter(|h| h == "op-b")
    })
    .await;
    assert!(
        b.is_some(),
        "op-b never took over:\n{}",
        env.operator_logs()
    );
    let takeover = terminated.elapsed();
    assert!(
        takeover < Duration::from_secs(10),
        "takeover took {takeover:?}: the Lease was not released"
    );
    env.create_realm(
        "lead-two",
        &unique("lead-two"),
        json!({"worker": {"replicas": 0}}),
    )
    .await;
    env.wait_condition("lead-two", "Registered", "True", None)
        .await;
    say(&format!("e2e: SIGTERM takeover in {takeover:?}"));
}

fn worker_container(d: &Deployment) -> k8s_openapi::api::core::v1::Container {
    d.spec
        .clone()
        .expect("spec")
        .template
        .spec
        .expect("pod spec")
        .containers[0]
        .clone()
}

/// When the operator's field manager last changed the object (not its status).
fn operator_writes(d: &Deployment) -> Vec<Option<String>> {
    d.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some("pek-operator") && m.subresource.is_none())
        .map(|m| m.time.as_ref().map(|t| t.0.to_string()))
        .collect()
}

/// Quantities written non-canonically (`0.5` CPU, `1024Mi`) cause no writes on later
/// reconciles; removing a field from the spec (a memory limit) is applied; an operator
/// restarted without a federation secret removes the hub-token mount it had added.
#[tokio::test]
async fn quantities_are_stable_and_removed_fields_are_applied() {
    let Some(mut env) = TestEnv::new("fields", false).await else {
        return;
    };
    let fed = env
        .dir
        .write("federation-secret", "e2e-federation-secret-0123456789")
        .expect("federation secret file");
    let fed = fed.to_string_lossy().into_owned();
    env.start_operator("op-fed", &[("PEK_FEDERATION_SECRET_FILE", &fed)]);
    let id = unique("fields");
    env.create_realm(
        "fields",
        &id,
        json!({"worker": {"replicas": 0, "resources": {
            "requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"memory": "1024Mi"}}}}),
    )
    .await;
    env.wait_condition("fields", "Registered", "True", None)
        .await;
    let deployments: Api<Deployment> = env.api();
    let before = deployments.get("fields-worker").await.expect("Deployment");
    let c = worker_container(&before);
    assert!(c
        .volume_mounts
        .unwrap_or_default()
        .iter()
        .any(|m| m.name == "hub-token"));
    // A few reconciles (each Realm update triggers one): nothing is written again.
    for i in 0..3 {
        env.realms()
            .patch(
                "fields",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"e2e/poke": i.to_string()}}})),
            )
            .await
            .expect("poke");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = deployments.get("fields-worker").await.expect("Deployment");
    // The Deployment controller writes its status meanwhile (a new resourceVersion), so
    // what is compared is the spec's generation and the operator's own field-manager entry,
    // whose time moves only when an apply of the operator changed something.
    assert_eq!(
        (after.metadata.generation, operator_writes(&after)),
        (before.metadata.generation, operator_writes(&before)),
        "the Deployment was written again with equal quantities"
    );
    assert!(env.events("fields", "DeploymentUpdated").await.is_empty());

    // Remove the memory limit: the Deployment loses it.
    env.realms()
        .patch(
            "fields",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"worker": {"resources": {"limits": null}}}})),
        )
        .await
        .expect("remove the limit");
    let gone = wait_for("the limit removed", Duration::from_secs(30), || async {
        let d = deployments.get("fields-worker").await.ok()?;
        let r = worker_container(&d).resources.unwrap_or_default();
        r.limits.is_none_or(|l| l.is_empty()).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "the removed memory limit is still on the Deployment:\n{}",
        env.operator_logs()
    );

    // The operator restarted without a federation secret: the hub-token mount goes away.
    env.operators[0].signal("-TERM");
    env.operators[0].exited(Duration::from_secs(10)).await;
    env.start_operator("op-nofed", &[]);
    let unmounted = wait_for(
        "the hub-token mount removed",
        Duration::from_secs(30),
        || async {
            let d = deployments.get("fields-worker").await.ok()?;
            let c = worker_container(&d);
            let mounted = c
                .volume_mounts
                .unwrap_or_default()
                .iter()
                .any(|m| m.name == "hub-token");
            let env_set = c
                .env
                .unwrap_or_default()
                .iter()
                .any(|e| e.name == "PEK_HUB_TOKEN_FILE");
            (!mounted && !env_set).then_some(())
        },
    )
    .await;
    assert!(
        unmounted.is_some(),
        "the hub-token mount stayed:\n{}",
        env.operator_logs()
    );
}

/// Retain keeps the database (and deregisters); a Realm re-created with the same realm id takes
/// the retained database over and finds its data.
#[tokio::test]
async fn retain_keeps_the_database_and_a_new_realm_takes_it_over() {
    let Some(env) = TestEnv::new("retain", true).await else {
        return;
    };
    let id = unique("retain");
    env.create_realm("keep", &id, json!({"worker": {"replicas": 0}}))
        .await;
    env.wait_condition("keep", "DatabaseReady", "True", None)
        .await;
    env.wait_condition("keep", "Registered", "True", None).await;
    // Data in the realm's database, written as its owner role.
    let secrets: Api<Secret> = env.api();
    let s = secrets.get("keep-db").await.expect("db Secret");
    let owner_url =
        String::from_utf8(s.data.expect("data")["MIGRATION_DATABASE_URL"].0.clone()).expect("utf8");
    let mut conn = sqlx::PgConnection::connect(&owner_url)
        .await
        .expect("owner logs in");
    sqlx::raw_sql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('data')")
        .execute(&mut conn)
        .await
        .expect("write data");
    let _ = conn.close().await;
    env.realms()
        .delete("keep", &DeleteParams::default())
        .await
        .expect("delete");
    env.wait_gone("keep").await;
    assert!(
        database_exists(&db_name(&id)).await,
        "Retain dropped the database"
    );
    assert!(!env.registry().await.contains_key(&id), "still registered");

    env.create_realm("again", &id, json!({"worker": {"replicas": 0}}))
        .await;
    let r = env
        .wait_condition("again", "Registered", "True", None)
        .await;
    assert!(cond(&r, "Conflict").is_none(), "{:?}", r.status);
    let s = secrets.get("again-db").await.expect("db Secret");
    let owner_url =
        String::from_utf8(s.data.expect("data")["MIGRATION_DATABASE_URL"].0.clone()).expect("utf8");
    let mut conn = sqlx::PgConnection::connect(&owner_url)
        .await
        .expect("the new Realm's owner password works");
    let v: String = sqlx::query_scalar("SELECT v FROM kept")
        .fetch_one(&mut conn)
        .await
        .expect("the data survived");
    assert_eq!(v, "data");
    let _ = conn.close().await;
    assert_eq!(env.registry().await.get(&id), Some(&env.endpoint("again")));
}

/// A missing admin Secret, a wrong admin password and a hub that is down show as conditions;
/// Realms that never got a database are deleted whatever the database error.
#[tokio::test]
async fn failures_are_conditions_and_unprovisioned_realms_delete() {
    let Some(mut env) = TestEnv::new("fail", true).await else {
        return;
    };
    env.create_realm(
        "nosecret",
        &unique("nosecret"),
        json!({"database": {"adminSecretRef": {"name": "does-not-exist"}, "deletionPolicy": "Delete"}}),
    )
    .await;
    let wrong =
        pg().superuser_url("postgres")
            .replacen(pg().superuser_password(), "wrong-password", 1);
    env.secret("pg-wrong", &wrong).await;
    env.create_realm(
        "wrongpw",
        &unique("wrongpw"),
        json!({"database": {"adminSecretRef": {"name": "pg-wrong"}, "deletionPolicy": "Delete"}}),
    )
    .await;
    env.secret("pg-down", "postgres://postgres:x@127.0.0.1:1/postgres")
        .await;
    env.create_realm(
        "pgdown",
        &unique("pgdown"),
        json!({"database": {"adminSecretRef": {"name": "pg-down"}, "deletionPolicy": "Delete"}}),
    )
    .await;
    env.wait_condition(
        "nosecret",
        "DatabaseReady",
        "False",
        Some("AdminSecretNotFound"),
    )
    .await;
    let r = env
        .wait_condition("wrongpw", "DatabaseReady", "False", Some("DatabaseError"))
        .await;
    let msg = cond(&r, "DatabaseReady").expect("condition").message;
    assert!(msg.contains("password authentication failed"), "{msg}");
    let r = env
        .wait_condition("pgdown", "DatabaseReady", "False", Some("DatabaseError"))
        .await;
    let msg = cond(&r, "DatabaseReady").expect("condition").message;
    assert!(
        msg.to_lowercase().contains("refused"),
        "the cause is shown: {msg}"
    );
    for name in ["nosecret", "wrongpw", "pgdown"] {
        env.realms()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    for name in ["nosecret", "wrongpw", "pgdown"] {
        env.wait_gone(name).await;
    }

    // The hub goes down: Registered=False with the reason; back up, registered again.
    // (An operator whose hub URL answers nothing; the first one hands over its Lease.)
    let id = unique("hubdown");
    env.operators[0].signal("-TERM");
    env.operators[0].exited(Duration::from_secs(10)).await;
    let dead_hub = format!("http://127.0.0.1:{}", free_port().expect("port"));
    env.start_operator("op-hubdown", &[("PEK_HUB_URL", &dead_hub)]);
    env.create_realm("hubdown", &id, json!({"worker": {"replicas": 0}}))
        .await;
    let r = env
        .wait_condition("hubdown", "Registered", "False", Some("HubError"))
        .await;
    assert!(cond(&r, "DatabaseReady").is_some_and(|c| c.status == "True"));
    let msg = cond(&r, "Registered").expect("condition").message;
    assert!(
        msg.contains("refused") || msg.contains("connect"),
        "the cause is shown: {msg}"
    );
}

/// The retry backoff grows with the time a Realm has been failing, not with the number of its
/// failed reconciles: after a hub outage of 15 s (many failed reconciles, some started by the
/// Realm's own changes) the Realm is registered within seconds of the hub coming back.
#[tokio::test]
async fn a_realm_recovers_within_seconds_of_a_hub_outage() {
    let Some(mut env) = TestEnv::new("outage", false).await else {
        return;
    };
    let switch = HubSwitch::start(&env.hub.url).await;
    switch.set_down(true);
    let hub_url = switch.url.clone();
    env.start_operator("op-1", &[("PEK_HUB_URL", &hub_url)]);
    let id = unique("outage");
    env.create_realm("outage", &id, json!({"worker": {"replicas": 0}}))
        .await;
    env.wait_condition("outage", "Registered", "False", Some("HubError"))
        .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    switch.set_down(false);
    let back = Instant::now();
    env.wait_condition("outage", "Registered", "True", None)
        .await;
    let took = back.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "registered {took:?} after the hub came back:\n{}",
        env.operator_logs()
    );
    assert_eq!(env.registry().await.get(&id), Some(&env.endpoint("outage")));
}

/// The CRD's schema and CEL rules, as the API server applies them (server-side dry-run).
#[tokio::test]
async fn crd_rules_hold_on_the_api_server() {
    let Some(env) = TestEnv::new("cel", false).await else {
        return;
    };
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let realm = |name: &str, spec: Value| -> Realm {
        let mut base =
            json!({"realmId": "kszk", "database": {"adminSecretRef": {"name": ADMIN_SECRET}}});
        merge(&mut base, spec);
        serde_json::from_value(json!({
            "apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
            "metadata": {"name": name}, "spec": base
        }))
        .expect("realm")
    };
    let realms = env.realms();
    realms
        .create(&dry, &realm("ok", json!({"admins": ["a-1", "b-2"]})))
        .await
        .expect("a valid Realm is accepted");
    for (spec, want) in [
        (json!({"realmId": "hub"}), "reserved"),
        (json!({"realmId": "Bad_Id"}), "realmId must be"),
        (
            json!({"database": {"name": "Bad-Name"}}),
            "database.name must be",
        ),
        (json!({"admins": ["a,b"]}), "admins must be AuthSCH ids"),
        (json!({"admins": ["a", "a"]}), "Duplicate value"),
        (json!({"worker": {"replicas": -1}}), "replicas"),
    ] {
        let err = realms
            .create(&dry, &realm("bad", spec.clone()))
            .await
            .expect_err(&format!("{spec} must be refused"));
        assert!(err.to_string().contains(want), "{spec}: {err}");
    }
    // Immutable fields, on a real (not dry-run) object.
    realms
        .create(
            &PostParams::default(),
            &realm("imm", json!({"database": {"name": "pek_imm"}})),
        )
        .await
        .expect("create");
    for (patch, want) in [
        (
            json!({"spec": {"realmId": "other"}}),
            "realmId is immutable",
        ),
        (
            json!({"spec": {"database": {"name": "pek_other"}}}),
            "database.name is immutable",
        ),
    ] {
        let err = realms
            .patch("imm", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect_err("immutable");
        assert!(err.to_string().contains(want), "{patch}: {err}");
    }
    // worker.resources.claims is not part of the schema: pruned, never stored.
    let r = realms
        .create(
            &dry,
            &serde_json::from_value::<Realm>(json!({
                "apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
                "metadata": {"name": "claims"},
                "spec": {"realmId": "claims", "database": {"adminSecretRef": {"name": "x"}},
                         "worker": {"resources": {"claims": [{"name": "gpu"}]}}}
            }))
            .expect("realm"),
        )
        .await
        .expect("accepted with the field pruned");
    assert!(r.spec.worker.resources.and_then(|r| r.claims).is_none());
}

/// `helm uninstall` with a Realm left behind: the Postgres admin Secret is kept, so the Realm
/// (deletionPolicy Delete) can still be deleted and its database dropped.
#[tokio::test]
async fn helm_uninstall_keeps_the_admin_secret_for_remaining_realms() {
    let Some(env) = TestEnv::new("uninst", true).await else {
        return;
    };
    let release = format!("un{}", std::process::id());
    let chart = workspace_root().join("charts/pek-hub");
    let uri = pg().superuser_url("postgres");
    run(Command::new(helm())
        .args(["install", &release])
        .arg(&chart)
        .args(["--namespace", &env.ns])
        .args(["--set", "operator.replicas=0", "--set", "hub.replicas=0"])
        .args(["--set", "hub.database.url=postgres://a:b@h:5432/d"])
        .args(["--set", "hub.database.migrationUrl=postgres://a:b@h:5432/d"])
        .args(["--set", &format!("postgresAdmin.uri={uri}")]));
    let notes = run(Command::new(helm()).args(["get", "notes", &release, "--namespace", &env.ns]));
    assert!(
        notes.contains("Before `helm uninstall`, delete the Realms"),
        "{notes}"
    );
    let admin = format!("{release}-pek-hub-postgres-admin");
    let id = unique("uninst");
    env.create_realm(
        "left",
        &id,
        json!({"worker": {"replicas": 0}, "database": {"adminSecretRef": {"name": admin}, "deletionPolicy": "Delete"}}),
    )
    .await;
    env.wait_condition("left", "DatabaseReady", "True", None)
        .await;
    run(Command::new(helm()).args(["uninstall", &release, "--namespace", &env.ns]));
    env.confirm_delete("left", &id).await;
    let secrets: Api<Secret> = env.api();
    assert!(
        secrets.get_opt(&admin).await.expect("get").is_some(),
        "helm uninstall removed the Postgres admin Secret"
    );
    env.realms()
        .delete("left", &DeleteParams::default())
        .await
        .expect("delete");
    env.wait_gone("left").await;
    assert!(
        !database_exists(&db_name(&id)).await,
        "the database was not dropped"
    );
    // Cluster-scoped leftovers of the release (its namespaced ones go with the namespace).
    let _ = Command::new(helm())
        .args(["uninstall", &release, "--namespace", &env.ns])
        .output();
}

/// The `DATABASE_URL` of Realm `name`'s `<name>-db` Secret.
async fn db_secret_url(env: &TestEnv, name: &str) -> String {
    let secrets: Api<Secret> = env.api();
    let s = secrets.get(&format!("{name}-db")).await.expect("db Secret");
    String::from_utf8(s.data.expect("data")["DATABASE_URL"].0.clone()).expect("utf8")
}

/// Credential rotation on the real API server, with the Deployment controller rolling the
/// worker (pods made Ready by the kubelet stand-in): the annotation switches the Secret to the
/// other login while the old one still works; the old login is disabled only after the
/// rollout completed and the old pods' grace period passed; Events and status say so.
#[tokio::test]
async fn credentials_rotate_on_demand_after_the_rollout() {
    let Some(env) = TestEnv::new("rot", true).await else {
        return;
    };
    let _kubelet = KubeletStandIn::start(&env.client, &env.ns);
    let id = unique("rot");
    let name = "rot";
    env.create_realm(name, &id, json!({})).await;
    let r = env.wait_condition(name, "Ready", "True", None).await;
    let app = format!("{}_app", db_name(&id));
    assert_eq!(
        r.status.and_then(|s| s.database_user).as_deref(),
        Some(app.as_str())
    );
    let old_url = db_secret_url(&env, name).await;
    let started = Instant::now();
    env.realms()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                (pek_crds::ROTATE_CREDENTIALS_ANNOTATION): "e2e-1"}}})),
        )
        .await
        .expect("annotate the Realm");
    let next = format!("{app}_a");
    let realms = env.realms();
    let switched = wait_for("the switch", Duration::from_secs(60), || async {
        realms.get(name).await.ok().filter(|r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.database_user.as_deref() == Some(next.as_str()))
        })
    })
    .await
    .unwrap_or_else(|| panic!("no switch; operator log:\n{}", env.operator_logs()));
    let status = switched.status.expect("status");
    assert!(status.credentials_rotated_at.is_some());
    let new_url = db_secret_url(&env, name).await;
    assert_ne!(new_url, old_url);
    assert!(sqlx::PgConnection::connect(&new_url).await.is_ok());
    // Until every pod uses the new login, the old one works (a pod of the old ReplicaSet may
    // be serving with it).
    if status.retiring_database_user.is_some() {
        assert!(
            sqlx::PgConnection::connect(&old_url).await.is_ok(),
            "the old login must work while the pods move"
        );
    }
    let retired = wait_for(
        "the old login retired",
        Duration::from_secs(180),
        || async {
            realms.get(name).await.ok().filter(|r| {
                r.status.as_ref().is_some_and(|s| {
                    s.database_user.as_deref() == Some(next.as_str())
                        && s.retiring_database_user.is_none()
                })
            })
        },
    )
    .await;
    assert!(
        retired.is_some(),
        "the old login was never retired; operator log:\n{}",
        env.operator_logs()
    );
    // Not before the Deployment's rollout completed and old pods' grace period passed.
    assert!(
        started.elapsed() >= Duration::from_secs(25),
        "retired after {:?}",
        started.elapsed()
    );
    let deployments: Api<Deployment> = env.api();
    let d = deployments
        .get(&format!("{name}-worker"))
        .await
        .expect("deployment");
    let ds = d.status.expect("deployment status");
    assert_eq!(ds.updated_replicas, Some(1));
    assert_eq!(ds.replicas, Some(1));
    assert!(sqlx::PgConnection::connect(&old_url).await.is_err());
    assert!(sqlx::PgConnection::connect(&new_url).await.is_ok());
    assert_eq!(env.events(name, "CredentialsRotating").await.len(), 1);
    assert_eq!(env.events(name, "CredentialsRotated").await.len(), 1);
}
