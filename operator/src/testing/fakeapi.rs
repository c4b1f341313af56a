//! An in-memory Kubernetes API server for the mocked-API reconcile tests and the benchmark.
//!
//! It understands exactly the calls the reconciler makes (GET, POST, DELETE, server-side apply,
//! JSON patch, merge patch, the status subresource), keeps objects with uid/resourceVersion/
//! generation, honours finalizers and owner references (garbage collection), and logs every
//! request as `VERB resource/name` so tests can assert each API call. Plug it into
//! `kube::Client::new` directly ([`FakeApi::client`]) or behind a `tower_test::mock::pair`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{json, Value};

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    log: Vec<String>,
    writes: u64,
    reads: u64,
    next_uid: u64,
    next_rv: u64,
    quiet: bool,
    auto_available: bool,
    /// Per object, the `data` and `metadata.annotations` keys its last server-side apply set:
    /// like the API server, an apply that leaves out a key it set before removes it.
    applied_keys: BTreeMap<String, Vec<(&'static str, String)>>,
}

/// The map keys of `obj` at `data` and `metadata.annotations` (what [`State::applied_keys`]
/// tracks).
fn map_keys(obj: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for pointer in ["/data", "/metadata/annotations"] {
        if let Some(m) = obj.pointer(pointer).and_then(Value::as_object) {
            out.extend(m.keys().map(|k| (pointer, k.clone())));
        }
    }
    out
}

/// The fake API server; clones share state.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

/// A parsed object path: `/api/v1/namespaces/ns/secrets/name[/status]`.
struct Target {
    /// `/api/v1/namespaces/ns/secrets`
    collection: String,
    /// plural resource name, e.g. `secrets`
    resource: String,
    name: Option<String>,
    status: bool,
}

fn parse(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ns_at = parts.iter().position(|p| *p == "namespaces")?;
    let resource = parts.get(ns_at + 2)?.to_string();
    let collection = format!("/{}", parts[..ns_at + 3].join("/"));
    Some(Target {
        collection,
        resource,
        name: parts.get(ns_at + 3).map(|s| s.to_string()),
        status: parts.get(ns_at + 4) == Some(&"status"),
    })
}

fn status_body(code: StatusCode, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code.as_u16()})
}

/// RFC 7386-style merge (objects merge, everything else replaces; null deletes).
fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    a.remove(k);
                } else {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (slot, p) => *slot = p.clone(),
    }
}

impl FakeApi {
    pub fn new() -> Self {
        Self::default()
    }

    /// A kube client talking to this fake.
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let fake = fake.clone();
            async move { Ok::<_, std::convert::Infallible>(fake.handle(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Stores an object as if created by someone else (test set-up; not logged).
    pub fn insert(&self, collection_path: &str, mut obj: Value) {
        let mut s = self.lock();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Self::stamp_new(&mut s, &mut obj);
        s.objects.insert(format!("{collection_path}/{name}"), obj);
    }

    /// The object at `path` (`/api/v1/namespaces/ns/secrets/name`), if any.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// Changes a stored object in place (test set-up, e.g. a Deployment becoming available or
    /// someone editing an object by hand); bumps its resourceVersion. Not logged.
    pub fn edit(&self, path: &str, f: impl FnOnce(&mut Value)) -> bool {
        let mut s = self.lock();
        s.next_rv += 1;
        let rv = s.next_rv.to_string();
        match s.objects.get_mut(path) {
            Some(o) => {
                f(o);
                o["metadata"]["resourceVersion"] = json!(rv);
                true
            }
            None => false,
        }
    }

    /// Removes an object (test set-up: someone deleted it). Not logged.
    pub fn remove(&self, path: &str) -> Option<Value> {
        self.lock().objects.remove(path)
    }

    /// Paths of all stored objects under a prefix.
    pub fn paths(&self, prefix: &str) -> Vec<String> {
        self.lock()
            .objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// The request log since the last call, as `VERB resource/name` lines.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().log)
    }

    /// (reads, writes) since start.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.reads, s.writes)
    }

    /// Disables logging of individual calls (benchmark: keeps memory flat).
    pub fn stop_logging(&self) {
        let mut s = self.lock();
        s.quiet = true;
        s.log = Vec::new();
    }

    /// Plays the Deployment controller: every applied Deployment is immediately available.
    pub fn auto_available(&self) {
        self.lock().auto_available = true;
    }

    fn stamp_new(s: &mut State, obj: &mut Value) {
        s.next_uid += 1;
        s.next_rv += 1;
        let meta = &mut obj["metadata"];
        if meta.get("uid").is_none() {
            meta["uid"] = json!(format!("00000000-0000-0000-0000-{:012}", s.next_uid));
        }
        meta["resourceVersion"] = json!(s.next_rv.to_string());
        meta["generation"] = json!(1);
        meta["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
    }

    /// Garbage collection: drops a deleted object whose finalizers are gone, and its dependents.
    fn collect_garbage(s: &mut State, key: &str) {
        let Some(obj) = s.objects.get(key) else {
            return;
        };
        let deleting = obj["metadata"].get("deletionTimestamp").is_some();
        let finalizers = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if !deleting || finalizers {
            return;
        }
        let uid = obj["metadata"]["uid"].clone();
        s.objects.remove(key);
        let dependents: Vec<String> = s
            .objects
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for d in dependents {
            s.objects.remove(&d);
        }
    }

    /// Marks an object deleted (sets deletionTimestamp, or removes it when it has no
    /// finalizers), like `kubectl delete`. Not logged.
    pub fn delete(&self, path: &str) {
        let mut s = self.lock();
        if let Some(o) = s.objects.get_mut(path) {
            o["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:01Z");
        }
        Self::collect_garbage(&mut s, path);
    }

    fn respond(code: StatusCode, body: &Value) -> Response<Body> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let mut resp = Response::new(Body::from(bytes));
        *resp.status_mut() = code;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp
    }

    /// Serves one request.
    pub async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body: Bytes = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return Self::respond(
                    StatusCode::BAD_REQUEST,
                    &status_body(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
                )
            }
        };
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (code, value) = self.serve(&parts.method, parts.uri.path(), &content_type, &body);
        Self::respond(code, &value)
    }

    /// Serves one request given as parts (also used behind an HTTP server by the benchmark).
    pub fn serve(
        &self,
        method: &Method,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let not_found = |what: &str| {
            (
                StatusCode::NOT_FOUND,
                status_body(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{what} not found"),
                ),
            )
        };
        let Some(t) = parse(path) else {
            return not_found(path);
        };
        let mut s = self.lock();
        let kind = match (method, content_type) {
            (&Method::PATCH, ct) if ct.contains("apply-patch") => "PATCH(apply)",
            (&Method::PATCH, ct) if ct.contains("json-patch") => "PATCH(json)",
            (&Method::PATCH, _) => "PATCH(merge)",
            (m, _) => m.as_str(),
        };
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        // Events are logged by reason (their names carry a timestamp).
        let line = if t.resource == "events" {
            format!("{kind} events {}", parsed["reason"].as_str().unwrap_or("?"))
        } else {
            format!(
                "{kind} {}{}{}",
                t.resource,
                t.name
                    .as_deref()
                    .map(|n| format!("/{n}"))
                    .unwrap_or_default(),
                if t.status { "/status" } else { "" }
            )
        };
        if !s.quiet {
            s.log.push(line);
        }
        if method == Method::GET {
            s.reads += 1;
        } else {
            s.writes += 1;
        }

        let key = match &t.name {
            Some(n) => format!("{}/{n}", t.collection),
            None => {
                if method == Method::POST {
                    let name = parsed["metadata"]["name"]
                        .as_str()
                        .unwrap_or("unnamed")
                        .to_string();
                    let key = format!("{}/{name}", t.collection);
                    if s.objects.contains_key(&key) {
                        return (
                            StatusCode::CONFLICT,
                            status_body(
                                StatusCode::CONFLICT,
                                "AlreadyExists",
                                &format!("{name} exists"),
                            ),
                        );
                    }
                    let mut obj = parsed;
                    Self::stamp_new(&mut s, &mut obj);
                    s.objects.insert(key, obj.clone());
                    return (StatusCode::CREATED, obj);
                }
                let items: Vec<Value> = s
                    .objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&format!("{}/", t.collection)))
                    .map(|(_, v)| v.clone())
                    .collect();
                return (
                    StatusCode::OK,
                    json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": s.next_rv.to_string()}, "items": items}),
                );
            }
        };

        match *method {
            Method::GET => match s.objects.get(&key) {
                Some(o) => (StatusCode::OK, o.clone()),
                None => not_found(&key),
            },
            Method::DELETE => match s.objects.get_mut(&key) {
                Some(o) => {
                    o["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:01Z");
                    let o = o.clone();
                    Self::collect_garbage(&mut s, &key);
                    (StatusCode::OK, o)
                }
                None => not_found(&key),
            },
            Method::PATCH => {
                let existing = s.objects.get(&key).cloned();
                let (mut obj, created) = match (existing, kind) {
                    (Some(o), _) => (o, false),
                    (None, "PATCH(apply)") if !t.status => {
                        let mut o = json!({"metadata": {}});
                        Self::stamp_new(&mut s, &mut o);
                        (o, true)
                    }
                    (None, _) => return not_found(&key),
                };
                let before = obj.clone();
                match kind {
                    "PATCH(json)" => {
                        // Like the API server, a `test` for null passes on an absent field.
                        let mut parsed = parsed;
                        if let Some(ops) = parsed.as_array_mut() {
                            ops.retain(|op| {
                                !(op["op"] == "test"
                                    && op["value"].is_null()
                                    && op["path"]
                                        .as_str()
                                        .is_some_and(|p| obj.pointer(p).is_none()))
                            });
                        }
                        let patch: json_patch::Patch = match serde_json::from_value(parsed) {
                            Ok(p) => p,
                            Err(e) => {
                                return (
                                    StatusCode::BAD_REQUEST,
                                    status_body(
                                        StatusCode::BAD_REQUEST,
                                        "BadRequest",
                                        &e.to_string(),
                                    ),
                                )
                            }
                        };
                        if let Err(e) = json_patch::patch(&mut obj, &patch) {
                            return (
                                StatusCode::UNPROCESSABLE_ENTITY,
                                status_body(
                                    StatusCode::UNPROCESSABLE_ENTITY,
                                    "Invalid",
                                    &e.to_string(),
                                ),
                            );
                        }
                    }
                    _ if t.status => {
                        let mut status = obj.get("status").cloned().unwrap_or(json!({}));
                        if kind == "PATCH(apply)" {
                            status = parsed["status"].clone();
                        } else {
                            merge(&mut status, &parsed["status"]);
                        }
                        obj["status"] = status;
                    }
                    _ => {
                        let mut patch = parsed;
                        if let Some(m) = patch.as_object_mut() {
                            m.remove("status");
                        }
                        if kind == "PATCH(apply)" {
                            let now = map_keys(&patch);
                            let before = s.applied_keys.insert(key.clone(), now.clone());
                            for (pointer, k) in before.unwrap_or_default() {
                                if !now.contains(&(pointer, k.clone())) {
                                    if let Some(m) =
                                        obj.pointer_mut(pointer).and_then(Value::as_object_mut)
                                    {
                                        m.remove(&k);
                                    }
                                }
                            }
                        }
                        merge(&mut obj, &patch);
                    }
                }
                if s.auto_available && t.resource == "deployments" && !t.status {
                    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
                    let generation = obj["metadata"]["generation"].clone();
                    obj["status"] = json!({"observedGeneration": generation, "replicas": replicas,
                        "availableReplicas": replicas, "readyReplicas": replicas,
                        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]});
                }
                if obj != before || created {
                    s.next_rv += 1;
                    obj["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
                    let spec_changed = !t.status && {
                        let strip = |v: &Value| {
                            let mut v = v.clone();
                            if let Some(m) = v.as_object_mut() {
                                m.remove("metadata");
                                m.remove("status");
                            }
                            v
                        };
                        strip(&obj) != strip(&before)
                    };
                    if spec_changed && !created {
                        let g = obj["metadata"]["generation"].as_i64().unwrap_or(1);
                        obj["metadata"]["generation"] = json!(g + 1);
                    }
                }
                s.objects.insert(key.clone(), obj.clone());
                Self::collect_garbage(&mut s, &key);
                (
                    if created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    },
                    obj,
                )
            }
            _ => (
                StatusCode::METHOD_NOT_ALLOWED,
                status_body(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    method.as_str(),
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let t = parse("/apis/apps/v1/namespaces/ns/deployments/x/status").expect("parses");
        assert_eq!(t.collection, "/apis/apps/v1/namespaces/ns/deployments");
        assert_eq!(t.resource, "deployments");
        assert_eq!(t.name.as_deref(), Some("x"));
        assert!(t.status);
        let t = parse("/api/v1/namespaces/ns/secrets").expect("parses");
        assert!(t.name.is_none());
    }
}
