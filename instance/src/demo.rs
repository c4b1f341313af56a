//! `pek local`: a whole federation on one machine for a newcomer, on a throwaway
//! PostgreSQL, with demo people, realms, groups and policies. Also the demo data used by
//! the benchmarks.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use uuid::Uuid;

use crate::auth::Signer;
use crate::config::{DbArgs, Mode, ServeArgs};
use crate::db::{self, Db};
use crate::group::{self, NewGroup, Purpose};
use crate::membership::{self, NewMembership, Status};
use crate::policy::{self, Grants, Permission};
use crate::profile::{self, Dormitory, ExternalAccount, ExternalProtocol, ProfileInput};
use crate::realm::{self, RealmId};

#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// Where the hub listens.
    #[arg(long, env = "PEK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Lifetime of the printed demo tokens, in seconds.
    #[arg(long, default_value_t = 24 * 3600)]
    pub token_ttl: u64,
}

pub struct DemoPeople {
    pub alice: Uuid,
    pub bob: Uuid,
    pub aron: Uuid,
}

async fn person(
    db: &Db,
    sub: &str,
    first: &str,
    last: &str,
    nick: &str,
    phone: &str,
) -> anyhow::Result<Uuid> {
    let mut g = db.global().await?;
    let id = profile::upsert_user(&mut g, sub).await?;
    profile::put_profile(
        &mut g,
        id,
        &ProfileInput {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            nickname: Some(nick.into()),
            cell_phone: Some(phone.into()),
            room: Some("1019".into()),
            dormitory: Some(Dormitory::Sch),
            external_accounts: vec![ExternalAccount {
                protocol: ExternalProtocol::SchMail,
                account_name: format!("{nick}@sch.bme.hu"),
            }],
            ..Default::default()
        },
    )
    .await?;
    g.commit().await?;
    Ok(id)
}

/// Demo data on a migrated hub database: Alice is GOD of `hub` and of a second realm
/// `kir-dev` hosted by the hub; Bob leads a group in `kir-dev`; Áron is a member there.
pub async fn seed(db: &Db) -> anyhow::Result<DemoPeople> {
    let alice = person(
        db,
        "demo-alice",
        "Alice",
        "Kovács",
        "alice",
        "+36 1 111 1111",
    )
    .await?;
    let bob = person(db, "demo-bob", "Bob", "Nagy", "bobby", "+36 1 222 2222").await?;
    let aron = person(db, "demo-aron", "Áron", "Szabó", "ari", "+36 1 333 3333").await?;

    let hub = RealmId::hub();
    realm::ensure_local(db, &hub, "Hub", Some(alice)).await?;
    let kir = RealmId::parse("kir-dev")?;
    realm::ensure_local(db, &kir, "Kir-Dev", Some(alice)).await?;

    for (realm, names) in [
        (
            &hub,
            vec!["Schönherz Kollégium", "Simonyi Károly Szakkollégium"],
        ),
        (&kir, vec!["Kir-Dev", "Kir-Dev Web"]),
    ] {
        let mut tx = db.realm(realm).await?;
        let grants = Grants::load(&mut tx, alice).await?;
        let root = group::create(
            &mut tx,
            &grants,
            NewGroup {
                name: names[0].into(),
                parent_id: None,
                purpose: Some(Purpose::Circle),
                description: None,
            },
        )
        .await?;
        let child = group::create(
            &mut tx,
            &grants,
            NewGroup {
                name: names[1].into(),
                parent_id: Some(root.id),
                purpose: Some(Purpose::Project),
                description: None,
            },
        )
        .await?;
        let leader = NewMembership {
            user_id: bob,
            status: Some(Status::Active),
            posts: Some(vec!["leader".into()]),
            start_at: None,
        };
        membership::add(&mut tx, &grants, child.id, leader).await?;
        if !realm.is_hub() {
            let member = NewMembership {
                user_id: aron,
                status: Some(Status::Active),
                posts: None,
                start_at: None,
            };
            membership::add(&mut tx, &grants, child.id, member).await?;
            // Group leaders of kir-dev may see their members' full profiles.
            let p = policy::create_policy(&mut tx, &grants, "Group leaders", None).await?;
            policy::add_statement(
                &mut tx,
                &grants,
                p.id,
                Some(child.id),
                None,
                &[
                    Permission::ViewFullProfile,
                    Permission::EditMembers,
                    Permission::EditGroup,
                ],
            )
            .await?;
            policy::assign(&mut tx, &grants, bob, p.id).await?;
        }
        tx.commit().await?;
    }
    Ok(DemoPeople { alice, bob, aron })
}

/// `pek local`.
pub async fn run_local(args: LocalArgs) -> anyhow::Result<()> {
    println!("Starting a throwaway PostgreSQL…");
    let pg = tokio::task::spawn_blocking(localpg::LocalPostgres::start)
        .await?
        .context("starting PostgreSQL (is the `postgresql` package installed?)")?;
    let hub_db = pg.create_database("pek_hub").await?;
    db::migrate(&hub_db.owner_url, Mode::Hub, Some(localpg::APP_ROLE))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let signer = Signer::generate("pek-hub", "pek")?;
    let keyfile: PathBuf = pg.data_dir().with_file_name("jwt-public.pem");
    std::fs::write(&keyfile, signer.public_pem())?;

    let db = Db::connect(&hub_db.app_url, 10).await?;
    let people = seed(&db).await?;

    let serve = ServeArgs {
        listen: args.listen,
        no_migrate: true,
        jwt_public_key_file: Some(keyfile),
        ..ServeArgs::defaults(DbArgs {
            database_url: hub_db.app_url.clone(),
            migration_database_url: Some(hub_db.owner_url.clone()),
            mode: Mode::Hub,
        })
    };
    let (_state, router) = crate::app::build(&serve).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {} (set --listen or PEK_LISTEN)", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let alice = signer.issue(people.alice, args.token_ttl)?;
    let bob = signer.issue(people.bob, args.token_ttl)?;
    println!(
        "\nPéK hub is up at {url}  (realms: hub, kir-dev; Ctrl-C stops and removes everything)\n\
         \n  Alice (GOD of both realms):  export ALICE={alice}\
         \n  Bob (leads Kir-Dev Web):     export BOB={bob}\
         \n\nTry:\
         \n  curl -s {url}/api/v1/realms/kir-dev/groups -H \"Authorization: Bearer $ALICE\"\
         \n  curl -s '{url}/api/v1/users?q=aron' -H \"Authorization: Bearer $BOB\"    # full profile: Bob leads Áron's group\
         \n  curl -s '{url}/api/v1/users?q=aron' -H \"Authorization: Bearer $ALICE\"  # also full: Alice is GOD\
         \n  curl -s {url}/openapi.json | head -c 300\n"
    );
    crate::http::serve(listener, router).await?;
    drop(pg);
    Ok(())
}
