//! Kubernetes Events (events.k8s.io/v1) for every change the operator makes.
//!
//! kube's `Recorder` folds repeats within six minutes into a series on the *first* event (keeping
//! its note) and caches every event it sent for that long — with a thousand Realms created at
//! once that cache alone was half of the operator's memory, and a later "Updated" event could
//! show an earlier note. The operator only emits an Event when it changed something (or when a
//! condition turned False), so each one is simply created, with its own note.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

pub use kube::runtime::events::EventType;

/// Publishes Events as `reportingController: pek-operator`.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    instance: String,
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
        let now = Timestamp::now();
        let ns = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or("pek-operator"),
            now.as_nanosecond()
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
        Api::<Event>::namespaced(self.client.clone(), &ns)
            .create(&PostParams::default(), &event)
            .await?;
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
