//! `pek-operator run`: health/metrics server, leader election on a Lease, and the controller.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::{self, reflector};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use pek_crds::Realm;
use tracing::{error, info, warn};

use crate::cache::{slim_realm, watch, Caches};
use crate::config::RunArgs;
use crate::events::Publisher;
use crate::hub::HttpHub;
use crate::metrics::Metrics;
use crate::reconcile::desired::MANAGED_BY;
use crate::reconcile::{error_policy, reconcile, Context};

/// Events sent at once in the background.
const EVENTS_IN_FLIGHT: usize = 16;

/// Reconcile requests for one Realm that arrive within this time of each other make one
/// reconcile: creating a Realm's children and writing its status start a burst of watch events
/// about it, and each would otherwise be a reconcile of its own.
const DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(500);

/// Health state shared with the HTTP server.
#[derive(Clone, Default)]
pub(crate) struct Health {
    /// The Kubernetes API answered at start-up.
    pub(crate) api_ok: Arc<AtomicBool>,
    /// This replica holds the Lease and runs the controller.
    pub(crate) leader: Arc<AtomicBool>,
    pub(crate) metrics: Metrics,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if h.api_ok.load(Ordering::Relaxed) {
        let role = if h.leader.load(Ordering::Relaxed) {
            "leader"
        } else {
            "standby"
        };
        (StatusCode::OK, role.to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Kubernetes API not reached yet".to_string(),
        )
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.encode(),
    )
}

/// The health and metrics routes.
pub(crate) fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

/// Resolves on SIGTERM (what Kubernetes sends on every rollout and pod deletion) or SIGINT
/// (Ctrl-C), so the leader shuts down cleanly and releases its Lease either way.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the operator cleanly");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the operator until a signal arrives or leadership is lost.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = args.config().map_err(anyhow::Error::msg)?;
    let metrics = Metrics::default();
    let health = Health {
        metrics: metrics.clone(),
        ..Default::default()
    };
    let addr: SocketAddr = args.listen.parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    info!(%addr, "serving /healthz, /readyz, /metrics");
    let app = router(health.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = Client::try_default().await?;
    client.apiserver_version().await?;
    health.api_ok.store(true, Ordering::Relaxed);

    let identity = args
        .pod_name
        .clone()
        .unwrap_or_else(|| format!("pek-operator-{}", std::process::id()));
    // One listener for SIGTERM/SIGINT for the whole run, so no signal falls between two.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    info!(lease = %args.lease_name, %identity, "waiting to become leader");
    // The lease manager's standby trusts its cached copy of the Lease until the holder's lease
    // would expire, so a holder that released the Lease on shutdown would still be replaced
    // only a whole lease duration later. A fresh manager every 2 s reads the Lease anew and
    // takes a released one at once.
    let leases = loop {
        let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&args.pod_namespace)
            .with_identity(&identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await?;
        let changed = tokio::select! {
            r = manager.changed() => Some(r),
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => None,
            _ = stopped(stop.clone()) => { return Ok(()); }
        };
        if let Some(r) = changed {
            if r? {
                break manager;
            }
        }
    };
    let (leader, lease_task) = leases.watch().await;
    health.leader.store(true, Ordering::Relaxed);
    info!("became leader; starting the Realm controller");

    let hub = Arc::new(HttpHub::new(&config.hub_url, args.hub_token_file.clone())?);
    let mut ctx = Context::new(client.clone(), config, hub, metrics);
    ctx.events = Publisher::new(client.clone()).in_background(EVENTS_IN_FLIGHT);
    let ctx = Arc::new(ctx);
    let realms: Api<Realm> = match &args.watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    fn owned<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let ours = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let ns = &args.watch_namespace;
    let mut lost = leader.clone();
    let (secrets, secret_events) = watch(owned::<Secret>(&client, ns), ours.clone());
    let (service_accounts, sa_events) = watch(owned::<ServiceAccount>(&client, ns), ours.clone());
    let (services, service_events) = watch(owned::<Service>(&client, ns), ours.clone());
    let (deployments, deployment_events) = watch(owned::<Deployment>(&client, ns), ours.clone());
    let (network_policies, netpol_events) =
        watch(owned::<NetworkPolicy>(&client, ns), ours.clone());
    let (pod_disruption_budgets, pdb_events) =
        watch(owned::<PodDisruptionBudget>(&client, ns), ours.clone());
    let (cron_jobs, cron_job_events) = watch(owned::<CronJob>(&client, ns), ours);
    ctx.set_caches(Caches {
        secrets,
        service_accounts,
        services,
        deployments,
        network_policies,
        pod_disruption_budgets,
        cron_jobs,
    });
    // The Controller's own Realm watch, but with the cached Realms slimmed.
    let (realm_store, realm_writer) = reflector::store();
    let realm_events = reflector(
        realm_writer,
        watcher(realms, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(slim_realm),
    )
    .applied_objects();
    ctx.set_realm_store(realm_store.clone());
    let controller = Controller::for_stream(realm_events, realm_store)
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(args.concurrency.max(1))
                .debounce(DEBOUNCE),
        )
        .owns_stream(secret_events)
        .owns_stream(sa_events)
        .owns_stream(service_events)
        .owns_stream(deployment_events)
        .owns_stream(netpol_events)
        .owns_stream(pdb_events)
        .owns_stream(cron_job_events)
        .graceful_shutdown_on(async move {
            tokio::select! {
                _ = stopped(stop) => info!("signal received; shutting down"),
                _ = lost.wait_for(|l| !*l) => warn!("leadership lost; shutting down"),
            }
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(realm = %obj, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        });
    controller.await;
    let still_leader = *leader.borrow();
    drop(leader);
    if let Ok(Ok(manager)) = lease_task.await {
        if let Err(e) = manager.release().await {
            warn!(error = %e, "could not release the Lease");
        }
    }
    server.abort();
    if !still_leader {
        error!("exiting after losing leadership so the pod restarts as a standby");
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(health: &Health, path: &str) -> (StatusCode, String) {
        let resp = router(health.clone())
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_readiness_and_metrics_routes() {
        let health = Health::default();
        assert_eq!(get(&health, "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get(&health, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.api_ok.store(true, Ordering::Relaxed);
        assert_eq!(
            get(&health, "/readyz").await,
            (StatusCode::OK, "standby".into())
        );
        health.leader.store(true, Ordering::Relaxed);
        assert_eq!(get(&health, "/readyz").await.1, "leader");
        health.metrics.error("HubError");
        let (status, text) = get(&health, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            text.contains("pek_operator_reconcile_errors_total{reason=\"HubError\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pek_operator_reconcile_duration_seconds_bucket"),
            "{text}"
        );
    }
}
