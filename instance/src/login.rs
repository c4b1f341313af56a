//! Hub login: OAuth2 authorization code flow with PKCE (S256), `state` and, for OIDC
//! providers, `nonce`, against the configured sign-in providers: the default one
//! (`authsch`: AuthSCH, or any OIDC-style provider by `PEK_LOGIN_*`) and those of the
//! provider registry (`PEK_LOGIN_PROVIDERS_FILE` / `PEK_LOGIN_PROVIDERS`). The login in
//! progress lives in the hub database (`login_states`), so any replica can finish it; it
//! is single-use, expires in minutes and names its provider. On success the hub finds the
//! person by the identity `(issuer, subject)` (`identity.rs`) — never by e-mail — or
//! creates one when the provider may, refreshes the profile fields that provider owns,
//! and issues its own JWT naming the session and the provider.
//!
//! Linking a second identity is the same flow started from a signed-in session: the
//! state row names that session and person, and the callback must come back to both.
//!
//! Secrets (client secret, codes, tokens, PKCE verifiers) are never logged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Claims, KeyRing, Verifier, DEFAULT_PROVIDER};
use crate::config::{ClientAuth, ServeArgs, UserinfoAuth};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::profile;
use crate::text::{Line, Prose};

pub const AUTHSCH_AUTHORIZE_URL: &str = "https://auth.sch.bme.hu/site/login";
pub const AUTHSCH_TOKEN_URL: &str = "https://auth.sch.bme.hu/oauth2/token";
pub const AUTHSCH_PROFILE_URL: &str = "https://auth.sch.bme.hu/api/profile";
pub const AUTHSCH_SCOPES: &str = "basic displayName sn givenName mail";
pub const OIDC_SCOPES: &str = "openid profile email";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}
impl oauth2::ExtraTokenFields for IdTokenField {}

type TokenResp = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    TokenResp,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Provider endpoints, resolved (discovery happens at the first login, not at start-up,
/// so a provider outage does not stop the hub).
struct Provider {
    client: OAuthClient,
    userinfo_url: Option<String>,
    /// OIDC: verifies ID tokens with the provider's JWKS (from discovery).
    id_tokens: Option<Verifier>,
}

struct Settings {
    policy: Policy,
    issuer_url: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    userinfo_url: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
    client_auth: ClientAuth,
    userinfo_auth: UserinfoAuth,
    redirect_url: String,
}

/// What the hub does with a provider's sign-ins.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `authsch` for the default provider, else the registry's id.
    pub id: String,
    pub display_name: String,
    /// The issuer half of this provider's identities: `authsch` for the default provider
    /// (`users.auth_sch_id`, whatever its endpoints), else its OIDC issuer.
    pub identity_issuer: String,
    /// Profile fields this provider's claims overwrite at every sign-in.
    pub owned: Vec<OwnedField>,
    /// An unknown identity becomes a new person (otherwise it is refused and told to
    /// sign in with a provider the person has and link this one from their profile).
    pub create_people: bool,
    /// Whether its `email` claim is written to the profile (when `email` is owned):
    /// false by default, and only for `email_domains` when those are given.
    pub trust_email: bool,
    pub email_domains: Vec<String>,
    /// Accepted by every realm whose registration lists no providers.
    pub global: bool,
}

/// Profile fields a provider may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OwnedField {
    FirstName,
    LastName,
    Email,
}

impl Policy {
    fn authsch() -> Policy {
        Policy {
            id: DEFAULT_PROVIDER.into(),
            display_name: "AuthSCH".into(),
            identity_issuer: crate::identity::AUTHSCH_ISSUER.into(),
            owned: Vec::new(),
            create_people: true,
            trust_email: false,
            email_domains: Vec::new(),
            global: true,
        }
    }

    /// The e-mail claim, when this provider's e-mail claims are trusted for its domain.
    fn trusted_email<'a>(&self, id: &'a Identity) -> Option<&'a str> {
        if !self.trust_email || id.email_verified == Some(false) {
            return None;
        }
        let email = id.email.as_deref()?;
        let domain = email.rsplit_once('@')?.1.to_ascii_lowercase();
        (self.email_domains.is_empty()
            || self
                .email_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&domain)))
        .then_some(email)
    }
}

/// A provider id: 1-64 of `a-z`, `0-9`, `-`.
pub fn valid_provider_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// One entry of the provider registry (`PEK_LOGIN_PROVIDERS_FILE`, a JSON array).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProviderEntry {
    id: String,
    display_name: String,
    /// OIDC issuer: discovery, ID-token keys, and the issuer of its identities.
    issuer: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    userinfo_url: Option<String>,
    client_id: String,
    client_secret_file: Option<std::path::PathBuf>,
    /// Space-separated; default `openid profile email`.
    scopes: Option<String>,
    #[serde(default)]
    client_auth: Option<String>,
    #[serde(default)]
    userinfo_auth: Option<String>,
    redirect_url: Option<String>,
    #[serde(default)]
    owned_fields: Vec<OwnedField>,
    #[serde(default = "yes")]
    create_people: bool,
    #[serde(default)]
    trust_email: bool,
    #[serde(default)]
    email_domains: Vec<String>,
    #[serde(default = "yes")]
    global: bool,
}

fn yes() -> bool {
    true
}

/// A configured provider: its settings and, once discovered, its endpoints.
struct Configured {
    settings: Settings,
    resolved: tokio::sync::OnceCell<Provider>,
}

/// A sign-in provider as the pages and `/auth/providers` list it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub id: String,
    pub display_name: String,
    /// Accepted by realms that name no providers of their own.
    pub global: bool,
    /// Signs up people it does not know (otherwise only people who linked it).
    pub creates_people: bool,
}

/// What a finished callback did.
pub enum Finished {
    SignedIn(Box<LoginResult>),
    /// An identity was linked to the signed-in person; back to `return_to`.
    Linked {
        return_to: String,
    },
}

/// A login in progress, as its callback takes it.
struct Pending {
    verifier: String,
    nonce: Option<String>,
    return_to: String,
    provider: Option<String>,
    link_user: Option<Uuid>,
    link_session: Option<Uuid>,
}

pub struct Login {
    /// The default provider first.
    providers: Vec<Configured>,
    /// The development login's provider (the default one's policy).
    dev_policy: Policy,
    http: reqwest::Client,
    keys: Arc<KeyRing>,
    token_ttl: u64,
    /// The absolute end of a session, however often its token is renewed.
    session_max: u64,
    state_ttl: u64,
    frontend_url: Option<String>,
    dev_login: bool,
}

/// The signed-in user, as the login answers it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginUser {
    pub id: Uuid,
    /// The provider's user id (AuthSCH `internal_id`, OIDC `sub`).
    pub auth_sch_id: String,
    /// The sign-in provider this session signed in with.
    pub provider: String,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
}

/// A hub token for API clients (browsers also get it as the `pek_session` cookie).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResult {
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
    pub user: LoginUser,
    /// Where the browser is sent after login (path on the frontend).
    #[serde(skip)]
    pub return_to: String,
}

/// A person the development sign-in offers (`GET /auth/dev-login/people`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevPerson {
    /// What to sign in as (their AuthSCH id).
    pub auth_sch_id: String,
    /// Their name, family name first (their id when they have none).
    pub name: String,
}

/// The people the development sign-in offers, at most 50, by id (it can sign in as
/// anyone anyway): `pek local`'s demo people and whoever signed in since. Imported
/// pek-next people are left out (nobody signs in as them).
pub async fn dev_people(db: &Db) -> Result<Vec<DevPerson>> {
    let mut g = db.global().await?;
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query!(
        r#"SELECT u.auth_sch_id AS "auth_sch_id!", p.first_name AS "first_name?",
                  p.last_name AS "last_name?"
           FROM users u LEFT JOIN profiles p ON p.user_id = u.id
          WHERE u.auth_sch_id NOT LIKE 'legacy-pek:%'
          ORDER BY u.auth_sch_id LIMIT 50"#
    )
    .fetch_all(g.conn())
    .await?
    .into_iter()
    .map(|r| (r.auth_sch_id, r.first_name, r.last_name))
    .collect();
    g.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(id, first, last)| {
            let name = [last, first]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let name = if name.trim().is_empty() {
                id.clone()
            } else {
                name
            };
            DevPerson {
                auth_sch_id: id,
                name,
            }
        })
        .collect())
}

/// What we learn about a person from the provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub id: String,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// The provider's `email_verified` claim, when it sends one.
    pub email_verified: Option<bool>,
    /// The Neptun code AuthSCH vouches for (`niifPersonOrgID`): finds a person imported
    /// from pek-next without an AuthSCH id on their first sign-in.
    pub neptun: Option<String>,
}

fn text(v: &serde_json::Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(*k) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

impl Identity {
    /// Maps AuthSCH's profile (`internal_id`, `displayName`, `givenName`, `sn`, `mail`) and
    /// OIDC claims (`sub`, `name`, `given_name`, `family_name`, `email`).
    pub fn from_profile(v: &serde_json::Value) -> Result<Identity> {
        let id = text(v, &["internal_id", "sub"]).ok_or_else(|| {
            Error::BadRequest(
                "the login provider's profile has no user id (internal_id or sub)".into(),
            )
        })?;
        if id.len() > 200 {
            return Err(Error::BadRequest(
                "the login provider's user id is too long".into(),
            ));
        }
        Ok(Identity {
            id,
            display_name: text(v, &["displayName", "name"]),
            first_name: text(v, &["givenName", "given_name"]),
            last_name: text(v, &["sn", "family_name"]),
            email: text(v, &["mail", "email"]),
            email_verified: v.get("email_verified").and_then(|b| b.as_bool()),
            neptun: text(v, &["niifPersonOrgID"]),
        })
    }
}

/// A path on the frontend to return to; anything else (other hosts, `//evil`) becomes `/`.
pub fn safe_return_path(p: Option<&str>) -> String {
    match p {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 1000
                && !p.chars().any(|c| c.is_control()) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn state_hash(state: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, state.as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// Text from a provider for an error message: short and printable.
fn clip(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
}

#[derive(Deserialize)]
struct IdClaims {
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    sub: Option<String>,
}

/// A registry entry's settings, its client secret read.
fn provider_settings(
    e: ProviderEntry,
    default_redirect: Option<String>,
) -> anyhow::Result<Settings> {
    anyhow::ensure!(
        valid_provider_id(&e.id),
        "sign-in provider id {:?}: 1-64 of a-z, 0-9 and '-'",
        e.id
    );
    let name = e.display_name.trim().to_string();
    anyhow::ensure!(
        !name.is_empty() && name.chars().count() <= 100,
        "sign-in provider {}: displayName must be 1-100 characters",
        e.id
    );
    let authsch = e.id == DEFAULT_PROVIDER;
    let identity_issuer = match (&e.issuer, authsch) {
        (_, true) => crate::identity::AUTHSCH_ISSUER.to_string(),
        (Some(i), false) => i.trim_end_matches('/').to_string(),
        (None, false) => anyhow::bail!(
            "sign-in provider {}: `issuer` is required (its identities are (issuer, subject))",
            e.id
        ),
    };
    let client_secret = match &e.client_secret_file {
        Some(p) => {
            let s = std::fs::read_to_string(p)
                .with_context(|| format!("reading the client secret file {}", p.display()))?;
            let s = s.trim().to_string();
            anyhow::ensure!(
                !s.is_empty(),
                "the client secret file {} is empty",
                p.display()
            );
            Some(s)
        }
        None => None,
    };
    let redirect_url = e
        .redirect_url
        .clone()
        .or(default_redirect)
        .with_context(|| {
            format!(
                "sign-in provider {}: needs redirectUrl, PEK_LOGIN_REDIRECT_URL or PEK_PUBLIC_URL",
                e.id
            )
        })?;
    RedirectUrl::new(redirect_url.clone()).context("redirectUrl is not a URL")?;
    let oidc = e.issuer.is_some();
    let client_auth = match e.client_auth.as_deref() {
        None | Some("basic") => ClientAuth::Basic,
        Some("post") => ClientAuth::Post,
        Some(other) => anyhow::bail!("sign-in provider {}: clientAuth {other:?}", e.id),
    };
    let userinfo_auth = match e.userinfo_auth.as_deref() {
        None if oidc => UserinfoAuth::Header,
        None => UserinfoAuth::Query,
        Some("header") => UserinfoAuth::Header,
        Some("query") => UserinfoAuth::Query,
        Some(other) => anyhow::bail!("sign-in provider {}: userinfoAuth {other:?}", e.id),
    };
    let scopes = e
        .scopes
        .clone()
        .unwrap_or_else(|| if oidc { OIDC_SCOPES } else { AUTHSCH_SCOPES }.into());
    Ok(Settings {
        policy: Policy {
            id: e.id.clone(),
            display_name: name,
            identity_issuer,
            owned: e.owned_fields.clone(),
            create_people: e.create_people,
            trust_email: e.trust_email,
            email_domains: e.email_domains.clone(),
            global: e.global,
        },
        issuer_url: e.issuer.clone(),
        authorize_url: e.authorize_url.clone(),
        token_url: e.token_url.clone(),
        userinfo_url: e.userinfo_url.clone(),
        client_id: e.client_id.clone(),
        client_secret,
        scopes: scopes.split_whitespace().map(String::from).collect(),
        client_auth,
        userinfo_auth,
        redirect_url,
    })
}

impl Login {
    pub fn new(args: &ServeArgs, keys: Arc<KeyRing>) -> anyhow::Result<Login> {
        let l = &args.login;
        let public = args
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_string());
        let settings = match &l.login_client_id {
            None => {
                tracing::info!("login disabled: PEK_LOGIN_CLIENT_ID is not set");
                None
            }
            Some(client_id) => {
                let client_secret = match &l.login_client_secret_file {
                    Some(p) => {
                        let s = std::fs::read_to_string(p).with_context(|| {
                            format!("reading the login client secret file {}", p.display())
                        })?;
                        let s = s.trim().to_string();
                        anyhow::ensure!(
                            !s.is_empty(),
                            "the login client secret file {} is empty",
                            p.display()
                        );
                        Some(s)
                    }
                    None => None,
                };
                let redirect_url = match (&l.login_redirect_url, &public) {
                    (Some(r), _) => r.clone(),
                    (None, Some(p)) => format!("{p}/auth/callback"),
                    (None, None) => anyhow::bail!(
                        "login needs PEK_LOGIN_REDIRECT_URL or PEK_PUBLIC_URL (the redirect URI \
                         registered at the provider)"
                    ),
                };
                RedirectUrl::new(redirect_url.clone())
                    .context("PEK_LOGIN_REDIRECT_URL is not a URL")?;
                let oidc = l.login_issuer_url.is_some();
                let scopes = l
                    .login_scopes
                    .clone()
                    .unwrap_or_else(|| if oidc { OIDC_SCOPES } else { AUTHSCH_SCOPES }.into());
                tracing::info!(
                    client_id,
                    issuer = l
                        .login_issuer_url
                        .as_deref()
                        .unwrap_or("(AuthSCH endpoints)"),
                    redirect_url,
                    has_secret = client_secret.is_some(),
                    "login enabled"
                );
                Some(Settings {
                    policy: Policy::authsch(),
                    issuer_url: l.login_issuer_url.clone(),
                    authorize_url: l.login_authorize_url.clone(),
                    token_url: l.login_token_url.clone(),
                    userinfo_url: l.login_userinfo_url.clone(),
                    client_id: client_id.clone(),
                    client_secret,
                    scopes: scopes.split_whitespace().map(String::from).collect(),
                    client_auth: l.login_client_auth,
                    userinfo_auth: l.login_userinfo_auth.unwrap_or(if oidc {
                        UserinfoAuth::Header
                    } else {
                        UserinfoAuth::Query
                    }),
                    redirect_url,
                })
            }
        };
        let mut providers: Vec<Configured> = settings
            .into_iter()
            .map(|settings| Configured {
                settings,
                resolved: tokio::sync::OnceCell::new(),
            })
            .collect();
        let registry = match (&l.login_providers_file, &l.login_providers) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set PEK_LOGIN_PROVIDERS_FILE or PEK_LOGIN_PROVIDERS, not both")
            }
            (Some(p), None) => {
                let raw = std::fs::read_to_string(p).with_context(|| {
                    format!("reading the sign-in provider registry {}", p.display())
                })?;
                serde_json::from_str::<Vec<ProviderEntry>>(&raw).with_context(|| {
                    format!("parsing the sign-in provider registry {}", p.display())
                })?
            }
            (None, Some(raw)) => serde_json::from_str::<Vec<ProviderEntry>>(raw)
                .context("parsing PEK_LOGIN_PROVIDERS (a JSON array of providers)")?,
            (None, None) => Vec::new(),
        };
        for entry in registry {
            let default_redirect = l
                .login_redirect_url
                .clone()
                .or_else(|| public.as_ref().map(|p| format!("{p}/auth/callback")));
            let settings = provider_settings(entry, default_redirect)?;
            let id = settings.policy.id.clone();
            // The registry's `authsch` entry replaces the one PEK_LOGIN_* describe.
            providers.retain(|p| p.settings.policy.id != id || id != DEFAULT_PROVIDER);
            anyhow::ensure!(
                !providers.iter().any(|p| p.settings.policy.id == id),
                "sign-in provider {id:?} is configured twice"
            );
            let issuer = settings.policy.identity_issuer.clone();
            anyhow::ensure!(
                !providers
                    .iter()
                    .any(|p| p.settings.policy.identity_issuer == issuer),
                "two sign-in providers share the issuer {issuer:?}: one identity would \
                 reach people through either"
            );
            tracing::info!(
                provider = id,
                issuer,
                global = settings.policy.global,
                create_people = settings.policy.create_people,
                "sign-in provider configured"
            );
            if id == DEFAULT_PROVIDER {
                providers.insert(
                    0,
                    Configured {
                        settings,
                        resolved: tokio::sync::OnceCell::new(),
                    },
                );
            } else {
                providers.push(Configured {
                    settings,
                    resolved: tokio::sync::OnceCell::new(),
                });
            }
        }
        let dev_policy = providers
            .iter()
            .find(|p| p.settings.policy.id == DEFAULT_PROVIDER)
            .map(|p| p.settings.policy.clone())
            .unwrap_or_else(Policy::authsch);
        if l.dev_login {
            tracing::warn!(
                "PEK_DEV_LOGIN is on: POST /auth/dev-login signs ANYONE in as ANY user without a \
                 password. Never enable it in production."
            );
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the login HTTP client")?;
        Ok(Login {
            providers,
            dev_policy,
            http,
            keys,
            token_ttl: args.jwt_ttl_seconds.max(1),
            session_max: args.session_max_seconds.max(args.jwt_ttl_seconds).max(1),
            state_ttl: l.login_state_ttl_seconds.max(1),
            frontend_url: l
                .login_frontend_url
                .clone()
                .or(public)
                .map(|u| u.trim_end_matches('/').to_string()),
            dev_login: l.dev_login,
        })
    }

    pub fn dev_login_enabled(&self) -> bool {
        self.dev_login
    }

    /// Whether an AuthSCH/OIDC provider is configured (`/auth/login` works).
    pub fn provider_configured(&self) -> bool {
        !self.providers.is_empty()
    }

    /// The configured sign-in providers, the default one first.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.providers
            .iter()
            .map(|p| ProviderInfo {
                id: p.settings.policy.id.clone(),
                display_name: p.settings.policy.display_name.clone(),
                global: p.settings.policy.global,
                creates_people: p.settings.policy.create_people,
            })
            .collect()
    }

    /// The origins the browser is sent to for signing in or linking: each provider's
    /// authorization endpoint (before its discovery, the configured endpoint or the
    /// issuer). The pages' `form-action` must allow them (see `web::page_csp`).
    pub fn authorization_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self
            .providers
            .iter()
            .filter_map(|p| {
                let url = match p.resolved.get() {
                    Some(r) => r.client.auth_uri().as_str().to_string(),
                    None => p
                        .settings
                        .authorize_url
                        .clone()
                        .or_else(|| p.settings.issuer_url.clone())
                        .unwrap_or_else(|| AUTHSCH_AUTHORIZE_URL.to_string()),
                };
                crate::http::origin_of(&url).ok().flatten()
            })
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }

    /// How names map to this hub's identities (see [`crate::identity::Naming`]).
    pub fn naming(&self) -> crate::identity::Naming {
        crate::identity::Naming::new(
            self.providers
                .iter()
                .map(|p| {
                    (
                        p.settings.policy.id.clone(),
                        p.settings.policy.identity_issuer.clone(),
                    )
                })
                .collect(),
        )
    }

    /// The providers realms accept when their registration names none: the global ones,
    /// and the default provider always (development logins and tokens minted with the
    /// key are its sessions).
    pub fn global_providers(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .providers
            .iter()
            .filter(|p| p.settings.policy.global)
            .map(|p| p.settings.policy.id.clone())
            .collect();
        if !ids.iter().any(|i| i == DEFAULT_PROVIDER) && self.dev_policy.global {
            ids.insert(0, DEFAULT_PROVIDER.into());
        }
        ids
    }

    pub fn state_ttl(&self) -> u64 {
        self.state_ttl
    }

    pub fn token_ttl(&self) -> u64 {
        self.token_ttl
    }

    /// A fresh token for the session of `token` while its person is active: once half
    /// of the token's lifetime has passed, a new one for the same session, lasting the
    /// token lifetime again but never past the session's absolute end
    /// (`PEK_SESSION_MAX_SECONDS` after signing in). `None` when no renewal is due, or
    /// the token is not a live session's. Returns the token and its lifetime.
    pub async fn renew(
        &self,
        db: &Db,
        claims: &crate::auth::Claims,
    ) -> Result<Option<(String, u64)>> {
        let Some(sid) = claims.sid else {
            return Ok(None);
        };
        let now = Utc::now().timestamp().max(0) as u64;
        if now < claims.iat + self.token_ttl / 2 {
            return Ok(None);
        }
        let Some(left) = crate::session::time_left(db, sid, claims.sub).await? else {
            return Ok(None);
        };
        let ttl = self.token_ttl.min(left);
        // Nothing gained by a renewal that would end no later than the token itself.
        if ttl == 0 || now + ttl <= claims.exp {
            return Ok(None);
        }
        let token = self
            .keys
            .signer()
            .issue_session(claims.sub, ttl, claims.name.clone(), sid, claims.provider())
            .map_err(Error::Internal)?;
        Ok(Some((token, ttl)))
    }

    /// Where the browser goes after login.
    pub fn frontend_location(&self, return_to: &str) -> String {
        match &self.frontend_url {
            Some(f) => format!("{f}{return_to}"),
            None => return_to.to_string(),
        }
    }

    /// The provider `id` (the default one when `None`).
    fn configured(&self, id: Option<&str>) -> Result<&Configured> {
        if self.providers.is_empty() {
            return Err(Error::NotFound(
                "login is not configured on this hub (set PEK_LOGIN_CLIENT_ID, \
                 PEK_LOGIN_CLIENT_SECRET_FILE and the provider endpoints, or \
                 PEK_LOGIN_PROVIDERS_FILE)"
                    .into(),
            ));
        }
        match id {
            None => Ok(&self.providers[0]),
            Some(id) => self
                .providers
                .iter()
                .find(|p| p.settings.policy.id == id)
                .ok_or_else(|| Error::not_found(format!("sign-in provider {id}"))),
        }
    }

    async fn provider<'a>(&'a self, c: &'a Configured) -> Result<&'a Provider> {
        c.resolved
            .get_or_try_init(|| self.resolve(&c.settings))
            .await
            .map_err(|e| {
                tracing::warn!(provider = c.settings.policy.id, error = %format!("{e:#}"),
                    "login provider discovery failed");
                Error::Unavailable(format!(
                    "the login provider is not reachable or misconfigured: {e:#}"
                ))
            })
    }

    async fn resolve(&self, s: &Settings) -> anyhow::Result<Provider> {
        let discovery = match &s.issuer_url {
            Some(issuer) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let d: Discovery = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .with_context(|| format!("fetching {url}"))?
                    .json()
                    .await
                    .with_context(|| format!("parsing {url}"))?;
                // A provider answering with another issuer's metadata (mix-up) would sign
                // people in under identities of the wrong issuer.
                anyhow::ensure!(
                    d.issuer.trim_end_matches('/') == issuer.trim_end_matches('/'),
                    "{url} names the issuer {:?}, not {issuer:?}",
                    d.issuer
                );
                Some(d)
            }
            None => None,
        };
        let pick = |explicit: &Option<String>, found: Option<&String>, default: &str| {
            explicit
                .clone()
                .or_else(|| found.cloned())
                .unwrap_or_else(|| default.to_string())
        };
        let d = discovery.as_ref();
        let authorize = pick(
            &s.authorize_url,
            d.map(|d| &d.authorization_endpoint),
            AUTHSCH_AUTHORIZE_URL,
        );
        let token = pick(
            &s.token_url,
            d.map(|d| &d.token_endpoint),
            AUTHSCH_TOKEN_URL,
        );
        let userinfo = match (&s.userinfo_url, d) {
            (Some(u), _) => Some(u.clone()),
            (None, Some(d)) => d.userinfo_endpoint.clone(),
            (None, None) => Some(AUTHSCH_PROFILE_URL.to_string()),
        };
        let id_tokens = match d {
            Some(Discovery {
                issuer,
                jwks_uri: Some(jwks),
                ..
            }) => Some(
                Verifier::without_keys(issuer, &s.client_id)
                    .with_jwks(jwks, Duration::from_secs(10))?,
            ),
            _ => None,
        };
        let mut client: OAuthClient = oauth2::Client::new(ClientId::new(s.client_id.clone()))
            .set_auth_uri(AuthUrl::new(authorize).context("authorization endpoint URL")?)
            .set_token_uri(TokenUrl::new(token).context("token endpoint URL")?)
            .set_redirect_uri(RedirectUrl::new(s.redirect_url.clone()).context("redirect URL")?)
            .set_auth_type(match s.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Post => AuthType::RequestBody,
            });
        if let Some(secret) = &s.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        Ok(Provider {
            client,
            userinfo_url: userinfo,
            id_tokens,
        })
    }

    /// Starts a login through `provider` (the default one when `None`): stores state,
    /// PKCE verifier and nonce, and returns the provider's authorization URL and the
    /// state (the caller binds it to the browser by cookie). With `link` (the person and
    /// the session asking), the callback links the identity to that person instead of
    /// signing in, and only when it comes back to that same session.
    pub async fn start(
        &self,
        db: &Db,
        provider: Option<&str>,
        return_to: Option<&str>,
        link: Option<(Uuid, Uuid)>,
    ) -> Result<(String, String)> {
        let c = self.configured(provider)?;
        let s = &c.settings;
        let resolved = self.provider(c).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = random_token();
        let oidc = s.scopes.iter().any(|sc| sc == "openid");
        let nonce = oidc.then(random_token);
        let mut req = resolved
            .client
            .authorize_url(|| CsrfToken::new(state.clone()))
            .add_scopes(s.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if let Some(n) = &nonce {
            req = req.add_extra_param("nonce", n.clone());
        }
        let (url, _) = req.url();
        let mut g = db.global().await?;
        sqlx::query!("DELETE FROM login_states WHERE expires_at < now()")
            .execute(g.conn())
            .await?;
        sqlx::query!(
            "INSERT INTO login_states (state_hash, pkce_verifier, nonce, return_to, expires_at,
                                       provider, link_user, link_session)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6, $7, $8)",
            state_hash(&state),
            verifier.secret(),
            nonce.as_deref(),
            safe_return_path(return_to),
            self.state_ttl as f64,
            s.policy.id,
            link.map(|l| l.0),
            link.map(|l| l.1)
        )
        .execute(g.conn())
        .await?;
        g.commit().await?;
        Ok((url.to_string(), state))
    }

    /// Takes (deletes) a login in progress: unknown, replayed and expired states are 400s.
    async fn take_state(&self, db: &Db, state: &str) -> Result<Pending> {
        let mut g = db.global().await?;
        let row = sqlx::query!(
            r#"DELETE FROM login_states WHERE state_hash = $1
             RETURNING pkce_verifier, nonce, return_to, provider, link_user, link_session,
                       expires_at > now() AS "live!""#,
            state_hash(state)
        )
        .fetch_optional(g.conn())
        .await?;
        g.commit().await?;
        match row {
            None => Err(Error::BadRequest(
                "unknown or already used login state; start again at /auth/login".into(),
            )),
            Some(r) if !r.live => Err(Error::BadRequest(
                "the login took too long and expired; start again at /auth/login".into(),
            )),
            Some(r) => Ok(Pending {
                verifier: r.pkce_verifier,
                nonce: r.nonce,
                return_to: r.return_to,
                provider: r.provider,
                link_user: r.link_user,
                link_session: r.link_session,
            }),
        }
    }

    /// Finishes a login (or a link) at the callback. `current`: the hub session the
    /// browser presents with the callback, if any (verified and live).
    pub async fn finish(
        &self,
        db: &Db,
        cb: &Callback,
        bound_state: Option<&str>,
        current: Option<&Claims>,
    ) -> Result<Finished> {
        let state = cb
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::BadRequest("missing `state` in the login callback".into()))?;
        let taken = self.take_state(db, state).await;
        if let Some(err) = &cb.error {
            return Err(Error::BadRequest(format!(
                "the login provider refused the login: {}{}",
                clip(err),
                cb.error_description
                    .as_deref()
                    .map(|d| format!(" ({})", clip(d)))
                    .unwrap_or_default()
            )));
        }
        let pending = taken?;
        if bound_state != Some(state) {
            return Err(Error::BadRequest(
                "this login was started in another browser, or cookies are blocked; start again \
                 at /auth/login"
                    .into(),
            ));
        }
        // A link comes back to the session and the person that started it, or nowhere:
        // a link proof replayed into another session (or another person's) links nothing.
        if let Some(link_user) = pending.link_user {
            let same = current.is_some_and(|c| {
                c.sub == link_user && c.sid.is_some() && c.sid == pending.link_session
            });
            if !same {
                return Err(Error::BadRequest(
                    "this link was started from another session; sign in and start it again \
                     from your profile page"
                        .into(),
                ));
            }
        }
        let code = cb
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::BadRequest("missing `code` in the login callback".into()))?;
        let c = self.configured(pending.provider.as_deref())?;
        let s = &c.settings;
        let provider = self.provider(c).await?;
        let token = provider
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => Error::BadRequest(format!(
                    "the login provider rejected the authorization code: {}{}",
                    r.error().as_ref(),
                    r.error_description()
                        .map(|d| format!(" ({})", clip(d)))
                        .unwrap_or_default()
                )),
                RequestTokenError::Request(e) => {
                    tracing::warn!(error = %e, "login token request failed");
                    Error::Unavailable(
                        "the login provider's token endpoint is not reachable".into(),
                    )
                }
                RequestTokenError::Parse(e, _) => {
                    tracing::warn!(error = %e, "login token response unreadable");
                    Error::Unavailable("the login provider's token response was unreadable".into())
                }
                RequestTokenError::Other(e) => {
                    tracing::warn!(error = %e, "login token request failed");
                    Error::Unavailable("the login provider's token endpoint failed".into())
                }
            })?;
        let nonce = pending.nonce;
        let id_sub = match (&token.extra_fields().id_token, &nonce) {
            (Some(id_token), _) => Some(
                self.check_id_token(provider, id_token, nonce.as_deref())
                    .await?,
            ),
            (None, Some(_)) if provider.id_tokens.is_some() => {
                return Err(Error::BadRequest(
                    "the login provider returned no ID token for an OpenID Connect login".into(),
                ))
            }
            _ => None,
        };
        let identity = self
            .userinfo(provider, s, token.access_token().secret())
            .await?;
        if let Some(sub) = id_sub.flatten() {
            if provider.id_tokens.is_some() && identity.id != sub {
                return Err(Error::BadRequest(
                    "the login provider's userinfo does not match its ID token".into(),
                ));
            }
        }
        if let Some(user) = pending.link_user {
            let mut g = db.global().await?;
            crate::identity::link(
                &mut g,
                user,
                &s.policy.identity_issuer,
                &identity.id,
                &s.policy.id,
            )
            .await?;
            g.commit().await?;
            tracing::info!(user = %user, provider = s.policy.id, "identity linked");
            return Ok(Finished::Linked {
                return_to: pending.return_to,
            });
        }
        let mut result = self.sign_in_with(db, &s.policy, &identity).await?;
        result.return_to = pending.return_to;
        Ok(Finished::SignedIn(Box::new(result)))
    }

    /// Verifies an ID token (with the provider's JWKS when discovered; otherwise it came
    /// straight from the token endpoint over TLS) and its nonce. Returns its `sub`.
    async fn check_id_token(
        &self,
        provider: &Provider,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Option<String>> {
        let claims: IdClaims = match &provider.id_tokens {
            Some(v) => v.verify_as(id_token).await.map_err(|e| {
                Error::BadRequest(format!("the login provider's ID token was rejected: {e}"))
            })?,
            None => {
                let payload = id_token
                    .split('.')
                    .nth(1)
                    .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
                    .and_then(|p| serde_json::from_slice::<IdClaims>(&p).ok())
                    .ok_or_else(|| {
                        Error::BadRequest("the login provider's ID token is malformed".into())
                    })?;
                payload
            }
        };
        if let Some(expected) = nonce {
            if claims.nonce.as_deref() != Some(expected) {
                return Err(Error::BadRequest(
                    "the login provider's ID token has a wrong nonce (replayed?)".into(),
                ));
            }
        }
        Ok(claims.sub)
    }

    async fn userinfo(&self, p: &Provider, s: &Settings, access_token: &str) -> Result<Identity> {
        let url = p.userinfo_url.as_deref().ok_or_else(|| {
            Error::Unavailable("no userinfo endpoint configured (PEK_LOGIN_USERINFO_URL)".into())
        })?;
        let req = match s.userinfo_auth {
            UserinfoAuth::Header => self.http.get(url).bearer_auth(access_token),
            UserinfoAuth::Query => self.http.get(url).query(&[("access_token", access_token)]),
        };
        let resp = req.send().await.map_err(|e| {
            tracing::warn!(error = %e.without_url(), "login userinfo request failed");
            Error::Unavailable("the login provider's profile endpoint is not reachable".into())
        })?;
        if !resp.status().is_success() {
            return Err(Error::BadRequest(format!(
                "the login provider's profile endpoint answered HTTP {}",
                resp.status()
            )));
        }
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|_| Error::BadRequest("the login provider's profile is not JSON".into()))?;
        Identity::from_profile(&v)
    }

    /// The development login: signs in as AuthSCH id `id.id` (the default provider).
    pub async fn sign_in(&self, db: &Db, id: &Identity) -> Result<LoginResult> {
        let policy = self.dev_policy.clone();
        self.sign_in_with(db, &policy, id).await
    }

    /// Finds the person of `id` at `policy`'s provider — by the identity only, never by
    /// e-mail — or creates one when the provider may (a basic profile on first login),
    /// refreshes the profile fields the provider owns, starts a server-side session and
    /// issues a hub token naming it and the provider.
    async fn sign_in_with(&self, db: &Db, policy: &Policy, id: &Identity) -> Result<LoginResult> {
        let clip100 =
            |s: &Option<String>| s.as_ref().map(|s| s.chars().take(100).collect::<String>());
        let (first, last) = match (&id.first_name, &id.last_name, &id.display_name) {
            (None, None, Some(d)) => match d.rsplit_once(' ') {
                Some((f, l)) => (Some(f.to_string()), Some(l.to_string())),
                None => (Some(d.clone()), None),
            },
            (f, l, _) => (f.clone(), l.clone()),
        };
        let (first, last) = (clip100(&first), clip100(&last));
        let not_linked = || Error::Refused {
            status: axum::http::StatusCode::FORBIDDEN,
            reason: crate::identity::IDENTITY_NOT_LINKED,
            message: format!(
                "nobody here signs in with this {} account yet, and {} does not sign up new \
                 people: sign in with a provider you already use and link {} from your \
                 profile page",
                policy.display_name, policy.display_name, policy.display_name
            ),
        };
        let mut g = db.global().await?;
        let authsch = policy.identity_issuer == crate::identity::AUTHSCH_ISSUER;
        let user = if authsch {
            if let Some(neptun) = &id.neptun {
                profile::claim_imported(&mut g, &id.id, neptun).await?;
            }
            if policy.create_people {
                profile::upsert_user(&mut g, &id.id).await?
            } else {
                let user = crate::identity::find(&mut g, &policy.identity_issuer, &id.id)
                    .await?
                    .ok_or_else(not_linked)?;
                profile::upsert_user(&mut g, &id.id).await?;
                user
            }
        } else {
            match crate::identity::find(&mut g, &policy.identity_issuer, &id.id).await? {
                Some(user) => {
                    crate::identity::touch(&mut g, user, &policy.identity_issuer, &id.id).await?;
                    user
                }
                None if policy.create_people => {
                    crate::identity::create_person(
                        &mut g,
                        &policy.identity_issuer,
                        &id.id,
                        &policy.id,
                    )
                    .await?
                }
                None => return Err(not_linked()),
            }
        };
        let folded = crate::text::fold(
            &[&first, &last]
                .iter()
                .filter_map(|s| s.as_deref())
                .collect::<Vec<_>>()
                .join(" "),
        );
        sqlx::query!(
            "INSERT INTO profiles (user_id, first_name, last_name, search_folded)
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO NOTHING",
            user,
            first.as_deref(),
            last.as_deref(),
            folded
        )
        .execute(g.conn())
        .await?;
        self.refresh_owned(&mut g, user, policy, id, &first, &last)
            .await?;
        if let (true, Some(neptun)) = (authsch, &id.neptun) {
            profile::record_neptun(&mut g, user, neptun).await?;
        }
        let session = crate::session::create(&mut g, user, self.session_max, &policy.id).await?;
        g.commit().await?;
        let name = id.display_name.clone().or_else(|| {
            let n = [&first, &last]
                .iter()
                .filter_map(|s| s.as_deref())
                .collect::<Vec<_>>()
                .join(" ");
            (!n.is_empty()).then_some(n)
        });
        let token = self
            .keys
            .signer()
            .issue_session(user, self.token_ttl, name.clone(), session, &policy.id)
            .map_err(Error::Internal)?;
        let expires_at = Utc::now() + chrono::Duration::seconds(self.token_ttl as i64);
        tracing::info!(user = %user, provider = policy.id, "signed in");
        Ok(LoginResult {
            token,
            token_type: "Bearer",
            expires_at,
            user: LoginUser {
                id: user,
                auth_sch_id: id.id.clone(),
                provider: policy.id.clone(),
                display_name: name,
                first_name: first,
                last_name: last,
                email: id.email.clone(),
            },
            return_to: "/".into(),
        })
    }

    /// Overwrites the profile fields `policy`'s provider owns with what it says now (a
    /// field it does not send is left alone); the others are the person's to edit.
    async fn refresh_owned(
        &self,
        g: &mut crate::db::GlobalTx,
        user: Uuid,
        policy: &Policy,
        id: &Identity,
        first: &Option<String>,
        last: &Option<String>,
    ) -> Result<()> {
        let owns = |f: OwnedField| policy.owned.contains(&f);
        let first = first.as_deref().filter(|_| owns(OwnedField::FirstName));
        let last = last.as_deref().filter(|_| owns(OwnedField::LastName));
        let email = policy
            .trusted_email(id)
            .filter(|e| owns(OwnedField::Email) && e.len() <= 254 && e.contains('@'));
        if first.is_none() && last.is_none() && email.is_none() {
            return Ok(());
        }
        let current = sqlx::query!(
            "SELECT first_name, last_name, nickname FROM profiles WHERE user_id = $1 FOR UPDATE",
            user
        )
        .fetch_one(g.conn())
        .await?;
        let first = first.map(String::from).or(current.first_name);
        let last = last.map(String::from).or(current.last_name);
        let folded = crate::text::fold(
            &[&first, &last, &current.nickname]
                .iter()
                .filter_map(|s| s.as_deref())
                .collect::<Vec<_>>()
                .join(" "),
        );
        sqlx::query!(
            "UPDATE profiles SET first_name = $2, last_name = $3, search_folded = $4,
                    email = COALESCE($5, email), updated_at = now()
              WHERE user_id = $1",
            user,
            first,
            last,
            folded,
            email
        )
        .execute(g.conn())
        .await?;
        Ok(())
    }
}

/// The provider's redirect back to the hub.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Callback {
    pub code: Option<Line<2000>>,
    pub state: Option<Line<500>>,
    /// Set by the provider when the login failed or was refused.
    pub error: Option<Line<200>>,
    pub error_description: Option<Prose<2000>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_authsch_and_oidc_profiles() {
        let a = Identity::from_profile(&serde_json::json!({
            "internal_id": "8b3c1f4e-0000-4000-8000-000000000001",
            "displayName": "Teszt Elek", "givenName": "Elek", "sn": "Teszt",
            "mail": "elek@example.org"
        }))
        .unwrap();
        assert_eq!(a.id, "8b3c1f4e-0000-4000-8000-000000000001");
        assert_eq!(a.first_name.as_deref(), Some("Elek"));
        assert_eq!(a.last_name.as_deref(), Some("Teszt"));
        assert_eq!(a.email.as_deref(), Some("elek@example.org"));
        let o = Identity::from_profile(&serde_json::json!({
            "sub": "u1", "name": "Ada L", "given_name": "Ada", "family_name": "L",
            "email": "ada@example.org"
        }))
        .unwrap();
        assert_eq!(
            (o.id.as_str(), o.display_name.as_deref()),
            ("u1", Some("Ada L"))
        );
        assert!(Identity::from_profile(&serde_json::json!({"name": "x"})).is_err());
    }

    #[test]
    fn return_paths_stay_on_the_frontend() {
        assert_eq!(safe_return_path(Some("/groups?x=1")), "/groups?x=1");
        for bad in ["https://evil.example", "//evil.example", "/\\evil", "x", ""] {
            assert_eq!(safe_return_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_return_path(None), "/");
    }
}
