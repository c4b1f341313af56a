//! Hub login: OAuth2 authorization code flow with PKCE (S256), `state` and, for OIDC
//! providers, `nonce`, against AuthSCH by default or any OIDC-style provider. The login
//! in progress lives in the hub database (`login_states`), so any replica can finish it;
//! it is single-use and expires in minutes. On success the hub upserts the user by their
//! provider id (`users.auth_sch_id`), creates a basic profile on first login, sets
//! `last_login` and issues its own JWT.
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

use crate::auth::{KeyRing, Verifier};
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

pub struct Login {
    settings: Option<Settings>,
    provider: tokio::sync::OnceCell<Provider>,
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

/// What we learn about a person from the provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub id: String,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
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
            settings,
            provider: tokio::sync::OnceCell::new(),
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
        self.settings.is_some()
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
            .issue_session(claims.sub, ttl, claims.name.clone(), sid)
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

    fn settings(&self) -> Result<&Settings> {
        self.settings.as_ref().ok_or_else(|| {
            Error::NotFound(
                "login is not configured on this hub (set PEK_LOGIN_CLIENT_ID, \
                 PEK_LOGIN_CLIENT_SECRET_FILE and the provider endpoints)"
                    .into(),
            )
        })
    }

    async fn provider(&self) -> Result<&Provider> {
        let s = self.settings()?;
        self.provider
            .get_or_try_init(|| self.resolve(s))
            .await
            .map_err(|e| {
                tracing::warn!(error = %format!("{e:#}"), "login provider discovery failed");
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

    /// Starts a login: stores state, PKCE verifier and nonce, and returns the provider's
    /// authorization URL and the state (the caller binds it to the browser by cookie).
    pub async fn start(&self, db: &Db, return_to: Option<&str>) -> Result<(String, String)> {
        let s = self.settings()?;
        let provider = self.provider().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = random_token();
        let oidc = s.scopes.iter().any(|sc| sc == "openid");
        let nonce = oidc.then(random_token);
        let mut req = provider
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
            "INSERT INTO login_states (state_hash, pkce_verifier, nonce, return_to, expires_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
            state_hash(&state),
            verifier.secret(),
            nonce.as_deref(),
            safe_return_path(return_to),
            self.state_ttl as f64
        )
        .execute(g.conn())
        .await?;
        g.commit().await?;
        Ok((url.to_string(), state))
    }

    /// Takes (deletes) a login in progress: unknown, replayed and expired states are 400s.
    async fn take_state(&self, db: &Db, state: &str) -> Result<(String, Option<String>, String)> {
        let mut g = db.global().await?;
        let row: Option<(String, Option<String>, String, bool)> = sqlx::query!(
            r#"DELETE FROM login_states WHERE state_hash = $1
             RETURNING pkce_verifier, nonce, return_to, expires_at > now() AS "live!""#,
            state_hash(state)
        )
        .fetch_optional(g.conn())
        .await?
        .map(|r| (r.pkce_verifier, r.nonce, r.return_to, r.live));
        g.commit().await?;
        match row {
            None => Err(Error::BadRequest(
                "unknown or already used login state; start again at /auth/login".into(),
            )),
            Some((_, _, _, false)) => Err(Error::BadRequest(
                "the login took too long and expired; start again at /auth/login".into(),
            )),
            Some((verifier, nonce, return_to, true)) => Ok((verifier, nonce, return_to)),
        }
    }

    /// Finishes a login at the callback.
    pub async fn finish(
        &self,
        db: &Db,
        cb: &Callback,
        bound_state: Option<&str>,
    ) -> Result<LoginResult> {
        let s = self.settings()?;
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
        let (verifier, nonce, return_to) = taken?;
        if bound_state != Some(state) {
            return Err(Error::BadRequest(
                "this login was started in another browser, or cookies are blocked; start again \
                 at /auth/login"
                    .into(),
            ));
        }
        let code = cb
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::BadRequest("missing `code` in the login callback".into()))?;
        let provider = self.provider().await?;
        let token = provider
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
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
        let mut result = self.sign_in(db, &identity).await?;
        result.return_to = return_to;
        Ok(result)
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

    /// Upserts the user (basic profile on first login, last_login), starts a server-side
    /// session and issues a hub token naming it.
    pub async fn sign_in(&self, db: &Db, id: &Identity) -> Result<LoginResult> {
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
        let mut g = db.global().await?;
        if let Some(neptun) = &id.neptun {
            profile::claim_imported(&mut g, &id.id, neptun).await?;
        }
        let user = profile::upsert_user(&mut g, &id.id).await?;
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
        if let Some(neptun) = &id.neptun {
            profile::record_neptun(&mut g, user, neptun).await?;
        }
        let session = crate::session::create(&mut g, user, self.session_max).await?;
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
            .issue_session(user, self.token_ttl, name.clone(), session)
            .map_err(Error::Internal)?;
        let expires_at = Utc::now() + chrono::Duration::seconds(self.token_ttl as i64);
        tracing::info!(user = %user, "signed in");
        Ok(LoginResult {
            token,
            token_type: "Bearer",
            expires_at,
            user: LoginUser {
                id: user,
                auth_sch_id: id.id.clone(),
                display_name: name,
                first_name: first,
                last_name: last,
                email: id.email.clone(),
            },
            return_to: "/".into(),
        })
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
