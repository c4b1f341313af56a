//! The hub's admin API for the operator (DESIGN §5):
//! `PUT /internal/v1/realms/{id}`, `DELETE /internal/v1/realms/{id}`, `GET /internal/v1/realms`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::Error;

/// What the hub is told about a realm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub display_name: String,
    pub endpoint: String,
    pub version: String,
    /// The UID of the Realm registering: the hub records it and refuses (409) a registration
    /// or deregistration of the same realm id from another Realm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<String>,
    /// The sign-in providers whose sessions may use the realm (the Realm's
    /// `spec.providers`); absent: every global provider of the hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub providers: Option<Vec<String>>,
}

/// One entry of the hub's registry (`GET /internal/v1/realms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryEntry {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub owner_uid: Option<String>,
    #[serde(default)]
    pub providers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct RegistryList {
    items: Vec<RegistryEntry>,
}

/// Outcome of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    Updated,
}

/// The hub registry as the reconciler sees it (a trait so the mocked-API tests and the
/// benchmark can count calls; the real one is [`HttpHub`]).
pub trait Hub: Send + Sync {
    fn register<'a>(
        &'a self,
        realm_id: &'a str,
        reg: &'a Registration,
    ) -> BoxFuture<'a, Result<Registered, Error>>;
    /// Removes the entry of `realm_id`; with `owner_uid`, only when that Realm owns it (the
    /// hub refuses with `Error::Conflict` otherwise).
    fn deregister<'a>(
        &'a self,
        realm_id: &'a str,
        owner_uid: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// The whole registry (one call re-verifies every registration).
    fn list(&self) -> BoxFuture<'_, Result<Vec<RegistryEntry>, Error>>;
}

impl RegistryEntry {
    /// Whether the hub holds exactly this registration.
    pub fn matches(&self, reg: &Registration) -> bool {
        self.display_name.as_deref() == Some(reg.display_name.as_str())
            && self.endpoint.as_deref() == Some(reg.endpoint.as_str())
            && self.version.as_deref() == Some(reg.version.as_str())
            && (reg.owner_uid.is_none() || self.owner_uid == reg.owner_uid)
            && self.providers == reg.providers
    }
}

/// The hub admin API over HTTP with the operator's bearer token (read from a file each call,
/// so a rotated Secret is picked up without a restart).
#[derive(Clone)]
pub struct HttpHub {
    base: String,
    token: TokenSource,
    http: reqwest::Client,
}

#[derive(Clone)]
enum TokenSource {
    File(PathBuf),
    Value(Arc<str>),
}

impl HttpHub {
    pub fn new(base: &str, token_file: PathBuf) -> Result<Self, Error> {
        Self::build(base, TokenSource::File(token_file))
    }

    pub fn with_token(base: &str, token: &str) -> Result<Self, Error> {
        Self::build(base, TokenSource::Value(token.into()))
    }

    fn build(base: &str, token: TokenSource) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(Error::hub("building the HTTP client"))?;
        Ok(HttpHub {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    fn token(&self) -> Result<String, Error> {
        match &self.token {
            TokenSource::Value(v) => Ok(v.to_string()),
            TokenSource::File(path) => {
                let raw = std::fs::read_to_string(path).map_err(Error::hub(format!(
                    "reading the hub token file {}",
                    path.display()
                )))?;
                raw.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Error::hub_answer(format!("hub token file {} is empty", path.display()))
                    })
            }
        }
    }

    fn url(&self, realm_id: Option<&str>) -> String {
        match realm_id {
            Some(id) => format!("{}/internal/v1/realms/{id}", self.base),
            None => format!("{}/internal/v1/realms", self.base),
        }
    }

    /// The hub's registry.
    pub async fn list(&self) -> Result<Vec<RegistryEntry>, Error> {
        let resp = self
            .http
            .get(self.url(None))
            .bearer_auth(self.token()?)
            .send()
            .await
            .map_err(Error::hub("GET registry"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::hub_answer(format!(
                "GET registry: hub answered {status}"
            )));
        }
        let list: RegistryList = resp
            .json()
            .await
            .map_err(Error::hub("GET registry: bad body"))?;
        Ok(list.items)
    }
}

fn refused(what: &str, status: reqwest::StatusCode, body: &str) -> Error {
    if status == reqwest::StatusCode::CONFLICT {
        // The hub's error body: {"error": {"code": "conflict", "message": "..."}}.
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(300).collect());
        return Error::Conflict(format!("{what}: the hub refused: {message}"));
    }
    let body: String = body.chars().take(300).collect();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        Error::hub_answer(format!(
            "{what}: hub refused the operator token ({status}); check the operator token Secret"
        ))
    } else {
        Error::hub_answer(format!("{what}: hub answered {status}: {body}"))
    }
}

impl Hub for HttpHub {
    fn list(&self) -> BoxFuture<'_, Result<Vec<RegistryEntry>, Error>> {
        Box::pin(HttpHub::list(self))
    }

    fn register<'a>(
        &'a self,
        realm_id: &'a str,
        reg: &'a Registration,
    ) -> BoxFuture<'a, Result<Registered, Error>> {
        Box::pin(async move {
            let resp = self
                .http
                .put(self.url(Some(realm_id)))
                .bearer_auth(self.token()?)
                .json(reg)
                .send()
                .await
                .map_err(Error::hub(format!("registering {realm_id}")))?;
            match resp.status().as_u16() {
                201 => Ok(Registered::Created),
                200 | 204 => Ok(Registered::Updated),
                _ => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    Err(refused(&format!("registering {realm_id}"), status, &body))
                }
            }
        })
    }

    fn deregister<'a>(
        &'a self,
        realm_id: &'a str,
        owner_uid: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut req = self.http.delete(self.url(Some(realm_id)));
            if let Some(uid) = owner_uid {
                req = req.query(&[("ownerUid", uid)]);
            }
            let resp = req
                .bearer_auth(self.token()?)
                .send()
                .await
                .map_err(Error::hub(format!("deregistering {realm_id}")))?;
            let status = resp.status();
            if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
                Ok(())
            } else {
                let body = resp.text().await.unwrap_or_default();
                Err(refused(&format!("deregistering {realm_id}"), status, &body))
            }
        })
    }
}
