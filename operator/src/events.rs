//! Kubernetes Events (events.k8s.io/v1) for every change the operator makes.
//!
//! kube's `Recorder` folds repeats within six minutes into a series on the *first* event (keeping
//! its note) and caches every event it sent for that long — with a thousand Realms created at
//! once that cache alone was half of the operator's memory, and a later "Updated" event could
//! show an earlier note. The operator only emits an Event when it changed something (or when a
//! condition turned False), so each one is simply created, with its own note.
//!
//! Events about a transition of the Realm's status (Ready, a failure, a refusal, ...) are
//! published *once*: their name is derived from the Realm's uid, the Event and the status they
//! transition from ([`Publisher::publish_once`]). A reconcile repeated after the operator died
//! between such an Event and the status write that records the transition (the status write is
//! the commit point) sends the same name again, which the API server refuses as a duplicate;
//! and since the transition is still to be made, the Event is not lost either.
//!
//! The running operator sends Events in the background ([`Publisher::in_background`]): a
//! reconcile does not wait one API round trip per Event (ten of them provision a Realm), only
//! for its Realm's Events still on their way before it writes the Realm's status
//! ([`Publisher::flush`]), so whatever a status says has its Event already.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

pub use kube::runtime::events::EventType;

/// Publishes Events as `reportingController: pek-operator`.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    instance: String,
    background: Option<Background>,
}

/// Events on their way, per regarded object (uid), and a bound on how many are sent at once.
#[derive(Clone)]
struct Background {
    in_flight: Arc<Semaphore>,
    pending: Arc<Mutex<HashMap<String, Vec<JoinHandle<()>>>>>,
}

/// A [`Publisher::publish_once`] Event that was sent before (its name exists).
fn already_sent(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Kubernetes limits: reason and action 128 characters, note 1 kB.
fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl Publisher {
    pub fn new(client: Client) -> Self {
        Publisher {
            client,
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "pek-operator".into()),
            background: None,
        }
    }

    /// Sends Events from background tasks, at most `in_flight` at once; `publish` returns at
    /// once and [`Publisher::flush`] waits for an object's Events.
    pub fn in_background(mut self, in_flight: usize) -> Self {
        self.background = Some(Background {
            in_flight: Arc::new(Semaphore::new(in_flight.max(1))),
            pending: Arc::default(),
        });
        self
    }

    /// Waits until the Events published so far about the object with `uid` were sent (or
    /// failed: an Event is best effort). Immediate when Events are not sent in the background.
    pub async fn flush(&self, uid: &str) {
        let Some(bg) = &self.background else {
            return;
        };
        let handles = bg
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(uid))
            .unwrap_or_default();
        for h in handles {
            let _ = h.await;
        }
    }

    pub async fn publish(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        self.publish_named(regarding, type_, reason, action, note, None)
            .await
    }

    /// [`Publisher::publish`], at most once per `key` (what makes this Event unique, e.g. the
    /// status it announces a transition from): the Event's name is derived from the object's
    /// uid and `key`, and a second one with that name is refused by the API server and dropped.
    pub async fn publish_once(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
        key: &str,
    ) -> Result<(), kube::Error> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [regarding.uid.as_deref().unwrap_or_default(), reason, key] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let digest: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.publish_named(regarding, type_, reason, action, note, Some(digest))
            .await
    }

    async fn publish_named(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
        suffix: Option<String>,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let ns = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let uid = regarding.uid.clone().unwrap_or_default();
        // Names are at most 253 characters; the suffix keeps them apart.
        let name = format!(
            "{}.{}",
            clip(regarding.name.as_deref().unwrap_or("pek-operator"), 200),
            suffix.unwrap_or_else(|| format!("{:x}", now.as_nanosecond()))
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            reason: Some(clip(reason, 128)),
            action: Some(clip(action, 128)),
            note: Some(clip(note, 1024)),
            regarding: Some(regarding),
            reporting_controller: Some("pek-operator".into()),
            reporting_instance: Some(clip(&self.instance, 128)),
            ..Default::default()
        };
        let api = Api::<Event>::namespaced(self.client.clone(), &ns);
        let Some(bg) = &self.background else {
            return match api.create(&PostParams::default(), &event).await {
                Err(e) if already_sent(&e) => Ok(()),
                other => other.map(drop),
            };
        };
        let in_flight = bg.in_flight.clone();
        let handle = tokio::spawn(async move {
            let _permit = in_flight.acquire_owned().await;
            match api.create(&PostParams::default(), &event).await {
                Err(e) if !already_sent(&e) => {
                    tracing::warn!(error = %e, reason = ?event.reason, "could not publish an event");
                }
                _ => {}
            }
        });
        if let Ok(mut pending) = bg.pending.lock() {
            // Forget what was sent already (objects whose status is never written again).
            if pending.len() > 256 {
                pending.retain(|_, hs| {
                    hs.retain(|h| !h.is_finished());
                    !hs.is_empty()
                });
            }
            let hs = pending.entry(uid).or_default();
            hs.retain(|h| !h.is_finished());
            hs.push(handle);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clipping_respects_char_boundaries() {
        assert_eq!(clip("Schönherz", 4), "Sch");
        assert_eq!(clip("abc", 10), "abc");
    }
}
