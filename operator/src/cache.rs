//! The operator's watch caches: the Realms it reconciles and the objects it manages, each kept
//! as small as the reconciler allows.
//!
//! A thousand Realms mean a thousand of each of six managed kinds. Parsed into k8s-openapi's
//! structs a worker Deployment takes ~13 KB of memory (every optional field is inline and each
//! label map is a B-tree node of its own) and its `managedFields` are half its JSON, so the
//! caches of whole objects were most of the operator's memory. The managed kinds are therefore
//! kept as [`Compact`]: the metadata the controller needs to map an object to its Realm, and
//! the object itself as LZ4-compressed JSON (managedFields dropped), parsed again only when a
//! reconcile reads it (a few microseconds; a steady-state reconcile reads six). Realms are kept parsed (the reconciler reads every field) but without
//! managedFields and kubectl's last-applied copy of the spec.

use std::borrow::Cow;
use std::marker::PhantomData;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, reflector, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// kubectl's copy of the last applied spec: as large as the spec, never read by the operator.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A cached object of kind `K`: the metadata the controller maps it to its Realm with (name,
/// namespace, owner references, resourceVersion) and the object as JSON, without what the
/// operator neither applies nor reads (managedFields, uid, creationTimestamp).
pub struct Compact<K> {
    meta: ObjectMeta,
    /// The JSON, LZ4-compressed (a worker Deployment's 3.8 KB of JSON take ~1.3 KB).
    json: Box<[u8]>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Compact<K> {
    fn clone(&self) -> Self {
        Compact {
            meta: self.meta.clone(),
            json: self.json.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Compact<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compact")
            .field("name", &self.meta.name)
            .field("namespace", &self.meta.namespace)
            .field("bytes", &self.json.len())
            .finish()
    }
}

impl<K: Resource + Serialize> Compact<K> {
    /// The compact form of `object`.
    pub fn new(mut object: K) -> Self {
        let meta = object.meta_mut();
        // Nothing the operator applies, nor anything it reads back.
        meta.managed_fields = None;
        meta.uid = None;
        meta.creation_timestamp = None;
        let kept = ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            owner_references: meta.owner_references.clone(),
            resource_version: meta.resource_version.take(),
            ..Default::default()
        };
        // Serializing a k8s-openapi object does not fail; were it to, the empty text reads as
        // "not cached" and the reconciler asks the API server.
        let json = serde_json::to_vec(&object).unwrap_or_default();
        Compact {
            meta: kept,
            json: lz4_flex::compress_prepend_size(&json).into_boxed_slice(),
            kind: PhantomData,
        }
    }
}

impl<K: DeserializeOwned> Compact<K> {
    /// The object, parsed again; None if its text does not parse (then nothing is trusted
    /// from the cache).
    pub fn object(&self) -> Option<K> {
        let json = lz4_flex::decompress_size_prepended(&self.json).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Compact<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &()) -> Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// The watch caches of the managed kinds (the same watches that trigger reconciles): a
/// steady-state reconcile reads its children from here instead of one GET each.
#[derive(Clone)]
pub struct Caches {
    pub secrets: Store<Compact<Secret>>,
    pub service_accounts: Store<Compact<ServiceAccount>>,
    pub services: Store<Compact<Service>>,
    pub deployments: Store<Compact<Deployment>>,
    pub network_policies: Store<Compact<NetworkPolicy>>,
    pub pod_disruption_budgets: Store<Compact<PodDisruptionBudget>>,
    pub cron_jobs: Store<Compact<CronJob>>,
}

/// A managed kind with a watch cache in [`Caches`].
pub trait Cached:
    Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Sized + 'static
{
    fn store(caches: &Caches) -> &Store<Compact<Self>>;
}

macro_rules! cached {
    ($kind:ty, $field:ident) => {
        impl Cached for $kind {
            fn store(caches: &Caches) -> &Store<Compact<Self>> {
                &caches.$field
            }
        }
    };
}
cached!(Secret, secrets);
cached!(ServiceAccount, service_accounts);
cached!(Service, services);
cached!(Deployment, deployments);
cached!(NetworkPolicy, network_policies);
cached!(PodDisruptionBudget, pod_disruption_budgets);
cached!(CronJob, cron_jobs);

/// What a watch cache says about one object.
pub(crate) enum Lookup<K> {
    /// The cache holds it.
    Found(K),
    /// The cache has finished its initial listing and does not hold it.
    NotInSyncedCache,
    /// No cache (tests), not synced yet, or an entry that does not parse: ask the API server.
    Unknown,
}

/// Looks `namespace/name` up in the cache of `K`.
pub(crate) fn lookup<K: Cached>(caches: Option<&Caches>, ns: &str, name: &str) -> Lookup<K> {
    use futures::FutureExt;
    let Some(store) = caches.map(K::store) else {
        return Lookup::Unknown;
    };
    match store.get(&ObjectRef::new(name).within(ns)) {
        // With the resourceVersion the cache saw (kept beside the compact copy), so a caller
        // can tell whether it is older than what it wrote itself.
        Some(entry) => entry.object().map_or(Lookup::Unknown, |mut object: K| {
            object.meta_mut().resource_version = entry.meta().resource_version.clone();
            Lookup::Found(object)
        }),
        None if store.wait_until_ready().now_or_never().is_some() => Lookup::NotInSyncedCache,
        None => Lookup::Unknown,
    }
}

/// A watch of the operator's objects of kind `K` that both fills a compact cache and yields
/// every object it sees (to trigger reconciles of their Realms).
pub fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<Compact<K>>,
    impl futures::Stream<Item = Result<Compact<K>, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    use futures::TryStreamExt;
    let (reader, writer) = reflector::store();
    let compact = watcher(api, config)
        .default_backoff()
        .map_ok(|event| match event {
            watcher::Event::Apply(o) => watcher::Event::Apply(Compact::new(o)),
            watcher::Event::Delete(o) => watcher::Event::Delete(Compact::new(o)),
            watcher::Event::InitApply(o) => watcher::Event::InitApply(Compact::new(o)),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitDone => watcher::Event::InitDone,
        });
    (reader, reflector(writer, compact).touched_objects())
}

/// Drops what the reconciler never reads from a Realm before it is cached.
pub fn slim_realm(realm: &mut pek_crds::Realm) {
    let meta = realm.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_compact_object_parses_back_to_the_object_without_managed_fields() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {
                "name": "r-worker", "namespace": "ns", "resourceVersion": "7",
                "labels": {"app": "w"},
                "ownerReferences": [{"apiVersion": "pek.sch.bme.hu/v1alpha1", "kind": "Realm",
                                     "name": "r", "uid": "u1", "controller": true}],
                "managedFields": [{"manager": "pek-operator", "operation": "Apply",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]
            },
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "w"}},
                     "template": {"spec": {"containers": [{"name": "w", "image": "i"}]}}},
            "status": {"availableReplicas": 1}
        }))
        .expect("deployment");
        let compact = Compact::new(deployment.clone());
        assert_eq!(compact.meta().name.as_deref(), Some("r-worker"));
        assert_eq!(compact.meta().namespace.as_deref(), Some("ns"));
        assert_eq!(
            compact.meta().owner_references,
            deployment.metadata.owner_references
        );
        let back = compact.object().expect("parses");
        let mut want = deployment;
        want.metadata.managed_fields = None;
        want.metadata.resource_version = None;
        assert_eq!(back, want);
        let json = lz4_flex::decompress_size_prepended(&compact.json).expect("lz4");
        assert!(!String::from_utf8_lossy(&json).contains("managedFields"));
    }

    #[test]
    fn a_broken_entry_is_not_trusted() {
        let mut compact = Compact::new(Secret::default());
        compact.json = lz4_flex::compress_prepend_size(b"{").into_boxed_slice();
        assert!(compact.object().is_none());
        compact.json = b"\x05\x00\x00\x00\xff".to_vec().into_boxed_slice();
        assert!(compact.object().is_none());
    }
}
