//! End-to-end against whatever cluster KUBECONFIG points to, with the pek-hub chart installed
//! (tests/e2e/kind.sh sets one up). Standard Kubernetes APIs only. When no cluster answers the
//! tests print a loud SKIPPED line and return.
//!
//! Environment: PEK_E2E_NAMESPACE (default pek-system), PEK_E2E_ADMIN_SECRET (default
//! pek-pek-hub-postgres-admin).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use pek_crds::Realm;
use serde_json::json;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A client for a cluster that answers and has the Realm CRD, or None after a loud SKIPPED line.
async fn cluster() -> Option<Client> {
    let skip = |why: String| {
        // Written to the real stderr (not eprintln!, which the test harness captures), so the
        // skip is visible in every `cargo test` run.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: no Kubernetes cluster reachable ({why}) ***\n"
        );
        None
    };
    let client = match tokio::time::timeout(Duration::from_secs(10), Client::try_default()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return skip(format!("no kubeconfig: {e}")),
        Err(_) => return skip("timed out loading the kubeconfig".into()),
    };
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return skip(format!("API server did not answer: {e}")),
        Err(_) => return skip("API server did not answer within 10 s".into()),
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    if crds
        .get_opt("realms.pek.sch.bme.hu")
        .await
        .ok()
        .flatten()
        .is_none()
    {
        panic!("a cluster answers but the Realm CRD is not installed: run `helm install pek charts/pek-hub ...` first (see tests/e2e/kind.sh)");
    }
    Some(client)
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn condition(realm: &Realm, type_: &str) -> Option<String> {
    realm
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

#[tokio::test]
async fn realm_lifecycle_on_a_real_cluster() {
    let Some(client) = cluster().await else {
        return;
    };
    let ns = env("PEK_E2E_NAMESPACE", "pek-system");
    let admin = env("PEK_E2E_ADMIN_SECRET", "pek-pek-hub-postgres-admin");
    let realms: Api<Realm> = Api::namespaced(client.clone(), &ns);
    let name = format!("e2e-{}", std::process::id());
    let realm: Realm = serde_json::from_value(json!({
        "apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
        "metadata": {"name": name},
        "spec": {"realmId": name, "displayName": "e2e realm",
                 "database": {"adminSecretRef": {"name": admin}, "deletionPolicy": "Delete"}}
    }))
    .expect("realm");
    realms
        .create(&PostParams::default(), &realm)
        .await
        .expect("create Realm");

    wait_for(
        "the Realm to be Ready",
        Duration::from_secs(300),
        || async {
            realms
                .get(&name)
                .await
                .ok()
                .and_then(|r| condition(&r, "Ready"))
                .as_deref()
                == Some("True")
        },
    )
    .await;
    let r = realms.get(&name).await.expect("realm");
    let status = r.status.clone().expect("status");
    assert_eq!(status.observed_generation, r.metadata.generation);
    assert_eq!(condition(&r, "Registered").as_deref(), Some("True"));
    assert_eq!(condition(&r, "DatabaseReady").as_deref(), Some("True"));
    assert_eq!(
        status.endpoint,
        Some(format!("http://{name}-worker.{ns}.svc:8080"))
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let db = secrets.get(&format!("{name}-db")).await.expect("db Secret");
    let data = db.data.expect("data");
    assert!(data.contains_key("DATABASE_URL") && data.contains_key("MIGRATION_DATABASE_URL"));

    // Drift: a deleted Service comes back.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .delete(&format!("{name}-worker"), &DeleteParams::default())
        .await
        .expect("delete svc");
    wait_for(
        "the worker Service to come back",
        Duration::from_secs(120),
        || async {
            services
                .get_opt(&format!("{name}-worker"))
                .await
                .ok()
                .flatten()
                .is_some_and(|s| s.metadata.deletion_timestamp.is_none())
        },
    )
    .await;

    // Invalid specs are refused by the CRD's CEL rules.
    let mut bad = realm.clone();
    bad.metadata.name = Some(format!("{name}-bad"));
    bad.spec.realm_id = "hub".into();
    let err = realms
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("hub is reserved");
    assert!(err.to_string().contains("reserved"), "{err}");
    let mut changed = realms.get(&name).await.expect("realm");
    changed.spec.realm_id = format!("{name}-x");
    let err = realms
        .replace(&name, &PostParams::default(), &changed)
        .await
        .expect_err("immutable");
    assert!(err.to_string().contains("immutable"), "{err}");

    // Deletion: the finalizer deregisters and drops; the children are garbage-collected.
    realms
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("the Realm to be gone", Duration::from_secs(180), || async {
        realms.get_opt(&name).await.ok().flatten().is_none()
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    wait_for(
        "the worker Deployment to be collected",
        Duration::from_secs(120),
        || async {
            deployments
                .get_opt(&format!("{name}-worker"))
                .await
                .ok()
                .flatten()
                .is_none()
        },
    )
    .await;
}

#[tokio::test]
async fn missing_admin_secret_shows_as_a_condition() {
    let Some(client) = cluster().await else {
        return;
    };
    let ns = env("PEK_E2E_NAMESPACE", "pek-system");
    let realms: Api<Realm> = Api::namespaced(client, &ns);
    let name = format!("e2e-nosecret-{}", std::process::id());
    let realm: Realm = serde_json::from_value(json!({
        "apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
        "metadata": {"name": name},
        "spec": {"realmId": name, "database": {"adminSecretRef": {"name": "does-not-exist"}}}
    }))
    .expect("realm");
    realms
        .create(&PostParams::default(), &realm)
        .await
        .expect("create");
    wait_for(
        "DatabaseReady=False/AdminSecretNotFound",
        Duration::from_secs(120),
        || async {
            realms
                .get(&name)
                .await
                .ok()
                .and_then(|r| {
                    r.status?
                        .conditions
                        .into_iter()
                        .find(|c| c.type_ == "DatabaseReady" && c.reason == "AdminSecretNotFound")
                })
                .is_some()
        },
    )
    .await;
    realms
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("the Realm to be gone", Duration::from_secs(120), || async {
        realms.get_opt(&name).await.ok().flatten().is_none()
    })
    .await;
}
