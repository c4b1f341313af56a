//! The worker's JWKS cache against a JWKS server that counts its requests: unknown key
//! ids trigger at most one refetch per bound, concurrent misses share one fetch, and the
//! cached keys keep working when the server fails.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pek::auth::{KeyRing, Signer, Verifier};
use uuid::Uuid;

#[derive(Clone)]
struct Server {
    hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    jwks: Arc<Mutex<serde_json::Value>>,
}

async fn serve(s: Server) -> String {
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let s = s.clone();
            async move {
                s.hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                if s.down.load(Ordering::SeqCst) {
                    return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                }
                Ok(axum::Json(s.jwks.lock().unwrap().clone()))
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.well-known/jwks.json", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

#[tokio::test]
async fn unknown_kids_refetch_once_per_bound_and_cached_keys_survive_outages() {
    let a = Signer::generate("pek-hub", "pek").unwrap();
    let b = Signer::generate("pek-hub", "pek").unwrap();
    let ring_a = KeyRing::from_signers(vec![Signer::all_from_pem(
        &a.private_pem(),
        "pek-hub",
        "pek",
    )
    .unwrap()
    .remove(0)])
    .unwrap();
    let s = Server {
        hits: Arc::new(AtomicUsize::new(0)),
        down: Arc::new(AtomicBool::new(false)),
        jwks: Arc::new(Mutex::new(ring_a.jwks())),
    };
    let url = serve(s.clone()).await;
    let v = Arc::new(
        Verifier::without_keys("pek-hub", "pek")
            .with_jwks(&url, Duration::from_millis(500))
            .unwrap(),
    );
    let user = Uuid::new_v4();

    // First use: one fetch, shared by 20 concurrent requests.
    let ta = a.issue(user, 60).unwrap();
    let all = futures::future::join_all((0..20).map(|_| v.verify(&ta))).await;
    assert!(all.iter().all(|r| r.is_ok()));
    assert_eq!(
        s.hits.load(Ordering::SeqCst),
        1,
        "concurrent misses share one fetch"
    );

    // A storm of unknown kids right after that fetch (within the bound): no fetch.
    let tb = b.issue(user, 60).unwrap();
    let all = futures::future::join_all((0..20).map(|_| v.verify(&tb))).await;
    assert!(all.iter().all(|r| r.is_err()));
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
    for _ in 0..5 {
        assert!(v.verify(&tb).await.is_err());
    }
    assert_eq!(
        s.hits.load(Ordering::SeqCst),
        1,
        "bounded: no refetch within 500 ms"
    );

    // The server publishes b; after the bound the next miss learns it.
    let both = KeyRing::from_signers(
        Signer::all_from_pem(
            &format!("{}{}", b.private_pem(), a.private_pem()),
            "pek-hub",
            "pek",
        )
        .unwrap(),
    )
    .unwrap();
    *s.jwks.lock().unwrap() = both.jwks();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let all = futures::future::join_all((0..20).map(|_| v.verify(&tb))).await;
    assert!(all.iter().all(|r| r.as_ref().is_ok_and(|c| c.sub == user)));
    assert_eq!(
        s.hits.load(Ordering::SeqCst),
        2,
        "one refetch for 20 concurrent misses"
    );

    // Server down: a forced refresh fails, cached keys still verify.
    s.down.store(true, Ordering::SeqCst);
    assert!(v.refresh().await.is_err());
    assert!(v.verify(&ta).await.is_ok());
    assert!(v.verify(&tb).await.is_ok());
}
