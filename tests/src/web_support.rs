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
        fed.wait_hub_knows(user, realm, Duration::from_secs(20))
            .await
            .expect("federation table");
    }
    (people, cili)
}

/// `user` may see every group of `realm` (a realm-wide viewGroup policy granted by the
/// realm's administrator `admin`), so they can find a group to apply to.
pub async fn let_see_groups(fed: &mut Federation, realm: &str, admin: Uuid, user: Uuid) {
    let w = fed.worker(realm);
    let mut tx = w.db.realm(&w.realm).await.expect("tx");
    let grants = pek::policy::Grants::load(&mut tx, admin)
        .await
        .expect("grants");
    let p = pek::policy::create_policy(&mut tx, &grants, "Group browsers", None)
        .await
        .expect("policy");
    pek::policy::add_statement(
        &mut tx,
        &grants,
        p.id,
        None,
        None,
        &[pek::policy::Permission::ViewGroup],
    )
    .await
    .expect("statement");
    let a = pek::policy::assign(&mut tx, &grants, user, p.id)
        .await
        .expect("assignment");
    if a.accepted_at.is_none() {
        // Offered to someone outside the realm: the person takes the role on.
        let own = pek::policy::Grants::load(&mut tx, user)
            .await
            .expect("grants");
        pek::policy::accept_offer(&mut tx, &own, p.id)
            .await
            .expect("accepted");
    }
    tx.commit().await.expect("commit");
}
