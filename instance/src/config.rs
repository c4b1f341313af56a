//! Configuration: flags with environment-variable fallbacks (README lists them all).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Identity, profiles, the realm registry and the BFF; serves the `hub` realm.
    Hub,
    /// Serves exactly one realm (`PEK_REALM_ID`) with its own database.
    Worker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Service connection (an ordinary role: not the table owner, no BYPASSRLS).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Owner connection used for migrations; defaults to DATABASE_URL.
    #[arg(long, env = "PEK_MIGRATION_DATABASE_URL", hide_env_values = true)]
    pub migration_database_url: Option<String>,
    /// Instance mode: which schema to migrate and which API to serve.
    #[arg(long, env = "PEK_MODE", value_enum, default_value = "hub")]
    pub mode: Mode,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Realm served by a worker (required in worker mode).
    #[arg(long, env = "PEK_REALM_ID")]
    pub realm_id: Option<String>,
    /// Display name of the worker's realm (defaults to the realm id).
    #[arg(long, env = "PEK_REALM_DISPLAY_NAME")]
    pub realm_display_name: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "PEK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the Prometheus `/metrics` listener (kept off the API listener so it is
    /// never public); no metrics endpoint when unset.
    #[arg(long, env = "PEK_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Hub base URL (workers: JWKS for token verification, membership reports).
    #[arg(long, env = "PEK_HUB_URL")]
    pub hub_url: Option<String>,
    /// Public base URL of this instance (hub: OAuth2 redirect URI, cookie scope).
    #[arg(long, env = "PEK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Do not run migrations at start.
    #[arg(long, env = "PEK_NO_MIGRATE")]
    pub no_migrate: bool,
    /// PEM public key(s) (RSA or Ed25519) that bearer tokens are verified against.
    #[arg(long, env = "PEK_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Hub: PEM private key(s) that sign tokens (RSA PKCS#1 or PKCS#8, Ed25519 PKCS#8).
    /// The first signs; all are published in the JWKS (rotation: prepend a new key).
    #[arg(long, env = "PEK_JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,
    /// Hub: lifetime of issued tokens, in seconds. For a signed-in browser this is how
    /// long it may stay idle: its session token is renewed while the person is active.
    #[arg(long, env = "PEK_JWT_TTL_SECONDS", default_value_t = 900)]
    pub jwt_ttl_seconds: u64,
    /// Hub: the longest a sign-in lasts however active the person is, in seconds
    /// (renewals never go past it; then the person signs in again).
    #[arg(long, env = "PEK_SESSION_MAX_SECONDS", default_value_t = 43_200)]
    pub session_max_seconds: u64,
    /// Hub: lifetime of the per-realm tokens it sends to workers when it forwards a call,
    /// in seconds (reused per user and realm until shortly before they expire).
    #[arg(long, env = "PEK_REALM_TOKEN_TTL_SECONDS", default_value_t = 120)]
    pub realm_token_ttl_seconds: u64,
    /// Worker: how often the hub's JWKS is refetched, in seconds.
    #[arg(long, env = "PEK_JWKS_REFRESH_SECONDS", default_value_t = 300)]
    pub jwks_refresh_seconds: u64,
    /// Worker: at most one JWKS refetch per this many seconds for unknown key ids.
    #[arg(long, env = "PEK_JWKS_MIN_REFETCH_SECONDS", default_value_t = 10)]
    pub jwks_min_refetch_seconds: u64,
    /// Expected token issuer.
    #[arg(long, env = "PEK_JWT_ISSUER", default_value = "pek-hub")]
    pub jwt_issuer: String,
    /// Expected token audience.
    #[arg(long, env = "PEK_JWT_AUDIENCE", default_value = "pek")]
    pub jwt_audience: String,
    /// File with the bearer tokens accepted on the hub admin API, one per line.
    #[arg(long, env = "PEK_OPERATOR_TOKEN_FILE")]
    pub operator_token_file: Option<PathBuf>,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "PEK_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Database pool size.
    #[arg(long, env = "PEK_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
    /// Log format.
    #[arg(long, env = "PEK_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Hub: file with the secret that workers' realm tokens are derived from
    /// (HMAC-SHA256(secret, "pek-realm:" + realm id)); needed to accept membership reports.
    #[arg(long, env = "PEK_FEDERATION_SECRET_FILE")]
    pub federation_secret_file: Option<PathBuf>,
    /// Worker: file with this realm's token for reporting membership changes to the hub
    /// (the hub also presents it when it reads the realm's part of the directory).
    #[arg(long, env = "PEK_HUB_TOKEN_FILE")]
    pub hub_token_file: Option<PathBuf>,
    /// Hub: file with the services that may read the directory
    /// (`/internal/v1/directory/…`), one `<service-name> <token>` per line.
    #[arg(long, env = "PEK_DIRECTORY_TOKEN_FILE")]
    pub directory_token_file: Option<PathBuf>,
    /// Hub: Redis for the shared realm-list cache (in-process cache when unset).
    #[arg(long, env = "PEK_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Hub: how long a user's realm list may be cached, in seconds.
    #[arg(long, env = "PEK_REALM_CACHE_TTL_SECS", default_value_t = 60)]
    pub realm_cache_ttl_secs: u64,
    /// Hub: per-realm deadline of a BFF call (all attempts), in milliseconds.
    #[arg(long, env = "PEK_BFF_DEADLINE_MS", default_value_t = 2000)]
    pub bff_deadline_ms: u64,
    /// Hub: extra attempts of a failed idempotent BFF call, within the deadline.
    #[arg(long, env = "PEK_BFF_RETRIES", default_value_t = 1)]
    pub bff_retries: u32,
    /// Hub: speak HTTP/2 to the workers (cleartext, prior knowledge): one multiplexed
    /// connection per worker instead of a pool of HTTP/1.1 keep-alive connections. Every
    /// worker must be a `pek` (it serves both). Off by default: measured in BENCHMARKS.md
    /// ("BFF: HTTP/1.1 or HTTP/2 to the workers").
    #[arg(long, env = "PEK_BFF_WORKER_HTTP2", default_value_t = false)]
    pub bff_worker_http2: bool,
    /// Hub: interval of worker health checks, in milliseconds.
    #[arg(long, env = "PEK_HEALTH_INTERVAL_MS", default_value_t = 10_000)]
    pub health_interval_ms: u64,
    /// Worker: how often the membership outbox is checked when idle, in milliseconds.
    #[arg(long, env = "PEK_OUTBOX_INTERVAL_MS", default_value_t = 1000)]
    pub outbox_interval_ms: u64,
    /// Hub: the realm registry is reloaded this often (seconds) even without a change
    /// notification, and the notification connection is checked as often.
    #[arg(long, env = "PEK_REGISTRY_RELOAD_SECS", default_value_t = 30)]
    pub registry_reload_secs: u64,
    /// Hub: how often (seconds) merges of two people that some realm has not done its
    /// part of yet (it was down) are tried again.
    #[arg(long, env = "PEK_MERGE_RETRY_SECS", default_value_t = 60)]
    pub merge_retry_secs: u64,
    /// Worker: how often (seconds) the worker checks that the hub's federation table has
    /// its realm's registration it last filled; after a (re-)registration it resends its
    /// whole member list.
    #[arg(long, env = "PEK_HUB_SYNC_SECS", default_value_t = 30)]
    pub hub_sync_secs: u64,
    /// The realm's first administrators, by AuthSCH id (repeatable; the env var is
    /// comma-separated): they hold the realm's GOD policy (the hub realm on the hub).
    /// Taking someone off the list revokes exactly that grant at the next start.
    #[arg(
        long = "realm-admin",
        env = "PEK_REALM_ADMINS",
        value_delimiter = ',',
        value_name = "AUTHSCH_ID"
    )]
    pub realm_admins: Vec<String>,
    #[command(flatten)]
    pub login: LoginArgs,
}

/// How the client authenticates at the provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// In the form body (`client_secret_post`).
    Post,
}

/// How the access token is presented to the userinfo/profile endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UserinfoAuth {
    /// `Authorization: Bearer …` (OIDC).
    Header,
    /// `?access_token=…` (AuthSCH's profile API).
    Query,
}

/// Hub login: OAuth2 authorization code + PKCE against AuthSCH or any OIDC provider.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// OIDC issuer URL: endpoints (and ID-token keys) from its discovery document.
    /// Explicit endpoint settings win.
    #[arg(long, env = "PEK_LOGIN_ISSUER_URL")]
    pub login_issuer_url: Option<String>,
    /// Authorization endpoint (default: AuthSCH's).
    #[arg(long, env = "PEK_LOGIN_AUTHORIZE_URL")]
    pub login_authorize_url: Option<String>,
    /// Token endpoint (default: AuthSCH's).
    #[arg(long, env = "PEK_LOGIN_TOKEN_URL")]
    pub login_token_url: Option<String>,
    /// Userinfo / profile endpoint (default: AuthSCH's).
    #[arg(long, env = "PEK_LOGIN_USERINFO_URL")]
    pub login_userinfo_url: Option<String>,
    /// OAuth2 client id; login is off without it.
    #[arg(long, env = "PEK_LOGIN_CLIENT_ID")]
    pub login_client_id: Option<String>,
    /// File holding the OAuth2 client secret.
    #[arg(long, env = "PEK_LOGIN_CLIENT_SECRET_FILE")]
    pub login_client_secret_file: Option<PathBuf>,
    /// Requested scopes, space-separated (default: AuthSCH's basic profile scopes, or
    /// `openid profile email` with an issuer URL).
    #[arg(long, env = "PEK_LOGIN_SCOPES")]
    pub login_scopes: Option<String>,
    /// Token-endpoint client authentication.
    #[arg(
        long,
        env = "PEK_LOGIN_CLIENT_AUTH",
        value_enum,
        default_value = "basic"
    )]
    pub login_client_auth: ClientAuth,
    /// How the userinfo endpoint gets the access token (default: `query` for AuthSCH,
    /// `header` with an issuer URL).
    #[arg(long, env = "PEK_LOGIN_USERINFO_AUTH", value_enum)]
    pub login_userinfo_auth: Option<UserinfoAuth>,
    /// Redirect URI registered at the provider (default: PEK_PUBLIC_URL + /auth/callback).
    #[arg(long, env = "PEK_LOGIN_REDIRECT_URL")]
    pub login_redirect_url: Option<String>,
    /// Where browsers go after login (default: PEK_PUBLIC_URL).
    #[arg(long, env = "PEK_LOGIN_FRONTEND_URL")]
    pub login_frontend_url: Option<String>,
    /// How long a started login may take, in seconds.
    #[arg(long, env = "PEK_LOGIN_STATE_TTL_SECONDS", default_value_t = 600)]
    pub login_state_ttl_seconds: u64,
    /// The sign-in provider registry: a JSON file with an array of providers (id,
    /// displayName, issuer, clientId, clientSecretFile, scopes, ownedFields,
    /// createPeople, trustEmail, emailDomains, global; README "Sign-in providers"). An
    /// entry with id `authsch` replaces the default provider the PEK_LOGIN_* settings
    /// describe.
    #[arg(long, env = "PEK_LOGIN_PROVIDERS_FILE")]
    pub login_providers_file: Option<PathBuf>,
    /// The same registry inline, as JSON (instead of the file).
    #[arg(long, env = "PEK_LOGIN_PROVIDERS")]
    pub login_providers: Option<String>,
    /// Enables `POST /auth/dev-login` (anyone can sign in as anyone: development only).
    #[arg(long, env = "PEK_DEV_LOGIN")]
    pub dev_login: bool,
}

impl Default for LoginArgs {
    fn default() -> Self {
        LoginArgs {
            login_issuer_url: None,
            login_authorize_url: None,
            login_token_url: None,
            login_userinfo_url: None,
            login_client_id: None,
            login_client_secret_file: None,
            login_scopes: None,
            login_client_auth: ClientAuth::Basic,
            login_userinfo_auth: None,
            login_redirect_url: None,
            login_frontend_url: None,
            login_state_ttl_seconds: 600,
            login_providers_file: None,
            login_providers: None,
            dev_login: false,
        }
    }
}

impl ServeArgs {
    /// Every flag at its default, for embedding an instance (`pek local`, benchmarks,
    /// tests); callers override fields with struct-update syntax. New flags get their
    /// default here, in one place.
    pub fn defaults(db: DbArgs) -> Self {
        ServeArgs {
            db,
            realm_id: None,
            realm_display_name: None,
            hub_url: None,
            public_url: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            no_migrate: false,
            jwt_public_key_file: None,
            jwt_private_key_file: None,
            jwt_ttl_seconds: 900,
            session_max_seconds: 43_200,
            realm_token_ttl_seconds: 120,
            jwks_refresh_seconds: 300,
            jwks_min_refetch_seconds: 10,
            jwt_issuer: "pek-hub".into(),
            jwt_audience: "pek".into(),
            operator_token_file: None,
            max_body_bytes: 64 * 1024,
            db_max_connections: 20,
            log_format: LogFormat::Text,
            federation_secret_file: None,
            hub_token_file: None,
            directory_token_file: None,
            redis_url: None,
            realm_cache_ttl_secs: 60,
            bff_deadline_ms: 2000,
            bff_retries: 1,
            bff_worker_http2: false,
            health_interval_ms: 10_000,
            outbox_interval_ms: 1000,
            registry_reload_secs: 30,
            merge_retry_secs: 60,
            hub_sync_secs: 30,
            realm_admins: Vec::new(),
            login: LoginArgs::default(),
        }
    }
}
