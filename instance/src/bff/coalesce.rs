//! Request coalescing: identical realm GETs made for the same caller while one of them is
//! in flight share that one call (as Apollo Router's subgraph deduplication does). A page
//! that asks the same thing twice, a client retrying, a burst of refreshes: the realm
//! answers once and every waiting request gets that answer.
//!
//! The key holds the caller. A realm's answer depends on who asks — the hub sends each
//! realm a token minted for the caller (`RealmTokens`), and the realm's policies decide
//! what that person sees — so an answer may only be shared between requests of the same
//! person: (realm, caller, method, path and query). More exactly, of the same session
//! token: whether the hub mints a realm token at all depends on the session too (the
//! sign-in provider it came from must be one the realm accepts), so two sessions of one
//! person never share a call either. Requests of different people never share a call,
//! however alike, and calls without a person behind them (service tokens) or with a body,
//! or that change something, are never coalesced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared, WeakShared};
use uuid::Uuid;

use super::{BackendRequest, Outcome};
use crate::realm::RealmId;

/// What must be equal for two requests to share one call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    realm: RealmId,
    caller: Uuid,
    /// The session's hub token the realm token is minted from.
    session: std::sync::Arc<str>,
    path_and_query: String,
}

impl Key {
    /// The key of a request that may share a call: a GET without a body made for a
    /// signed-in caller. `None` for anything else.
    pub fn of(realm: &RealmId, req: &BackendRequest) -> Option<Key> {
        if req.method != axum::http::Method::GET || req.body.is_some() {
            return None;
        }
        let caller = req.caller.as_ref()?;
        Some(Key {
            realm: realm.clone(),
            caller: caller.user,
            session: caller.hub_token.clone(),
            path_and_query: req.path_and_query.clone(),
        })
    }
}

type Call = Shared<BoxFuture<'static, Outcome>>;
/// The calls in flight: each with the id of its entry, held weakly.
type Inflight = Arc<Mutex<HashMap<Key, (u64, WeakShared<BoxFuture<'static, Outcome>>)>>>;

/// The calls in flight, by key. Holds only weak handles: a call whose every waiter went
/// away is dropped (and its entry with it), never kept running for nobody.
#[derive(Default)]
pub struct Coalescer {
    inflight: Inflight,
    next_id: AtomicU64,
}

/// Removes a call's entry when the call ends or is dropped — only its own entry, not a
/// newer call's under the same key.
struct Leave {
    inflight: Inflight,
    key: Key,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        if let Ok(mut map) = self.inflight.lock() {
            if map.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
                map.remove(&self.key);
            }
        }
    }
}

impl Coalescer {
    /// Joins the call in flight under `key`, or starts `call` as that call. Returns the
    /// call and whether this request started it.
    pub fn join(
        &self,
        key: Key,
        call: impl FnOnce() -> BoxFuture<'static, Outcome>,
    ) -> (Call, bool) {
        // A poisoned lock (a panic while holding it) only costs the sharing.
        let Ok(mut map) = self.inflight.lock() else {
            return (call().shared(), true);
        };
        if let Some(shared) = map.get(&key).and_then(|(_, weak)| weak.upgrade()) {
            return (shared, false);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let leave = Leave {
            inflight: self.inflight.clone(),
            key: key.clone(),
            id,
        };
        let inner = call();
        let shared = async move {
            let outcome = inner.await;
            drop(leave);
            outcome
        }
        .boxed()
        .shared();
        if let Some(weak) = shared.downgrade() {
            map.insert(key, (id, weak));
        }
        (shared, true)
    }

    /// Calls in flight (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inflight.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bff::{BackendResponse, CallerAuth};
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn get(user: Uuid, path: &str) -> BackendRequest {
        BackendRequest::get(
            path.to_string(),
            Some(CallerAuth::new(user, format!("token-of-{user}"))),
        )
    }

    fn answer(text: String) -> Outcome {
        Outcome::Answered(BackendResponse {
            status: axum::http::StatusCode::OK,
            content_type: None,
            content_disposition: None,
            body: text.into(),
        })
    }

    #[test]
    fn only_a_callers_body_less_gets_have_a_key_and_the_key_holds_the_caller() {
        let realm = RealmId::parse("kszk").unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let ka = Key::of(&realm, &get(a, "/x")).unwrap();
        assert_eq!(Some(&ka), Key::of(&realm, &get(a, "/x")).as_ref());
        assert_ne!(Some(&ka), Key::of(&realm, &get(b, "/x")).as_ref());
        assert_ne!(Some(&ka), Key::of(&realm, &get(a, "/y")).as_ref());
        let other = RealmId::parse("kir-dev").unwrap();
        assert_ne!(Some(&ka), Key::of(&other, &get(a, "/x")).as_ref());
        // The same person's other session (perhaps from a provider this realm refuses).
        let other_session = BackendRequest::get(
            "/x".to_string(),
            Some(CallerAuth::new(a, "another-session-of-a")),
        );
        assert_ne!(Some(&ka), Key::of(&realm, &other_session).as_ref());
        let post = BackendRequest {
            method: axum::http::Method::POST,
            ..get(a, "/x")
        };
        assert!(Key::of(&realm, &post).is_none());
        let service = BackendRequest {
            service_bearer: Some("svc".into()),
            ..BackendRequest::get("/x".into(), None)
        };
        assert!(Key::of(&realm, &service).is_none());
    }

    #[tokio::test]
    async fn concurrent_joiners_share_one_call_and_the_entry_goes_when_it_ends() {
        let c = Coalescer::default();
        let realm = RealmId::parse("kszk").unwrap();
        let user = Uuid::new_v4();
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, wait) = tokio::sync::watch::channel(false);
        let start = |calls: Arc<AtomicUsize>, mut wait: tokio::sync::watch::Receiver<bool>| {
            move || {
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let _ = wait.wait_for(|v| *v).await;
                    answer("once".into())
                }
                .boxed()
            }
        };
        let mut waiting = Vec::new();
        let mut leaders = 0;
        for _ in 0..100 {
            let key = Key::of(&realm, &get(user, "/x")).unwrap();
            let (call, leader) = c.join(key, start(calls.clone(), wait.clone()));
            leaders += usize::from(leader);
            waiting.push(tokio::spawn(call));
        }
        assert_eq!((leaders, c.len()), (1, 1));
        release.send(true).unwrap();
        for w in waiting {
            assert!(matches!(w.await.unwrap(), Outcome::Answered(r) if r.body == "once"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.len(), 0, "a finished call leaves the map");
    }

    #[tokio::test]
    async fn a_call_nobody_waits_for_any_more_is_dropped_and_the_next_starts_afresh() {
        let c = Coalescer::default();
        let realm = RealmId::parse("kszk").unwrap();
        let user = Uuid::new_v4();
        let key = || Key::of(&realm, &get(user, "/x")).unwrap();
        let (call, _) = c.join(key(), || {
            async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                answer("never".into())
            }
            .boxed()
        });
        drop(call);
        assert_eq!(c.len(), 0);
        let (call, leader) = c.join(key(), || async { answer("fresh".into()) }.boxed());
        assert!(leader);
        assert!(matches!(call.await, Outcome::Answered(r) if r.body == "fresh"));
    }
}
