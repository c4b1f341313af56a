//! Bearer-token verification (reusable by hub and workers) and, for the hub and for
//! tests, token signing. Tokens are asymmetric (EdDSA or RS256): whoever verifies holds
//! only public keys. A token must name its key (`kid`); its algorithm must be the key's
//! own, so `alg: none` and HS256-signed-with-the-public-key forgeries fail.
//!
//! The hub signs with the first key of `PEK_JWT_PRIVATE_KEY_FILE` and publishes all of
//! them at `/.well-known/jwks.json`; workers verify through that JWK Set.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::KeyPair;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's global id.
    pub sub: Uuid,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    /// Not before: checked (with the same leeway as `exp`) wherever a token is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The server-side session a login token belongs to (see `session.rs`); the hub
    /// refuses the token once that session is revoked. Absent on tokens that are not
    /// sessions (per-realm tokens, tokens minted directly with the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// The sign-in provider the session signed in with (`authsch`, or an id from the
    /// provider registry). Absent: the default provider, `authsch` (tokens from before
    /// identity brokering, the development login, tokens minted directly with the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
}

/// The id of the default sign-in provider (AuthSCH, or whatever `PEK_LOGIN_*` names).
pub const DEFAULT_PROVIDER: &str = "authsch";

impl Claims {
    /// The provider this token's session signed in with.
    pub fn provider(&self) -> &str {
        self.idp.as_deref().unwrap_or(DEFAULT_PROVIDER)
    }
}

/// The audience of tokens meant for one realm's worker: `{hub audience}:realm:{realm id}`
/// (e.g. `pek:realm:kszk`). The hub accepts only its own audience (`PEK_JWT_AUDIENCE`); a
/// worker only its realm's, so a token a worker sees is worth nothing anywhere else.
pub fn realm_audience(hub_audience: &str, realm: &str) -> String {
    format!("{hub_audience}:realm:{realm}")
}

#[derive(Clone)]
struct VerifyKey {
    kid: String,
    alg: Algorithm,
    key: DecodingKey,
}

/// Verifies hub tokens. Keys come from PEM files and the hub's own signing keys (static)
/// and, on a worker, from the hub's JWKS (fetched, cached, refreshed periodically and
/// refetched — at most once per `min_refetch`, concurrent misses sharing one fetch — when
/// a token names a key id the cache does not know). The cached keys stay in use while the
/// hub is unreachable.
pub struct Verifier {
    static_keys: Vec<VerifyKey>,
    fetched: std::sync::RwLock<Vec<VerifyKey>>,
    jwks: Option<JwksSource>,
    issuer: String,
    audience: String,
    /// Tokens that passed [`Verifier::verify`], by SHA-256 of the token, for
    /// [`ACCEPTED_TTL`]. A signature check is ~50 µs of CPU and a client sends the same
    /// token for its whole lifetime; a hit still checks expiry, and the cache is emptied
    /// whenever the fetched key set changes, so a withdrawn key stops working at once.
    /// Each entry carries the key-set epoch it was checked under; a hit from an older
    /// epoch counts as a miss, so a check racing a key change cannot outlive it.
    accepted: moka::sync::Cache<[u8; 32], (Claims, u64)>,
    /// Bumped whenever the fetched key set changes.
    key_epoch: AtomicU64,
}

/// How long an accepted token is trusted without checking its signature again.
const ACCEPTED_TTL: Duration = Duration::from_secs(60);
/// Clock skew allowed on `exp` (as in the full check).
const LEEWAY_SECS: u64 = 30;

struct JwksSource {
    url: String,
    client: reqwest::Client,
    min_refetch: Duration,
    /// Held while fetching: concurrent misses wait here and then reuse the result.
    fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Bumped on every successful fetch.
    generation: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

/// Key id of a public key: a digest of its DER encoding, so signer and verifier agree
/// without exchanging anything but the key.
pub fn key_id(public_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_der);
    URL_SAFE_NO_PAD.encode(digest.as_ref())[..16].to_string()
}

fn pem_blocks(pem: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut label = None;
    let mut body = String::new();
    for line in pem.lines().map(str::trim) {
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            label = Some(l.to_string());
            body.clear();
        } else if line.starts_with("-----END ") {
            if let (Some(l), Ok(der)) = (label.take(), STANDARD.decode(body.as_bytes())) {
                out.push((l, der));
            }
        } else if label.is_some() {
            body.push_str(line);
        }
    }
    out
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn public_keys_from_pem(pem: &str) -> anyhow::Result<Vec<VerifyKey>> {
    let mut keys = Vec::new();
    for (label, der) in pem_blocks(pem) {
        anyhow::ensure!(
            label == "PUBLIC KEY" || label == "RSA PUBLIC KEY",
            "expected a PUBLIC KEY block, found {label}"
        );
        let block = to_pem(&label, &der);
        let (alg, key) = if let Ok(k) = DecodingKey::from_ed_pem(block.as_bytes()) {
            (Algorithm::EdDSA, k)
        } else {
            let k = DecodingKey::from_rsa_pem(block.as_bytes())
                .context("public key is neither Ed25519 nor RSA")?;
            (Algorithm::RS256, k)
        };
        keys.push(VerifyKey {
            kid: key_id(&der),
            alg,
            key,
        });
    }
    anyhow::ensure!(!keys.is_empty(), "no PUBLIC KEY block found");
    Ok(keys)
}

fn algorithm_of(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Parses a JWK Set, keeping the asymmetric signature keys that have a key id (others,
/// e.g. symmetric `oct` keys or encryption keys, are ignored). A key without `alg` gets
/// its type's usual algorithm.
fn keys_from_jwks(body: &serde_json::Value) -> anyhow::Result<Vec<VerifyKey>> {
    let list = body
        .get("keys")
        .and_then(|k| k.as_array())
        .context("not a JWK Set (no `keys` array)")?;
    let mut keys = Vec::new();
    for raw in list {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let default_alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
                Algorithm::ES384
            }
            _ => continue, // symmetric or unsupported: never a verification key here
        };
        let alg = match jwk.common.key_algorithm {
            Some(a) => match algorithm_of(a) {
                Some(a) => a,
                None => continue,
            },
            None => default_alg,
        };
        // The declared algorithm must belong to the key's type.
        let family_ok = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            _ => alg == default_alg,
        };
        if !family_ok {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        keys.push(VerifyKey { kid, alg, key });
    }
    anyhow::ensure!(!keys.is_empty(), "the JWK Set has no usable signature key");
    Ok(keys)
}

fn bad(why: &str) -> Error {
    Error::Unauthorized(format!("invalid bearer token: {why}"))
}

impl Verifier {
    /// A verifier without keys: every token is rejected.
    pub fn without_keys(issuer: &str, audience: &str) -> Self {
        Verifier {
            static_keys: Vec::new(),
            fetched: std::sync::RwLock::new(Vec::new()),
            jwks: None,
            issuer: issuer.into(),
            audience: audience.into(),
            accepted: moka::sync::Cache::builder()
                .max_capacity(50_000)
                .time_to_live(ACCEPTED_TTL)
                .build(),
            key_epoch: AtomicU64::new(0),
        }
    }

    /// Public keys in PEM (SPKI `PUBLIC KEY`, Ed25519 or RSA; several blocks allowed, so
    /// a rotated-out key can stay valid until its tokens expire).
    pub fn from_pem(pem: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let mut v = Verifier::without_keys(issuer, audience);
        v.static_keys = public_keys_from_pem(pem)?;
        Ok(v)
    }

    pub fn from_pem_file(path: &Path, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("reading public key file {}", path.display()))?;
        Self::from_pem(&pem, issuer, audience)
            .with_context(|| format!("parsing public key file {}", path.display()))
    }

    /// Also accepts tokens signed by these keys (the hub verifies its own tokens).
    pub fn add_signing_keys(&mut self, ring: &KeyRing) -> anyhow::Result<()> {
        for s in &ring.signers {
            for k in public_keys_from_pem(&s.public_pem())? {
                if !self.static_keys.iter().any(|have| have.kid == k.kid) {
                    self.static_keys.push(k);
                }
            }
        }
        Ok(())
    }

    /// Also accepts the keys of the JWK Set at `url` (a worker: `{hub}/.well-known/jwks.json`).
    /// Nothing is fetched here; call [`Verifier::spawn_refresh`] or let a token trigger it.
    pub fn with_jwks(mut self, url: &str, min_refetch: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the JWKS HTTP client")?;
        self.jwks = Some(JwksSource {
            url: url.to_string(),
            client,
            min_refetch,
            fetch: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            last_error: std::sync::Mutex::new(None),
        });
        Ok(self)
    }

    pub fn has_keys(&self) -> bool {
        !self.static_keys.is_empty() || !self.fetched_keys().is_empty()
    }

    fn fetched_keys(&self) -> Vec<VerifyKey> {
        self.fetched.read().map(|k| k.clone()).unwrap_or_default()
    }

    fn find(&self, kid: &str) -> Option<VerifyKey> {
        if let Some(k) = self.static_keys.iter().find(|k| k.kid == kid) {
            return Some(k.clone());
        }
        self.fetched
            .read()
            .ok()
            .and_then(|keys| keys.iter().find(|k| k.kid == kid).cloned())
    }

    /// Fetches the JWK Set now (the periodic refresh). Errors keep the cached keys.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let Some(src) = &self.jwks else {
            return Ok(());
        };
        let mut last = src.fetch.lock().await;
        *last = Some(Instant::now());
        self.fetch_locked(src).await
    }

    async fn fetch_locked(&self, src: &JwksSource) -> anyhow::Result<()> {
        let result = async {
            let resp = src
                .client
                .get(&src.url)
                .send()
                .await
                .with_context(|| format!("fetching {}", src.url))?;
            anyhow::ensure!(
                resp.status().is_success(),
                "fetching {}: HTTP {}",
                src.url,
                resp.status()
            );
            let body: serde_json::Value = resp
                .json()
                .await
                .with_context(|| format!("reading {}", src.url))?;
            keys_from_jwks(&body).with_context(|| format!("parsing {}", src.url))
        }
        .await;
        match result {
            Ok(keys) => {
                let kids: Vec<String> = keys.iter().map(|k| k.kid.clone()).collect();
                self.replace_fetched(keys);
                src.generation.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut e) = src.last_error.lock() {
                    *e = None;
                }
                tracing::debug!(url = %src.url, ?kids, "fetched the hub's JWKS");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(url = %src.url, error = %format!("{e:#}"),
                    "could not fetch the hub's JWKS; keeping the cached keys");
                if let Ok(mut le) = src.last_error.lock() {
                    *le = Some(format!("{e:#}"));
                }
                Err(e)
            }
        }
    }

    fn replace_fetched(&self, keys: Vec<VerifyKey>) {
        if let Ok(mut w) = self.fetched.write() {
            let same = w.len() == keys.len() && w.iter().zip(&keys).all(|(a, b)| a.kid == b.kid);
            if !same {
                // A key may have been withdrawn: nothing accepted under the old set is
                // trusted without a fresh check.
                self.key_epoch.fetch_add(1, Ordering::SeqCst);
                self.accepted.invalidate_all();
            }
            *w = keys;
        }
    }

    /// An unknown key id: refetch, unless another request already did since `seen`, or
    /// the last attempt was less than `min_refetch` ago.
    async fn refetch_on_miss(&self, seen: u64) {
        let Some(src) = &self.jwks else {
            return;
        };
        let mut last = src.fetch.lock().await;
        if src.generation.load(Ordering::SeqCst) != seen {
            return;
        }
        if last.is_some_and(|t| t.elapsed() < src.min_refetch) {
            return;
        }
        *last = Some(Instant::now());
        let _ = self.fetch_locked(src).await;
    }

    /// Keeps the JWKS fresh in the background: every `period`, and quickly (with backoff)
    /// while no keys could be fetched yet. Stops when the verifier is dropped.
    pub fn spawn_refresh(self: &Arc<Self>, period: Duration) {
        if self.jwks.is_none() {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let fast = Duration::from_millis(500);
            let mut retry = fast;
            loop {
                let Some(v) = weak.upgrade() else { break };
                let ok = v.refresh().await.is_ok();
                drop(v);
                let wait = if ok {
                    retry = fast;
                    period
                } else {
                    let w = retry;
                    retry = (retry * 2).min(Duration::from_secs(30)).min(period);
                    w
                };
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// Verifies against the keys at hand, without fetching.
    pub fn verify_cached(&self, token: &str) -> Result<Claims, Error> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed"))?;
        let kid = header.kid.ok_or_else(|| bad("no key id"))?;
        let key = self.find(&kid).ok_or_else(|| self.unknown_kid())?;
        self.check(token, header.alg, &key)
    }

    /// Verifies a hub token: signature by a known key with that key's algorithm, issuer,
    /// audience, expiry. An unknown key id triggers a bounded JWKS refetch.
    /// Tokens accepted in the last minute are answered from a cache (expiry still checked).
    pub async fn verify(&self, token: &str) -> Result<Claims, Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let epoch = self.key_epoch.load(Ordering::SeqCst);
        if let Some((claims, at)) = self.accepted.get(&key) {
            if at == epoch {
                if claims.exp + LEEWAY_SECS >= now_secs() {
                    return Ok(claims);
                }
                self.accepted.invalidate(&key);
                return Err(bad("expired"));
            }
        }
        let claims: Claims = self.verify_as(token).await?;
        self.accepted.insert(key, (claims.clone(), epoch));
        Ok(claims)
    }

    /// Like [`Verifier::verify`] for any claims type (e.g. an OIDC ID token).
    pub async fn verify_as<T: DeserializeOwned>(&self, token: &str) -> Result<T, Error> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed"))?;
        let kid = header.kid.ok_or_else(|| bad("no key id"))?;
        let key = match self.find(&kid) {
            Some(k) => k,
            None => {
                let seen = self
                    .jwks
                    .as_ref()
                    .map(|s| s.generation.load(Ordering::SeqCst))
                    .unwrap_or(0);
                self.refetch_on_miss(seen).await;
                self.find(&kid).ok_or_else(|| self.unknown_kid())?
            }
        };
        self.check(token, header.alg, &key)
    }

    fn unknown_kid(&self) -> Error {
        match &self.jwks {
            Some(src) if !self.has_keys() => {
                let why = src
                    .last_error
                    .lock()
                    .ok()
                    .and_then(|e| e.clone())
                    .unwrap_or_else(|| "not fetched yet".into());
                Error::Unauthorized(format!(
                    "cannot verify tokens yet: the hub's signing keys ({}) are not available: {why}",
                    src.url
                ))
            }
            _ => bad("unknown key id"),
        }
    }

    fn check<T: DeserializeOwned>(
        &self,
        token: &str,
        alg: Algorithm,
        key: &VerifyKey,
    ) -> Result<T, Error> {
        if alg != key.alg {
            return Err(bad("algorithm does not match the key"));
        }
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        jsonwebtoken::decode::<T>(token, &key.key, &validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind::*;
                match e.kind() {
                    ExpiredSignature => bad("expired"),
                    ImmatureSignature => bad("not valid yet"),
                    InvalidIssuer => bad("wrong issuer"),
                    InvalidAudience => bad("wrong audience"),
                    InvalidSignature => bad("bad signature"),
                    _ => bad("rejected"),
                }
            })
    }
}

/// A signing key of the hub: Ed25519 (EdDSA) or RSA (RS256).
pub struct Signer {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    private_pem: String,
    public_spki: Vec<u8>,
    jwk: serde_json::Value,
    issuer: String,
    audience: String,
}

// SPKI header of an Ed25519 public key (RFC 8410), followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Signer {
    pub fn generate(issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
        Self::from_pkcs8(pkcs8.as_ref(), issuer, audience)
    }

    /// A new RSA key (slow; tests and tools only).
    pub fn generate_rsa(bits: usize, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits)
            .context("generating an RSA key")?;
        Self::from_rsa(&key, issuer, audience)
    }

    /// An Ed25519 key in PKCS#8 DER.
    pub fn from_pkcs8(pkcs8: &[u8], issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| anyhow::anyhow!("invalid Ed25519 PKCS#8 key: {e}"))?;
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        let kid = key_id(&spki);
        let jwk = serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            "kid": kid,
            "alg": "EdDSA",
            "use": "sig",
        });
        Ok(Signer {
            kid,
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8),
            private_pem: to_pem("PRIVATE KEY", pkcs8),
            public_spki: spki,
            jwk,
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }

    fn from_rsa(key: &rsa::RsaPrivateKey, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::EncodePublicKey;
        use rsa::traits::PublicKeyParts;
        let pkcs1 = key
            .to_pkcs1_der()
            .context("encoding the RSA key as PKCS#1")?;
        let public = key.to_public_key();
        let spki = public
            .to_public_key_der()
            .context("encoding the RSA public key")?;
        let kid = key_id(spki.as_bytes());
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            "kid": kid,
            "alg": "RS256",
            "use": "sig",
        });
        Ok(Signer {
            kid,
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            private_pem: to_pem("RSA PRIVATE KEY", pkcs1.as_bytes()),
            public_spki: spki.as_bytes().to_vec(),
            jwk,
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }

    /// Every private key in a PEM text, in order: `RSA PRIVATE KEY` (PKCS#1, what Helm's
    /// `genPrivateKey "rsa"` makes) or `PRIVATE KEY` (PKCS#8, RSA or Ed25519).
    pub fn all_from_pem(pem: &str, issuer: &str, audience: &str) -> anyhow::Result<Vec<Self>> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let mut out = Vec::new();
        for (i, (label, der)) in pem_blocks(pem).into_iter().enumerate() {
            let n = i + 1;
            let signer = match label.as_str() {
                "RSA PRIVATE KEY" => {
                    let key = rsa::RsaPrivateKey::from_pkcs1_der(&der)
                        .map_err(|_| anyhow::anyhow!("key {n}: not a valid PKCS#1 RSA key"))?;
                    Self::from_rsa(&key, issuer, audience)?
                }
                "PRIVATE KEY" => match Self::from_pkcs8(&der, issuer, audience) {
                    Ok(s) => s,
                    Err(_) => {
                        let key = rsa::RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| {
                            anyhow::anyhow!("key {n}: PKCS#8 key is neither Ed25519 nor RSA")
                        })?;
                        Self::from_rsa(&key, issuer, audience)?
                    }
                },
                other => anyhow::bail!(
                    "key {n}: unsupported PEM block {other:?} (expected RSA PRIVATE KEY or PRIVATE KEY)"
                ),
            };
            if let Signer {
                alg: Algorithm::RS256,
                ..
            } = &signer
            {
                // ring refuses to sign with RSA keys under 2048 bits; fail at start, not
                // at the first login.
                signer
                    .sign(&Claims {
                        sub: Uuid::nil(),
                        iss: issuer.into(),
                        aud: audience.into(),
                        exp: 0,
                        iat: 0,
                        nbf: None,
                        name: None,
                        sid: None,
                        idp: None,
                    })
                    .with_context(|| {
                        format!("key {n}: cannot sign with it (RSA keys need ≥ 2048 bits)")
                    })?;
            }
            out.push(signer);
        }
        anyhow::ensure!(!out.is_empty(), "no private key block found");
        Ok(out)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn public_pem(&self) -> String {
        to_pem("PUBLIC KEY", &self.public_spki)
    }

    /// The private key in PEM (PKCS#8 for Ed25519, PKCS#1 for RSA), for writing key files.
    pub fn private_pem(&self) -> String {
        self.private_pem.clone()
    }

    /// The public key as a JWK (kty, kid, alg, use=sig, n/e or crv/x).
    pub fn jwk(&self) -> serde_json::Value {
        self.jwk.clone()
    }

    /// Signs claims as given (tests use this to build expired or misaddressed tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    pub fn issue(&self, user: Uuid, ttl_secs: u64) -> anyhow::Result<String> {
        self.issue_named(user, ttl_secs, None)
    }

    pub fn issue_named(
        &self,
        user: Uuid,
        ttl_secs: u64,
        name: Option<String>,
    ) -> anyhow::Result<String> {
        self.issue_to(user, &self.audience, ttl_secs, name)
    }

    /// A token for `audience` (e.g. [`realm_audience`]), valid from now for `ttl_secs`.
    pub fn issue_to(
        &self,
        user: Uuid,
        audience: &str,
        ttl_secs: u64,
        name: Option<String>,
    ) -> anyhow::Result<String> {
        self.issue_claims(user, audience, ttl_secs, name, None, None)
    }

    /// A login token of session `sid` (the hub's audience), which signed in through
    /// `provider`.
    pub fn issue_session(
        &self,
        user: Uuid,
        ttl_secs: u64,
        name: Option<String>,
        sid: Uuid,
        provider: &str,
    ) -> anyhow::Result<String> {
        let idp = (provider != DEFAULT_PROVIDER).then(|| provider.to_string());
        self.issue_claims(user, &self.audience, ttl_secs, name, Some(sid), idp)
    }

    fn issue_claims(
        &self,
        user: Uuid,
        audience: &str,
        ttl_secs: u64,
        name: Option<String>,
        sid: Option<Uuid>,
        idp: Option<String>,
    ) -> anyhow::Result<String> {
        let now = now_secs();
        self.sign(&Claims {
            sub: user,
            iss: self.issuer.clone(),
            aud: audience.to_string(),
            exp: now + ttl_secs,
            iat: now,
            nbf: Some(now),
            name,
            sid,
            idp,
        })
    }

    /// The audience this key issues login tokens for (the hub's).
    pub fn audience(&self) -> &str {
        &self.audience
    }
}

/// The hub's signing keys: the first signs, all are published in the JWKS (rotation:
/// prepend the new key, drop the old one once its tokens have expired).
pub struct KeyRing {
    signers: Vec<Signer>,
    ephemeral: bool,
}

impl KeyRing {
    pub fn from_pem_file(path: &Path, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("reading private key file {}", path.display()))?;
        let signers = Signer::all_from_pem(&pem, issuer, audience)
            .with_context(|| format!("parsing private key file {}", path.display()))?;
        Ok(KeyRing {
            signers,
            ephemeral: false,
        })
    }

    /// A key that lives as long as the process (development without a key file).
    pub fn ephemeral(issuer: &str, audience: &str) -> anyhow::Result<Self> {
        Ok(KeyRing {
            signers: vec![Signer::generate(issuer, audience)?],
            ephemeral: true,
        })
    }

    pub fn from_signers(signers: Vec<Signer>) -> anyhow::Result<Self> {
        anyhow::ensure!(!signers.is_empty(), "a key ring needs a key");
        Ok(KeyRing {
            signers,
            ephemeral: false,
        })
    }

    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// The key that signs new tokens.
    pub fn signer(&self) -> &Signer {
        &self.signers[0]
    }

    pub fn kids(&self) -> Vec<String> {
        self.signers.iter().map(|s| s.kid.clone()).collect()
    }

    /// The public JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.signers.iter().map(Signer::jwk).collect::<Vec<_>>() })
    }
}

/// Tokens the hub sends to a realm's worker when it forwards a call or fans out: signed
/// with the hub's key for one user and one realm ([`realm_audience`]), short-lived, and
/// reused per (user, realm, sign-in provider) until shortly before they expire, so
/// forwarding costs no signature per call (and the worker's accepted-token cache hits too).
///
/// This is also the one place where a realm's choice of sign-in providers is enforced:
/// every way a person reaches a worker realm through the hub — the forwarder, the
/// fan-out, the pages, a bearer token or an existing session cookie — needs a realm
/// token, and [`RealmTokens::token`] mints one only for a session whose provider the
/// realm accepts. (Realms hosted by the hub itself accept every global provider: only a
/// worker realm's registration names providers.)
pub struct RealmTokens {
    keys: Arc<KeyRing>,
    hub_audience: String,
    ttl_secs: u64,
    /// The providers a realm without a list of its own accepts.
    global_providers: Vec<String>,
    /// Display names of the hub's providers, by id.
    names: std::collections::HashMap<String, String>,
    /// The hub's own verifier: the provider is read from the verified hub token itself.
    verifier: Arc<Verifier>,
    minted: moka::sync::Cache<(Uuid, String, String), Arc<str>>,
}

/// Why no realm token was minted: the session signed in with a provider the realm does
/// not accept. `providers` are the ones it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderNotAccepted {
    pub provider: String,
    pub providers: Vec<String>,
    /// The display names of `providers` (the id where the hub has no such provider).
    pub names: Vec<String>,
}

/// The stable `reason` of the 403 that says "sign in with one of `providers` to see this".
pub const PROVIDER_NOT_ACCEPTED: &str = "provider_not_accepted";

impl RealmTokens {
    /// `ttl_secs`: lifetime of a minted token (at least 10 s). A token is reused for its
    /// first part only, so one that is handed out still has at least a quarter of its
    /// lifetime (and at most 30 s less than all of it) left. `global_providers`: what a
    /// realm accepts when its registration names no providers; `names`: the display
    /// names of the hub's providers by id.
    pub fn new(
        keys: Arc<KeyRing>,
        hub_audience: &str,
        ttl_secs: u64,
        global_providers: Vec<String>,
        names: std::collections::HashMap<String, String>,
        verifier: Arc<Verifier>,
    ) -> Self {
        let ttl_secs = ttl_secs.max(10);
        let reuse = ttl_secs - (ttl_secs / 4).clamp(1, 30);
        RealmTokens {
            keys,
            hub_audience: hub_audience.to_string(),
            ttl_secs,
            global_providers,
            names,
            verifier,
            minted: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(reuse))
                .build(),
        }
    }

    /// The providers `realm` accepts: its own list, else every global one.
    pub fn accepted<'a>(&'a self, realm_providers: Option<&'a [String]>) -> &'a [String] {
        realm_providers.unwrap_or(&self.global_providers)
    }

    /// The claims of a hub token, verified here (the provider it names is then the
    /// hub's own word), for [`RealmTokens::mint`]: the token for its holder at a realm's
    /// worker.
    pub async fn verify(&self, hub_token: &str) -> Result<Claims, TokenRefusal> {
        self.verifier
            .verify(hub_token)
            .await
            .map_err(TokenRefusal::Internal)
    }

    /// The token for the holder of `hub_claims` (a verified hub session or login token)
    /// at `realm`'s worker, when `realm` (whose registration names `realm_providers`)
    /// accepts the provider that session signed in with. The check comes before the
    /// reuse of minted tokens, which are kept per provider too: a token minted for one
    /// session of a person is never handed to their session of another provider.
    pub fn mint(
        &self,
        hub_claims: &Claims,
        realm: &str,
        realm_providers: Option<&[String]>,
    ) -> Result<Arc<str>, TokenRefusal> {
        let provider = hub_claims.provider();
        let accepted = self.accepted(realm_providers);
        if !accepted.iter().any(|p| p == provider) {
            return Err(TokenRefusal::Provider(ProviderNotAccepted {
                provider: provider.to_string(),
                providers: accepted.to_vec(),
                names: accepted
                    .iter()
                    .map(|p| self.names.get(p).cloned().unwrap_or_else(|| p.clone()))
                    .collect(),
            }));
        }
        let user = hub_claims.sub;
        self.minted
            .try_get_with((user, realm.to_string(), provider.to_string()), || {
                self.keys
                    .signer()
                    .issue_claims(
                        user,
                        &realm_audience(&self.hub_audience, realm),
                        self.ttl_secs,
                        None,
                        None,
                        hub_claims.idp.clone(),
                    )
                    .map(Arc::from)
            })
            .map_err(|e| {
                TokenRefusal::Internal(Error::Internal(anyhow::anyhow!(
                    "signing a realm token: {e}"
                )))
            })
    }
}

/// No realm token: the realm does not accept the session's provider, or signing failed.
#[derive(Debug)]
pub enum TokenRefusal {
    Provider(ProviderNotAccepted),
    Internal(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_and_forgeries_do_not() {
        let signer = Signer::generate("pek-hub", "pek").unwrap();
        let verifier = Verifier::from_pem(&signer.public_pem(), "pek-hub", "pek").unwrap();
        let user = Uuid::new_v4();
        let token = signer.issue(user, 60).unwrap();
        assert_eq!(verifier.verify_cached(&token).unwrap().sub, user);

        let other = Signer::generate("pek-hub", "pek").unwrap();
        assert!(verifier
            .verify_cached(&other.issue(user, 60).unwrap())
            .is_err());

        let now = now_secs();
        let mk = |iss: &str, aud: &str, exp: u64| Claims {
            sub: user,
            iss: iss.into(),
            aud: aud.into(),
            exp,
            iat: now,
            nbf: None,
            name: None,
            sid: None,
            idp: None,
        };
        for claims in [
            mk("pek-hub", "pek", now - 3600),
            mk("evil", "pek", now + 60),
            mk("pek-hub", "other", now + 60),
        ] {
            assert!(verifier
                .verify_cached(&signer.sign(&claims).unwrap())
                .is_err());
        }

        // alg none, with the right kid
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            signer.kid()
        ));
        let body =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&mk("pek-hub", "pek", now + 60)).unwrap());
        assert!(verifier
            .verify_cached(&format!("{header}.{body}."))
            .is_err());

        // HS256 keyed with the public key bytes
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(signer.kid().to_string());
        let forged = jsonwebtoken::encode(
            &h,
            &mk("pek-hub", "pek", now + 60),
            &EncodingKey::from_secret(signer.public_pem().as_bytes()),
        )
        .unwrap();
        assert!(verifier.verify_cached(&forged).is_err());
    }

    #[tokio::test]
    async fn accepted_tokens_are_cached_but_expiry_and_withdrawn_keys_still_count() {
        let signer = Signer::generate("pek-hub", "pek").unwrap();
        let verifier = Verifier::without_keys("pek-hub", "pek");
        verifier.replace_fetched(public_keys_from_pem(&signer.public_pem()).unwrap());
        let user = Uuid::new_v4();
        let token = signer.issue(user, 60).unwrap();
        let digest = |t: &str| {
            let mut k = [0u8; 32];
            k.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()).as_ref());
            k
        };
        assert_eq!(verifier.verify(&token).await.unwrap().sub, user);
        assert!(verifier.accepted.contains_key(&digest(&token)));
        assert_eq!(verifier.verify(&token).await.unwrap().sub, user);

        // Rejected tokens are never remembered.
        let other = Signer::generate("pek-hub", "pek").unwrap();
        let forged = other.issue(user, 60).unwrap();
        for _ in 0..2 {
            assert!(verifier.verify(&forged).await.is_err());
        }
        assert!(!verifier.accepted.contains_key(&digest(&forged)));

        // A hit past its expiry (plus leeway) is refused and dropped.
        let mut stale = verifier.verify(&token).await.unwrap();
        stale.exp = now_secs() - LEEWAY_SECS - 1;
        let epoch = verifier.key_epoch.load(Ordering::SeqCst);
        verifier.accepted.insert(digest(&token), (stale, epoch));
        let err = verifier.verify(&token).await.unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
        assert!(!verifier.accepted.contains_key(&digest(&token)));

        // Same key set again: cache kept. Key withdrawn: the cached token fails at once.
        let token = signer.issue(user, 60).unwrap();
        verifier.verify(&token).await.unwrap();
        verifier.replace_fetched(public_keys_from_pem(&signer.public_pem()).unwrap());
        assert!(verifier.accepted.contains_key(&digest(&token)));
        verifier.replace_fetched(public_keys_from_pem(&other.public_pem()).unwrap());
        assert!(verifier.verify(&token).await.is_err());

        // An entry checked under an older key set (a check that raced the change) is
        // not trusted.
        verifier.replace_fetched(public_keys_from_pem(&signer.public_pem()).unwrap());
        let token = signer.issue(user, 60).unwrap();
        let claims = verifier.verify(&token).await.unwrap();
        let epoch = verifier.key_epoch.load(Ordering::SeqCst);
        verifier.replace_fetched(public_keys_from_pem(&other.public_pem()).unwrap());
        verifier.accepted.insert(digest(&token), (claims, epoch));
        assert!(verifier.verify(&token).await.is_err());
    }

    #[test]
    fn tokens_not_valid_yet_are_refused() {
        let signer = Signer::generate("pek-hub", "pek").unwrap();
        let verifier = Verifier::from_pem(&signer.public_pem(), "pek-hub", "pek").unwrap();
        let now = now_secs();
        let mk = |nbf: Option<u64>| Claims {
            sub: Uuid::new_v4(),
            iss: "pek-hub".into(),
            aud: "pek".into(),
            exp: now + 3600,
            iat: now,
            nbf,
            name: None,
            sid: None,
            idp: None,
        };
        let err = verifier
            .verify_cached(&signer.sign(&mk(Some(now + 600))).unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("not valid yet"), "{err}");
        // Within the clock-skew leeway, and absent, it is fine.
        for nbf in [Some(now + 5), Some(now - 5), None] {
            assert!(verifier
                .verify_cached(&signer.sign(&mk(nbf)).unwrap())
                .is_ok());
        }
    }

    #[test]
    fn realm_tokens_are_per_realm_short_lived_and_reused() {
        let ring = Arc::new(
            KeyRing::from_signers(vec![Signer::generate("pek-hub", "pek").unwrap()]).unwrap(),
        );
        let tokens = RealmTokens::new(
            ring.clone(),
            "pek",
            120,
            vec![DEFAULT_PROVIDER.into()],
            Default::default(),
            Arc::new(Verifier::without_keys("pek-hub", "pek")),
        );
        let user = Uuid::new_v4();
        let session = |user: Uuid, idp: Option<&str>| Claims {
            sub: user,
            iss: "pek-hub".into(),
            aud: "pek".into(),
            exp: now_secs() + 60,
            iat: now_secs(),
            nbf: None,
            name: None,
            sid: Some(Uuid::new_v4()),
            idp: idp.map(String::from),
        };
        let me = session(user, None);
        let a = tokens.mint(&me, "kszk", None).unwrap();
        assert_eq!(a, tokens.mint(&me, "kszk", None).unwrap(), "reused");
        assert_ne!(a, tokens.mint(&me, "kir-dev", None).unwrap());
        assert_ne!(
            a,
            tokens
                .mint(&session(Uuid::new_v4(), None), "kszk", None)
                .unwrap()
        );
        let at = |aud: &str| {
            let mut v = Verifier::without_keys("pek-hub", aud);
            v.add_signing_keys(&ring).unwrap();
            v
        };
        let claims = at("pek:realm:kszk").verify_cached(&a).unwrap();
        assert_eq!(claims.sub, user);
        assert!(claims.exp - claims.iat <= 120 && claims.nbf.is_some());
        assert!(at("pek").verify_cached(&a).is_err(), "the hub refuses it");
        assert!(at("pek:realm:kir-dev").verify_cached(&a).is_err());
    }

    #[test]
    fn realm_tokens_only_for_sessions_of_a_provider_the_realm_accepts() {
        let ring = Arc::new(
            KeyRing::from_signers(vec![Signer::generate("pek-hub", "pek").unwrap()]).unwrap(),
        );
        let tokens = RealmTokens::new(
            ring,
            "pek",
            120,
            vec![DEFAULT_PROVIDER.into(), "b".into()],
            Default::default(),
            Arc::new(Verifier::without_keys("pek-hub", "pek")),
        );
        let user = Uuid::new_v4();
        let session = |idp: Option<&str>| Claims {
            sub: user,
            iss: "pek-hub".into(),
            aud: "pek".into(),
            exp: now_secs() + 60,
            iat: now_secs(),
            nbf: None,
            name: None,
            sid: Some(Uuid::new_v4()),
            idp: idp.map(String::from),
        };
        let only_b = vec!["b".to_string()];
        // Signed in with B first: a token is minted (and kept for reuse)...
        assert!(tokens
            .mint(&session(Some("b")), "kszk", Some(&only_b))
            .is_ok());
        // ...which the same person's AuthSCH session does not get.
        match tokens.mint(&session(None), "kszk", Some(&only_b)) {
            Err(TokenRefusal::Provider(p)) => {
                assert_eq!(
                    (p.provider.as_str(), p.providers),
                    ("authsch", only_b.clone())
                )
            }
            other => panic!("an AuthSCH session got a token for a B-only realm: {other:?}"),
        }
        // A realm without a list accepts every global provider.
        assert!(tokens.mint(&session(None), "kszk", None).is_ok());
        assert!(tokens.mint(&session(Some("b")), "kszk", None).is_ok());
        assert!(tokens.mint(&session(Some("x")), "kszk", None).is_err());
    }

    fn ring_verifier(ring: &KeyRing) -> Verifier {
        let mut v = Verifier::without_keys("pek-hub", "pek");
        v.static_keys = keys_from_jwks(&ring.jwks()).unwrap();
        v
    }

    #[test]
    fn rsa_pkcs1_and_pkcs8_keys_sign_and_verify_through_the_jwks() {
        use rsa::pkcs8::EncodePrivateKey;
        let rsa = Signer::generate_rsa(2048, "pek-hub", "pek").unwrap();
        assert!(rsa
            .private_pem()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let ed = Signer::generate("pek-hub", "pek").unwrap();
        // The same RSA key as PKCS#8.
        let key = {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let (_, der) = pem_blocks(&rsa.private_pem()).remove(0);
            rsa::RsaPrivateKey::from_pkcs1_der(&der).unwrap()
        };
        let pkcs8 = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let from8 = Signer::all_from_pem(&pkcs8, "pek-hub", "pek").unwrap();
        assert_eq!(from8[0].kid(), rsa.kid());
        assert_eq!(from8[0].algorithm(), Algorithm::RS256);

        let file = format!("{}{}", rsa.private_pem(), ed.private_pem());
        let signers = Signer::all_from_pem(&file, "pek-hub", "pek").unwrap();
        assert_eq!(signers.len(), 2);
        let ring = KeyRing::from_signers(signers).unwrap();
        assert_eq!(ring.signer().kid(), rsa.kid(), "the first key signs");
        let jwks = ring.jwks();
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
        assert_eq!(jwks["keys"][0]["use"], "sig");
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        assert_eq!(jwks["keys"][1]["kty"], "OKP");
        assert_eq!(jwks["keys"][1]["crv"], "Ed25519");
        assert_eq!(jwks["keys"][1]["kid"], ed.kid());
        assert!(!jwks.to_string().contains("\"d\""), "no private parts");

        let v = ring_verifier(&ring);
        let user = Uuid::new_v4();
        let t = ring.signer().issue(user, 60).unwrap();
        assert_eq!(v.verify_cached(&t).unwrap().sub, user);
        assert_eq!(
            v.verify_cached(&ed.issue(user, 60).unwrap()).unwrap().sub,
            user
        );
        // The PEM verifier of the same RSA key agrees on the kid.
        let pemv = Verifier::from_pem(&rsa.public_pem(), "pek-hub", "pek").unwrap();
        assert!(pemv.verify_cached(&t).is_ok());

        // HS256 keyed with the RSA public key's bytes.
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(rsa.kid().to_string());
        let now = now_secs();
        let claims = Claims {
            sub: user,
            iss: "pek-hub".into(),
            aud: "pek".into(),
            exp: now + 60,
            iat: now,
            nbf: None,
            name: None,
            sid: None,
            idp: None,
        };
        for secret in [rsa.public_pem().into_bytes(), rsa.public_spki.clone()] {
            let forged =
                jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&secret)).unwrap();
            assert!(v.verify_cached(&forged).is_err());
        }
    }

    #[test]
    fn jwks_parsing_skips_symmetric_and_mismatched_keys() {
        let ed = Signer::generate("pek-hub", "pek").unwrap();
        let mut ed_as_rs = ed.jwk();
        ed_as_rs["alg"] = "RS256".into();
        ed_as_rs["kid"] = "mismatch".into();
        let body = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "sym", "alg": "HS256"},
            ed_as_rs,
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            ed.jwk(),
        ]});
        let keys = keys_from_jwks(&body).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid, ed.kid());
        assert!(keys_from_jwks(&serde_json::json!({"keys": []})).is_err());
        assert!(keys_from_jwks(&serde_json::json!({"nope": 1})).is_err());
    }

    #[test]
    fn bad_private_key_files_are_refused_with_a_reason() {
        let e = Signer::all_from_pem("nothing here", "i", "a")
            .err()
            .unwrap();
        assert!(e.to_string().contains("no private key"), "{e}");
        let ed = Signer::generate("i", "a").unwrap();
        let e = Signer::all_from_pem(&ed.public_pem(), "i", "a")
            .err()
            .unwrap();
        assert!(e.to_string().contains("unsupported PEM block"), "{e}");
    }
}
