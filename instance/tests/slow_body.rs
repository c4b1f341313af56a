//! A client that sends its request body slowly must not hold a database connection while
//! it does: the body is read whole (under a deadline) before any handler opens its realm
//! transaction, so a few such clients cannot starve the pool for everyone else.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

#[tokio::test]
async fn trickled_bodies_hold_no_database_connection_and_time_out() {
    let app = common::hub().await;
    let god = app
        .person("god", "Gizella", "Isten", "+36 1 111 1111")
        .await;
    app.bootstrap_god(god).await;
    let token = app.token(god);

    // Twice as many never-finishing bodies as the pool has connections (5).
    let mut slow = Vec::new();
    for _ in 0..10 {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/realms/hub/groups")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from_stream(futures::stream::pending::<
                Result<bytes::Bytes, std::io::Error>,
            >()))
            .expect("request");
        let router = app.router.clone();
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let resp = router.oneshot(req).await.expect("response");
            (resp.status(), started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Meanwhile everyone else is served at once.
    let started = Instant::now();
    let (status, body) = app.get("/api/v1/realms/hub/groups", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a read waited {:?} for a connection the slow bodies held",
        started.elapsed()
    );

    // And the slow ones are told why, instead of waiting forever.
    for h in slow {
        let (status, took) = h.await.expect("join");
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert!(took < Duration::from_secs(20), "answered after {took:?}");
    }
}
