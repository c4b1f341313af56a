//! Test doubles for the operator's own tests, examples and the workspace's e2e suite: an
//! in-memory API server ([`FakeApi`]), a hub registry that records every call
//! ([`RecordingHub`]) and a configuration with a test federation secret ([`Config::for_tests`]).
//! Compiled only for the crate's unit tests and with the `testing` feature, so the operator
//! binary carries none of it.

mod fakeapi;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::config::Config;
use crate::federation::FederationSecret;
use crate::hub::{Hub, Registered, Registration, RegistryEntry};
use crate::Error;

pub use fakeapi::FakeApi;

/// The federation secret of [`Config::for_tests`].
pub const TEST_FEDERATION_SECRET: &str = "0123456789abcdef-federation-secret";

impl Config {
    /// A configuration for tests and the benchmark.
    pub fn for_tests() -> Self {
        Config {
            hub_url: "http://pek-hub.pek-system.svc:8080".into(),
            worker_hub_url: None,
            worker_image: "ghcr.io/schonherz/pek:0.1.0".into(),
            worker_image_pull_policy: None,
            hub_namespace: "pek-system".into(),
            hub_pod_labels: BTreeMap::from([
                ("app.kubernetes.io/name".into(), "pek-hub".into()),
                ("app.kubernetes.io/instance".into(), "pek".into()),
            ]),
            resync: Duration::from_secs(300),
            federation_secret: Some(
                FederationSecret::new(TEST_FEDERATION_SECRET).expect("valid test secret"),
            ),
            dumps: None,
            drop_without_dump: false,
            backups: None,
        }
    }
}

/// An in-memory hub registry that records every call (mocked-API tests and the benchmark).
#[derive(Default)]
pub struct RecordingHub {
    pub calls: std::sync::Mutex<Vec<String>>,
    pub registry: std::sync::Mutex<std::collections::BTreeMap<String, Registration>>,
    /// When set, every call fails with this message (hub down).
    pub fail: std::sync::Mutex<Option<String>>,
}

impl RecordingHub {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
    pub fn take_calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

impl Hub for RecordingHub {
    fn list(&self) -> BoxFuture<'_, Result<Vec<RegistryEntry>, Error>> {
        Box::pin(async move {
            if let Ok(mut c) = self.calls.lock() {
                c.push("LIST".into());
            }
            if let Some(msg) = self.fail.lock().ok().and_then(|f| f.clone()) {
                return Err(Error::hub_answer(msg));
            }
            let r = self
                .registry
                .lock()
                .map_err(|_| Error::Internal("lock".into()))?;
            Ok(r.iter()
                .map(|(id, reg)| RegistryEntry {
                    id: id.clone(),
                    display_name: Some(reg.display_name.clone()),
                    endpoint: Some(reg.endpoint.clone()),
                    version: Some(reg.version.clone()),
                    status: None,
                    owner_uid: reg.owner_uid.clone(),
                    providers: reg.providers.clone(),
                })
                .collect())
        })
    }

    fn register<'a>(
        &'a self,
        realm_id: &'a str,
        reg: &'a Registration,
    ) -> BoxFuture<'a, Result<Registered, Error>> {
        Box::pin(async move {
            if let Ok(mut c) = self.calls.lock() {
                c.push(format!("PUT {realm_id}"));
            }
            if let Some(msg) = self.fail.lock().ok().and_then(|f| f.clone()) {
                return Err(Error::hub_answer(msg));
            }
            let mut r = self
                .registry
                .lock()
                .map_err(|_| Error::Internal("lock".into()))?;
            if let Some(other) = r.get(realm_id).and_then(|e| e.owner_uid.clone()) {
                if reg.owner_uid.as_ref().is_some_and(|me| *me != other) {
                    return Err(Error::Conflict(format!(
                        "registering {realm_id}: the hub refused: owned by uid {other}"
                    )));
                }
            }
            Ok(match r.insert(realm_id.to_string(), reg.clone()) {
                None => Registered::Created,
                Some(_) => Registered::Updated,
            })
        })
    }

    fn deregister<'a>(
        &'a self,
        realm_id: &'a str,
        owner_uid: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            if let Ok(mut c) = self.calls.lock() {
                c.push(format!("DELETE {realm_id}"));
            }
            if let Some(msg) = self.fail.lock().ok().and_then(|f| f.clone()) {
                return Err(Error::hub_answer(msg));
            }
            if let Ok(mut r) = self.registry.lock() {
                let other = r.get(realm_id).and_then(|e| e.owner_uid.clone());
                if let (Some(other), Some(me)) = (other, owner_uid) {
                    if other != me {
                        return Err(Error::Conflict(format!(
                            "deregistering {realm_id}: the hub refused: owned by uid {other}"
                        )));
                    }
                }
                r.remove(realm_id);
            }
            Ok(())
        })
    }
}
