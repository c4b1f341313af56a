//! The operator's hub client against a real hub process (`pek serve`, PEK_MODE=hub, its own
//! database): register (created, then updated), list, wrong token refused, deregister (also
//! when already absent), and the owning Realm's uid recorded in the registry.

use pek_operator::hub::{HttpHub, Hub, Registered, Registration};
use pek_operator::Error;
use pek_tests::HubProcess;

#[tokio::test]
async fn register_update_list_and_deregister_against_a_real_hub() {
    let hub = HubProcess::start().await.expect("hub process");
    let client = HttpHub::with_token(&hub.url, &hub.token).expect("client");
    let reg = Registration {
        display_name: "KSZK".into(),
        endpoint: "http://kszk-worker.realms.svc:8080".into(),
        version: "0.1.0".into(),
        owner_uid: None,
        providers: None,
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

    client.deregister("kszk", None).await.expect("deregister");
    assert!(!client
        .list()
        .await
        .expect("list")
        .iter()
        .any(|e| e.id == "kszk"));
    client
        .deregister("kszk", None)
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
        owner_uid: None,
        providers: None,
    };
    client
        .register("token-file", &reg)
        .await
        .expect("register with the token from the file");
    std::fs::write(&file, "rotated-to-something-else\n").expect("rotate");
    let err = client
        .deregister("token-file", None)
        .await
        .expect_err("rotated token is refused");
    assert!(err.to_string().contains("token"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The registry records the Realm (uid) that registered a realm id: a second Realm with the
/// same realm id can neither overwrite nor deregister the entry (409 with a message naming
/// both uids); the owner still can. An entry registered without an owner is adopted by the
/// first registration that names one.
#[tokio::test]
async fn the_owner_recorded_in_the_registry_keeps_a_duplicate_realm_out() {
    let hub = HubProcess::start().await.expect("hub process");
    let client = HttpHub::with_token(&hub.url, &hub.token).expect("client");
    let owner = Registration {
        display_name: "Owned".into(),
        endpoint: "http://owned-worker.team-a.svc:8080".into(),
        version: "1".into(),
        owner_uid: Some("uid-a".into()),
        providers: None,
    };
    assert_eq!(
        client.register("owned", &owner).await.expect("register"),
        Registered::Created
    );
    let entry =
        |list: Vec<pek_operator::hub::RegistryEntry>| list.into_iter().find(|e| e.id == "owned");
    let listed = entry(client.list().await.expect("list")).expect("listed");
    assert_eq!(listed.owner_uid.as_deref(), Some("uid-a"));
    assert!(listed.matches(&owner));

    // A duplicate Realm (another uid) is refused and changes nothing.
    let duplicate = Registration {
        endpoint: "http://owned-worker.team-b.svc:8080".into(),
        owner_uid: Some("uid-b".into()),
        providers: None,
        ..owner.clone()
    };
    assert!(
        !listed.matches(&duplicate),
        "another owner's entry is not ours"
    );
    match client.register("owned", &duplicate).await {
        Err(Error::Conflict(m)) => assert!(m.contains("uid-a") && m.contains("uid-b"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let raw = reqwest::Client::new()
        .put(format!("{}/internal/v1/realms/owned", hub.url))
        .bearer_auth(&hub.token)
        .json(
            &serde_json::json!({"displayName": "x", "endpoint": "http://x.y.svc:8080",
                                  "version": "1", "ownerUid": "uid-b"}),
        )
        .send()
        .await
        .expect("raw PUT");
    assert_eq!(raw.status().as_u16(), 409);
    match client.deregister("owned", Some("uid-b")).await {
        Err(Error::Conflict(m)) => assert!(m.contains("uid-a"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let listed = entry(client.list().await.expect("list")).expect("still listed");
    assert_eq!(
        listed.endpoint.as_deref(),
        Some("http://owned-worker.team-a.svc:8080")
    );
    assert_eq!(listed.owner_uid.as_deref(), Some("uid-a"));

    // An empty owner is a 400, not a silent "no owner".
    let raw = reqwest::Client::new()
        .delete(format!("{}/internal/v1/realms/owned?ownerUid=", hub.url))
        .bearer_auth(&hub.token)
        .send()
        .await
        .expect("raw DELETE");
    assert_eq!(raw.status().as_u16(), 400);

    // The owner may update and deregister.
    let moved = Registration {
        version: "2".into(),
        ..owner.clone()
    };
    assert_eq!(
        client
            .register("owned", &moved)
            .await
            .expect("owner updates"),
        Registered::Updated
    );
    client
        .deregister("owned", Some("uid-a"))
        .await
        .expect("owner deregisters");
    assert!(entry(client.list().await.expect("list")).is_none());

    // Registered without an owner (by hand), then adopted by the first Realm naming itself.
    let unowned = Registration {
        owner_uid: None,
        providers: None,
        ..owner.clone()
    };
    client.register("owned", &unowned).await.expect("by hand");
    assert_eq!(
        entry(client.list().await.expect("list"))
            .expect("listed")
            .owner_uid,
        None
    );
    client.register("owned", &duplicate).await.expect("adopted");
    assert_eq!(
        entry(client.list().await.expect("list"))
            .expect("listed")
            .owner_uid
            .as_deref(),
        Some("uid-b")
    );
    client
        .register("owned", &owner)
        .await
        .expect_err("now uid-b's");
}
