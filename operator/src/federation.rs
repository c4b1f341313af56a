//! Realm tokens: how a worker proves to the hub which realm it reports membership changes for.
//!
//! The same derivation as `pek::federation::realm_token` in the instance crate (duplicated so
//! the operator does not depend on the whole instance): base64url without padding of
//! `HMAC-SHA256(secret, "pek-realm:" + realm id)`. The hub checks a presented token with the
//! same secret, so it needs no per-realm state.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Shortest accepted federation secret (the hub refuses shorter ones too).
pub(crate) const MIN_SECRET_LEN: usize = 16;

/// The secret shared with the hub. Its `Debug` never shows the value, so a logged [`Config`]
/// does not leak it.
///
/// [`Config`]: crate::config::Config
#[derive(Clone, PartialEq, Eq)]
pub struct FederationSecret(Vec<u8>);

impl fmt::Debug for FederationSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FederationSecret(<redacted>)")
    }
}

impl FederationSecret {
    /// A secret from its text (trimmed, like the hub does); at least [`MIN_SECRET_LEN`] chars.
    pub fn new(text: &str) -> Result<Self, String> {
        let s = text.trim();
        if s.chars().count() < MIN_SECRET_LEN {
            return Err(format!(
                "the federation secret must be at least {MIN_SECRET_LEN} characters (got {})",
                s.chars().count()
            ));
        }
        Ok(FederationSecret(s.as_bytes().to_vec()))
    }

    /// Reads the secret from a file (e.g. a mounted Secret). Errors name the file, never the
    /// content.
    pub(crate) fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the federation secret file {}: {e}",
                path.display()
            )
        })?;
        Self::new(&text).map_err(|e| format!("{e} in {}", path.display()))
    }

    /// The realm token of `realm_id`.
    pub fn realm_token(&self, realm_id: &str) -> String {
        realm_token(&self.0, realm_id)
    }
}

/// The bearer token a worker of `realm_id` presents to the hub.
pub fn realm_token(secret: &[u8], realm_id: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, format!("pek-realm:{realm_id}").as_bytes());
    URL_SAFE_NO_PAD.encode(tag.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed independently (Python `hmac` + `base64.urlsafe_b64encode`, padding
    /// stripped); `pek::federation::realm_token` gives the same.
    #[test]
    fn realm_token_matches_known_vectors() {
        assert_eq!(
            realm_token(b"0123456789abcdef-federation-secret", "kszk"),
            "Fznsd-dYpjZXmQCuxT6awURimLgOqv5iY58_e0TQ1X4"
        );
        assert_eq!(
            realm_token(b"another-secret-value-xyz", "hub"),
            "DT2kxiBvSmj19qOyqv4cedXH8OjHrWLdYDk5-7_ncVM"
        );
    }

    #[test]
    fn secrets_are_trimmed_checked_and_never_shown() {
        let s = FederationSecret::new("  0123456789abcdef-federation-secret\n").expect("ok");
        assert_eq!(
            s.realm_token("kszk"),
            "Fznsd-dYpjZXmQCuxT6awURimLgOqv5iY58_e0TQ1X4"
        );
        assert_eq!(format!("{s:?}"), "FederationSecret(<redacted>)");
        let err = FederationSecret::new(" short-secret \n").expect_err("too short");
        assert!(err.contains("at least 16"), "{err}");
        assert!(!err.contains("short-secret"), "{err}");
        let err = FederationSecret::from_file(Path::new("/nonexistent/pek-federation"))
            .expect_err("unreadable");
        assert!(err.contains("/nonexistent/pek-federation"), "{err}");
    }
}
