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
use crate::dev_provider::{self, DevPerson, Dialect};
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

#[derive(Debug, Clone, Copy)]
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
            first_name: Some(first.parse()?),
            last_name: Some(last.parse()?),
            nickname: Some(nick.parse()?),
            cell_phone: Some(phone.parse()?),
            room: Some("1019".parse()?),
            dormitory: Some(Dormitory::Sch),
            external_accounts: vec![ExternalAccount {
                protocol: ExternalProtocol::SchMail,
                account_name: format!("{nick}@sch.bme.hu").try_into()?,
            }],
            ..Default::default()
        },
    )
    .await?;
    g.commit().await?;
    Ok(id)
}

/// The demo people, in the hub's database.
pub async fn seed_people(db: &Db) -> anyhow::Result<DemoPeople> {
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
    Ok(DemoPeople { alice, bob, aron })
}

/// Demo data of one realm in `db` (the hub's or a worker's): Alice is its GOD; a root
/// group and a child group that Bob leads; outside the hub realm Áron is a member of the
/// child group and group leaders may see their members' full profiles.
pub async fn seed_realm(
    db: &Db,
    realm: &RealmId,
    display_name: &str,
    people: &DemoPeople,
    names: [&str; 2],
) -> anyhow::Result<()> {
    let DemoPeople { alice, bob, aron } = *people;
    realm::ensure_local(db, realm, display_name, Some(alice)).await?;
    let mut tx = db.realm(realm).await?;
    let grants = Grants::load(&mut tx, alice).await?;
    let root = group::create(
        &mut tx,
        &grants,
        NewGroup {
            name: names[0].parse()?,
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
            name: names[1].parse()?,
            parent_id: Some(root.id),
            purpose: Some(Purpose::Project),
            description: None,
        },
    )
    .await?;
    join(&mut tx, &grants, child.id, bob, &["leader"]).await?;
    if !realm.is_hub() {
        join(&mut tx, &grants, child.id, aron, &[]).await?;
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
    Ok(())
}

/// A demo person joins a group the way people do: invited by `inviter` (editMembers),
/// accepts the invitation themselves, and is made ACTIVE.
pub async fn join(
    tx: &mut crate::db::RealmTx,
    inviter: &Grants,
    group: Uuid,
    person: Uuid,
    posts: &[&str],
) -> anyhow::Result<()> {
    let invited = membership::invite(
        tx,
        inviter,
        group,
        NewMembership {
            user_id: person,
            posts: Some(posts.iter().map(|p| p.parse()).collect::<Result<_, _>>()?),
            start_at: None,
        },
    )
    .await?;
    let own = Grants::load(tx, person).await?;
    membership::accept(tx, &own, invited.id).await?;
    membership::update(
        tx,
        inviter,
        invited.id,
        membership::MembershipPatch {
            status: Some(Status::Active),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// Starts one instance in this process on its own listener; returns its URL.
async fn start_instance(serve: ServeArgs) -> anyhow::Result<String> {
    let listener = bind(serve.listen).await?;
    start_on(listener, serve).await
}

async fn bind(at: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(at)
        .await
        .with_context(|| format!("binding {at} (set --listen or PEK_LISTEN)"))
}

/// Starts an instance on a listener bound beforehand (the hub: its URL is the sign-in
/// providers' redirect target, needed in its configuration).
async fn start_on(listener: tokio::net::TcpListener, serve: ServeArgs) -> anyhow::Result<String> {
    let (_state, router) = crate::app::build(&serve).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = crate::http::serve(listener, router).await {
            tracing::error!(error = %e, "instance stopped");
        }
    });
    Ok(url)
}

/// `pek local`: a hub (with the BFF) and two workers, each with its own database on one
/// throwaway PostgreSQL, each on its own port, talking HTTP to each other like in a
/// cluster.
pub async fn run_local(args: LocalArgs) -> anyhow::Result<()> {
    // Listening before anything is made: a Ctrl-C or SIGTERM at any moment, start-up
    // included, drops the federation's future and with it the cluster and the secrets.
    let stop = stop_signal().context("listening for Ctrl-C and SIGTERM")?;
    tokio::select! {
        r = local_federation(args) => r,
        _ = stop => Ok(()),
    }
}

/// Starts the federation and keeps it (and what it made) until the future is dropped.
async fn local_federation(args: LocalArgs) -> anyhow::Result<()> {
    println!("Starting a throwaway PostgreSQL…");
    let pg = tokio::task::spawn_blocking(localpg::LocalPostgres::start)
        .await?
        .context("starting PostgreSQL (is the `postgresql` package installed?)")?;
    // The signing key and tokens: 0600 files in a 0700 directory of our own (not the
    // cluster's, which belongs to the `postgres` user when we run as root), removed
    // when `pek local` stops.
    let secrets = SecretsDir::create()?;
    let dir = secrets.0.clone();
    let signer = Signer::generate("pek-hub", "pek")?;
    // The hub signs with this key and publishes it as JWKS; the workers fetch it from
    // the hub like in a cluster.
    let keyfile: PathBuf = dir.join("jwt-private.pem");
    localpg::write_private(&keyfile, signer.private_pem())?;
    let secret = format!("local-federation-{}", Uuid::new_v4().simple());
    let secret_file = dir.join("federation-secret");
    localpg::write_private(&secret_file, &secret)?;
    let operator_token = format!("local-operator-{}", Uuid::new_v4().simple());
    let operator_file = dir.join("operator-tokens");
    localpg::write_private(&operator_file, &operator_token)?;

    let hub_db = pg.create_database("pek_hub").await?;
    db::migrate(&hub_db.owner_url, Mode::Hub, Some(localpg::APP_ROLE))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = Db::connect(&hub_db.app_url, 10).await?;
    let people = seed_people(&db).await?;
    seed_realm(
        &db,
        &RealmId::hub(),
        "Hub",
        &people,
        ["Schönherz Kollégium", "Simonyi Károly Szakkollégium"],
    )
    .await?;
    // Two sign-in providers on loopback (see `dev_provider.rs`): an AuthSCH-like one, the
    // default provider, through which the demo people sign in, and a second one
    // ("Beta ID", signs up nobody) to link from one's own page.
    let hub_listener = bind(args.listen).await?;
    let public_url = format!("http://{}", hub_listener.local_addr()?);
    let ip = args.listen.ip();
    let demo = |subject: &str, first: &str, last: &str, email: &str| DevPerson {
        subject: subject.into(),
        first_name: first.into(),
        last_name: last.into(),
        email: email.into(),
    };
    let authsch = dev_provider::start(
        ip,
        Dialect::AuthSch,
        "AuthSCH (local)",
        vec![
            demo("demo-alice", "Alice", "Kovács", "alice@sch.bme.hu"),
            demo("demo-bob", "Bob", "Nagy", "bobby@sch.bme.hu"),
            demo("demo-aron", "Áron", "Szabó", "ari@sch.bme.hu"),
        ],
    )
    .await?;
    let beta = dev_provider::start(
        ip,
        Dialect::Oidc,
        "Beta ID (local)",
        vec![
            demo("alice@beta", "Alice", "Kovács", "alice@beta.example"),
            demo("bob@beta", "Bob", "Nagy", "bob@beta.example"),
        ],
    )
    .await?;
    let authsch_secret = dir.join("login-authsch-secret");
    localpg::write_private(&authsch_secret, &authsch.client_secret)?;
    let beta_secret = dir.join("login-beta-secret");
    localpg::write_private(&beta_secret, &beta.client_secret)?;
    let providers = serde_json::json!([{
        "id": "beta",
        "displayName": "Beta ID",
        "issuer": beta.url,
        "clientId": beta.client_id,
        "clientSecretFile": beta_secret,
        "createPeople": false,
    }]);
    let hub_url = start_on(
        hub_listener,
        ServeArgs {
            listen: args.listen,
            public_url: Some(public_url),
            no_migrate: true,
            jwt_private_key_file: Some(keyfile.clone()),
            federation_secret_file: Some(secret_file),
            operator_token_file: Some(operator_file),
            // Alice administers every demo realm from configuration, as a Realm's
            // spec.admins would make her.
            realm_admins: vec!["demo-alice".into()],
            // The web sign-in page lists the demo people (development login) and the two
            // local providers.
            login: crate::config::LoginArgs {
                dev_login: true,
                login_authorize_url: Some(format!("{}/authorize", authsch.url)),
                login_token_url: Some(format!("{}/token", authsch.url)),
                login_userinfo_url: Some(format!("{}/userinfo", authsch.url)),
                login_client_id: Some(authsch.client_id.clone()),
                login_client_secret_file: Some(authsch_secret),
                login_providers: Some(providers.to_string()),
                ..Default::default()
            },
            jwt_ttl_seconds: args.token_ttl,
            ..ServeArgs::defaults(DbArgs {
                database_url: hub_db.app_url.clone(),
                migration_database_url: Some(hub_db.owner_url.clone()),
                mode: Mode::Hub,
            })
        },
    )
    .await?;

    let http = reqwest::Client::new();
    let workers = [
        ("kir-dev", "Kir-Dev", ["Kir-Dev", "Kir-Dev Web"]),
        (
            "kszk",
            "KSZK",
            ["Schönherz Számítástechnikai Kör", "KSZK Üzemeltetés"],
        ),
    ];
    let mut worker_urls = Vec::new();
    for (i, (id, name, groups)) in workers.into_iter().enumerate() {
        let realm = RealmId::parse(id)?;
        let wdb = pg
            .create_database(&format!("pek_{}", id.replace('-', "_")))
            .await?;
        db::migrate(&wdb.owner_url, Mode::Worker, Some(localpg::APP_ROLE))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let token_file = dir.join(format!("hub-token-{id}"));
        localpg::write_private(
            &token_file,
            crate::federation::realm_token(secret.as_bytes(), &realm),
        )?;
        let listen = SocketAddr::new(
            args.listen.ip(),
            args.listen.port().wrapping_add(1 + i as u16),
        );
        let listen = if args.listen.port() == 0 {
            SocketAddr::new(args.listen.ip(), 0)
        } else {
            listen
        };
        let url = start_instance(ServeArgs {
            listen,
            no_migrate: true,
            realm_id: Some(id.into()),
            realm_display_name: Some(name.into()),
            hub_url: Some(hub_url.clone()),
            hub_token_file: Some(token_file),
            outbox_interval_ms: 200,
            realm_admins: vec!["demo-alice".into()],
            ..ServeArgs::defaults(DbArgs {
                database_url: wdb.app_url.clone(),
                migration_database_url: Some(wdb.owner_url.clone()),
                mode: Mode::Worker,
            })
        })
        .await?;
        let wdb_conn = Db::connect(&wdb.app_url, 5).await?;
        seed_realm(&wdb_conn, &realm, name, &people, groups).await?;
        // Registered like the operator does it.
        let resp = http
            .put(format!("{hub_url}/internal/v1/realms/{id}"))
            .bearer_auth(&operator_token)
            .json(&serde_json::json!({"displayName": name, "endpoint": url, "version": env!("CARGO_PKG_VERSION")}))
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "registering {id} with the hub failed: {}",
            resp.text().await.unwrap_or_default()
        );
        worker_urls.push((id, url));
    }
    // Wait until the workers' outboxes have told the hub who is where.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let realms = crate::federation::user_realms(&db, people.aron).await?;
        if realms.len() >= 2 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let alice = signer.issue(people.alice, args.token_ttl)?;
    let bob = signer.issue(people.bob, args.token_ttl)?;
    let aron = signer.issue(people.aron, args.token_ttl)?;
    // A worker accepts only tokens for its own realm (the hub mints them when it
    // forwards); for calling a worker directly, Alice gets one per worker.
    let mut worker_tokens = String::new();
    for (id, u) in &worker_urls {
        let t = signer.issue_to(
            people.alice,
            &crate::auth::realm_audience("pek", id),
            args.token_ttl,
            None,
        )?;
        let var = format!("ALICE_{}", id.to_uppercase().replace('-', "_"));
        worker_tokens.push_str(&format!(
            "\n  Alice at {id} directly ({u}): export {var}={t}"
        ));
    }
    let url = &hub_url;
    let secrets_dir = dir.display();
    let (authsch_url, beta_url) = (&authsch.url, &beta.url);
    let workers_text: String = worker_urls
        .iter()
        .map(|(id, u)| {
            format!(
                "\n  worker {id:<8} {u}  (own database pek_{})",
                id.replace('-', "_")
            )
        })
        .collect();
    println!(
        "\nPéK federation is up (Ctrl-C stops it and removes everything):\
         \n  hub + BFF       {url}  (realm hub){workers_text}\
         \n  secrets         {secrets_dir}  (0700; key and tokens 0600)\
         \n  sign-in         {authsch_url} (AuthSCH-like), {beta_url} (Beta ID)\
         \n\nOpen {url}/ in a browser and sign in as Alice, Bob or Áron (development sign-in, or\
         \nthrough the local AuthSCH); on your page, link Beta ID and sign in with it next time.\
         \n\n  Alice (GOD everywhere):       export ALICE={alice}\
         \n  Bob (leads a group in each):  export BOB={bob}\
         \n  Áron (member in the workers): export ARON={aron}\
         \n{worker_tokens}\
         \n\nTry:\
         \n  curl -s '{url}/api/v1/groups?q=sch' -H \"Authorization: Bearer $ALICE\"     # cross-realm search: hub + kszk\
         \n  curl -s '{url}/api/v1/groups' -H \"Authorization: Bearer $ARON\"            # Áron's groups in both workers\
         \n  curl -s {url}/api/v1/realms/kir-dev/groups -H \"Authorization: Bearer $BOB\"   # routed to the kir-dev worker\
         \n  curl -s '{url}/api/v1/users?q=aron' -H \"Authorization: Bearer $BOB\"      # full profile: Bob leads Áron's group\
         \n  curl -s {url}/internal/v1/realms -H 'Authorization: Bearer {operator_token}'  # the registry\
         \n  curl -s {url}/openapi.json | head -c 300\n"
    );
    // Dropped when the stop signal wins: the cluster first, then the secrets.
    let _keep = (pg, secrets);
    std::future::pending::<anyhow::Result<()>>().await
}

/// `pek local`'s private directory for its key and tokens, removed on drop.
struct SecretsDir(PathBuf);

impl SecretsDir {
    fn create() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "pek-local-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        ));
        localpg::private_dir(&dir)
            .with_context(|| format!("creating the secrets directory {}", dir.display()))?;
        Ok(SecretsDir(dir))
    }
}

impl Drop for SecretsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Resolves at the first Ctrl-C or SIGTERM; both handlers are installed when this is
/// called, not when the future is first polled.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    })
}
