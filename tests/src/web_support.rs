//! Data for the web interface's tests: the demo federation as `pek local` seeds it.

use std::time::Duration;

use pek::demo::{self, DemoPeople};
use pek::realm::RealmId;
use uuid::Uuid;

use crate::federation::Federation;

/// The demo federation (as `pek local` seeds it) plus Cecília, a plain member of a
/// kszk group: she shares a realm with Áron but may see only his basic profile.
pub async fn seed(fed: &Federation) -> (DemoPeople, Uuid) {
    let people = demo::seed_people(&fed.hub_db).await.expect("people");
    demo::seed_realm(
        &fed.hub_db,
        &RealmId::hub(),
        "Hub",
        &people,
        ["Schönherz Kollégium", "Simonyi Károly Szakkollégium"],
    )
    .await
    .expect("hub realm");
    let names = [
        ["Kir-Dev", "Kir-Dev Web"],
        ["Schönherz Számítástechnikai Kör", "KSZK Üzemeltetés"],
    ];
    for (w, names) in fed.workers.iter().zip(names) {
        demo::seed_realm(&w.db, &w.realm, w.realm.as_str(), &people, names)
            .await
            .expect("worker realm");
    }
    let cili = fed
        .person("web-cili", "Cecília", "Tóth")
        .await
        .expect("Cecília");
    let kszk = &fed.workers[1];
    let mut tx = kszk.db.realm(&kszk.realm).await.expect("tx");
    let grants = pek::policy::Grants::load(&mut tx, people.alice)
        .await
        .expect("grants");
    let root = pek::group::search(
        &mut tx,
        &grants,
        &pek::group::GroupQuery {
            q: Some("Schönherz Szám".parse().expect("group name")),
            ..Default::default()
        },
        5,
        None,
    )
    .await
    .expect("group search")
    .items
    .remove(0);
    demo::join(&mut tx, &grants, root.id, cili, &[])
        .await
        .expect("Cecília's membership");
    tx.commit().await.expect("commit");
    for (user, realm) in [
        (people.aron, "kir-dev"),
        (people.aron, "kszk"),
        (people.bob, "kszk"),
        (cili, "kszk"),
    ] {
        // 60 s: on a fresh clone this runs while every background check starts up (a
        // cluster, a node, images), and 20 s ran out there (alone it takes well under 1 s).
        fed.wait_hub_knows(user, realm, Duration::from_secs(60))
            .await
            .expect("federation table");
    }
    (people, cili)
}

/// `user` becomes an active member of the group named `group` in the worker realm
/// `realm` (invited by Alice, who administers it; accepted), and the hub knows it.
pub async fn join_group(
    fed: &Federation,
    people: &DemoPeople,
    realm: &str,
    group: &str,
    user: Uuid,
) {
    let w = fed
        .workers
        .iter()
        .find(|w| w.realm.as_str() == realm)
        .expect("worker");
    let mut tx = w.db.realm(&w.realm).await.expect("tx");
    let grants = pek::policy::Grants::load(&mut tx, people.alice)
        .await
        .expect("grants");
    let found = pek::group::search(
        &mut tx,
        &grants,
        &pek::group::GroupQuery {
            q: Some(group.parse().expect("group name")),
            ..Default::default()
        },
        5,
        None,
    )
    .await
    .expect("group search")
    .items
    .into_iter()
    .find(|g| g.name == group)
    .expect("the group");
    demo::join(&mut tx, &grants, found.id, user, &[])
        .await
        .expect("membership");
    tx.commit().await.expect("commit");
    fed.wait_hub_knows(user, realm, Duration::from_secs(60))
        .await
        .expect("federation table");
}
