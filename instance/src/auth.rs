//! Bearer-token verification (reusable by hub and workers) and, for the hub and for
//! tests, token signing. Tokens are asymmetric (EdDSA or RS256): whoever verifies holds
//! only public keys. A token must name its key (`kid`); its algorithm must be the key's
//! own, so `alg: none` and HS256-signed-with-the-public-key forgeries fail.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::KeyPair;
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

struct VerifyKey {
    kid: String,
    alg: Algorithm,
    key: DecodingKey,
}

pub struct Verifier {
    keys: Vec<VerifyKey>,
    issuer: String,
    audience: String,
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

impl Verifier {
    /// A verifier without keys: every token is rejected.
    pub fn without_keys(issuer: &str, audience: &str) -> Self {
        Verifier {
            keys: Vec::new(),
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// Public keys in PEM (SPKI `PUBLIC KEY`, Ed25519 or RSA; several blocks allowed, so
    /// a rotated-out key can stay valid until its tokens expire).
    pub fn from_pem(pem: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let mut v = Verifier::without_keys(issuer, audience);
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
            v.keys.push(VerifyKey {
                kid: key_id(&der),
                alg,
                key,
            });
        }
        anyhow::ensure!(!v.keys.is_empty(), "no PUBLIC KEY block found");
        Ok(v)
    }

    pub fn from_pem_file(path: &Path, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("reading public key file {}", path.display()))?;
        Self::from_pem(&pem, issuer, audience)
            .with_context(|| format!("parsing public key file {}", path.display()))
    }

    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let bad = |why: &str| Error::Unauthorized(format!("invalid bearer token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed"))?;
        let kid = header.kid.ok_or_else(|| bad("no key id"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| bad("unknown key id"))?;
        if header.alg != key.alg {
            return Err(bad("algorithm does not match the key"));
        }
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind::*;
                match e.kind() {
                    ExpiredSignature => bad("expired"),
                    InvalidIssuer => bad("wrong issuer"),
                    InvalidAudience => bad("wrong audience"),
                    InvalidSignature => bad("bad signature"),
                    _ => bad("rejected"),
                }
            })
    }
}

/// An Ed25519 signing key (the hub's; tests and `pek local` generate one).
pub struct Signer {
    kid: String,
    encoding: EncodingKey,
    private_pkcs8: Vec<u8>,
    public_spki: Vec<u8>,
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

    pub fn from_pkcs8(pkcs8: &[u8], issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| anyhow::anyhow!("invalid Ed25519 PKCS#8 key: {e}"))?;
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        Ok(Signer {
            kid: key_id(&spki),
            encoding: EncodingKey::from_ed_der(pkcs8),
            private_pkcs8: pkcs8.to_vec(),
            public_spki: spki,
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_pem(&self) -> String {
        to_pem("PUBLIC KEY", &self.public_spki)
    }

    pub fn private_pem(&self) -> String {
        to_pem("PRIVATE KEY", &self.private_pkcs8)
    }

    /// Signs claims as given (tests use this to build expired or misaddressed tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    pub fn issue(&self, user: Uuid, ttl_secs: u64) -> anyhow::Result<String> {
        let now = now_secs();
        self.sign(&Claims {
            sub: user,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + ttl_secs,
            iat: now,
            name: None,
        })
    }
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
        assert_eq!(verifier.verify(&token).unwrap().sub, user);

        let other = Signer::generate("pek-hub", "pek").unwrap();
        assert!(verifier.verify(&other.issue(user, 60).unwrap()).is_err());

        let now = now_secs();
        let mk = |iss: &str, aud: &str, exp: u64| Claims {
            sub: user,
            iss: iss.into(),
            aud: aud.into(),
            exp,
            iat: now,
            name: None,
        };
        for claims in [
            mk("pek-hub", "pek", now - 3600),
            mk("evil", "pek", now + 60),
            mk("pek-hub", "other", now + 60),
        ] {
            assert!(verifier.verify(&signer.sign(&claims).unwrap()).is_err());
        }

        // alg none, with the right kid
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            signer.kid()
        ));
        let body =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&mk("pek-hub", "pek", now + 60)).unwrap());
        assert!(verifier.verify(&format!("{header}.{body}.")).is_err());

        // HS256 keyed with the public key bytes
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(signer.kid().to_string());
        let forged = jsonwebtoken::encode(
            &h,
            &mk("pek-hub", "pek", now + 60),
            &EncodingKey::from_secret(signer.public_pem().as_bytes()),
        )
        .unwrap();
        assert!(verifier.verify(&forged).is_err());
    }
}
