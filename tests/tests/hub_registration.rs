//! The operator's hub client against a real hub process (`pek serve`, PEK_MODE=hub, its own
//! database): register (created, then updated), list, wrong token refused, deregister (also
//! when already absent).

use pek_operator::hub::{HttpHub, Hub, Registered, Registration};
use pek_tests::HubProcess;

#[tokio::test]
async fn register_update_list_and_deregister_against_a_real_hub() {
    let hub = HubProcess::start().await.expect("hub process");
    let client = HttpHub::with_token(&hub.url, &hub.token).expect("client");
    let reg = Registration {
        display_name: "KSZK".into(),
        endpoint: "http://kszk-worker.realms.svc:8080".into(),
        version: "0.1.0".into(),
    };
    assert_eq!(
        client.register("kszk", &reg).await.expect("register"),
        Registered::Created
    );
    let moved = Registration {
        endpoint: "http://kszk-worker.other.svc:8080".into(),
        ..reg.clone()
    };
    assert_eq!(
        client.register("kszk", &moved).await.expect("re-register"),
        Registered::Updated
    );

    let list = client.list().await.expect("list");
    let entry = list.iter().find(|e| e.id == "kszk").expect("kszk listed");
    assert_eq!(
        entry.endpoint.as_deref(),
        Some("http://kszk-worker.other.svc:8080")
    );
    assert_eq!(entry.display_name.as_deref(), Some("KSZK"));
    assert_eq!(entry.version.as_deref(), Some("0.1.0"));

    // A wrong token is refused with a message that points at the token Secret.
    let intruder = HttpHub::with_token(&hub.url, "wrong-token").expect("client");
    let err = intruder.register("evil", &reg).await.expect_err("refused");
    assert!(err.to_string().contains("token"), "{err}");
    assert!(!client
        .list()
        .await
        .expect("list")
        .iter()
        .any(|e| e.id == "evil"));

    client.deregister("kszk").await.expect("deregister");
    assert!(!client
        .list()
        .await
        .expect("list")
        .iter()
        .any(|e| e.id == "kszk"));
    client
        .deregister("kszk")
        .await
        .expect("deregistering an absent realm is fine");
}

#[tokio::test]
async fn token_file_is_read_like_the_operator_does() {
    let hub = HubProcess::start().await.expect("hub process");
    let dir = std::env::temp_dir().join(format!("pek-op-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("token");
    std::fs::write(&file, format!("{}\n", hub.token)).expect("token file");
    let client = HttpHub::new(&hub.url, file.clone()).expect("client");
    let reg = Registration {
        display_name: "Token file".into(),
        endpoint: "http://tf-worker.realms.svc:8080".into(),
        version: "1".into(),
    };
    client
        .register("token-file", &reg)
        .await
        .expect("register with the token from the file");
    std::fs::write(&file, "rotated-to-something-else\n").expect("rotate");
    let err = client
        .deregister("token-file")
        .await
        .expect_err("rotated token is refused");
    assert!(err.to_string().contains("token"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
