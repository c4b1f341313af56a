//! Merging a fan-out: the one place the BFF's merge rules live. Every cross-realm answer
//! (groups, people, whose groups, points, the service directory) is made with
//! [`contribution`] per realm and [`combine`] (alone, when some realms are read
//! in-process without a backend):
//!
//! - a 403, or a realm that is not registered, means "nothing there for you": the realm
//!   contributes nothing and the answer is not partial;
//! - a realm that cannot be reached, does not answer within the deadline, answers 5xx
//!   after the retries, answers a status the call does not expect or something
//!   unreadable is listed in `unavailable` (sorted, once each) and, with the reason, in
//!   `leftOut`, and the answer is `partial` — never an error;
//! - a realm that does not accept the provider the caller's session signed in with (the
//!   hub's own 403 with reason `provider_not_accepted`, see `RealmTokens`) is listed in
//!   `signInRequired` with the providers it accepts — "sign in with X to see this" — and
//!   is neither a failure nor partial;
//! - a realm that had more than it gave makes the answer `truncated`;
//! - what the realms gave comes back in realm order.
//!
//! Two rules depend on the call ([`Rules`]): whether a 404 is "nothing there" (a
//! semester or a person a realm does not know) or a failure (a realm that should know
//! the route), and whether a 400/422 is the caller's error — the same query is invalid
//! everywhere, so it is answered as a single realm would — or a failure.

use axum::http::StatusCode;

use super::left_out::{Failure, LeftOut, Reason};
use super::{BackendResponse, Outcome};
use crate::error::{Error, Result};
use crate::realm::RealmId;

/// The per-call part of the merge rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// A 404 means "nothing there for you" (otherwise: the realm is unavailable).
    pub not_found_is_nothing: bool,
    /// A 400 or 422 is the caller's error: the first one (in realm order; in a fan-out
    /// that merges as answers arrive, the first to arrive) becomes the answer (otherwise:
    /// the realm is unavailable).
    pub caller_errors_fail: bool,
}

/// What one realm contributed.
#[derive(Debug)]
pub enum Contribution<T> {
    /// A usable answer; `more`: the realm had more than it gave.
    Answer { value: T, more: bool },
    /// Nothing there for the caller.
    Nothing,
    /// Nothing for this session: the realm accepts only sessions of these providers
    /// (ids, display names).
    SignIn(Vec<String>, Vec<String>),
    /// No usable answer: why (the reason goes to the caller, the detail to the log).
    Failed(Failure),
}

/// A merged fan-out.
#[derive(Debug)]
pub struct Merged<T> {
    /// What each realm that answered gave, in realm order.
    pub answers: Vec<(RealmId, T)>,
    /// Realms with nothing there for the caller, in realm order.
    pub nothing: Vec<RealmId>,
    /// Realms that did not answer usably: sorted, each once.
    pub unavailable: Vec<RealmId>,
    /// The same realms, with the reason each was left out.
    pub left_out: Vec<LeftOut>,
    /// Realms that would answer a session of another provider, with those providers
    /// (ids, display names).
    pub sign_in: Vec<(RealmId, Vec<String>, Vec<String>)>,
    /// Some realm had more than it gave.
    pub truncated: bool,
}

impl<T> Merged<T> {
    /// Some realm did not answer: the answer may be incomplete.
    pub fn partial(&self) -> bool {
        !self.unavailable.is_empty()
    }

    /// Which realms the answer covers (`partial`, `unavailable`, `leftOut`,
    /// `signInRequired`).
    pub fn coverage(&self) -> super::Coverage {
        super::Coverage::new(
            self.left_out.clone(),
            sign_in_required(self.sign_in.clone()),
        )
    }

    /// `{items, partial, unavailable, leftOut, truncated}`, the items made from the
    /// answers.
    pub fn federated<I>(
        self,
        items: impl FnOnce(Vec<(RealmId, T)>) -> Vec<I>,
    ) -> super::Federated<I> {
        super::Federated {
            coverage: self.coverage(),
            truncated: self.truncated,
            items: items(self.answers),
        }
    }
}

/// The realms of [`Merged::sign_in`] as answers list them (`signInRequired`).
pub fn sign_in_required(
    sign_in: Vec<(RealmId, Vec<String>, Vec<String>)>,
) -> Vec<super::SignInRequired> {
    sign_in
        .into_iter()
        .map(|(realm, providers, provider_names)| super::SignInRequired {
            realm,
            providers,
            provider_names,
        })
        .collect()
}

/// What one realm's outcome contributes by the rules. `read` reads a realm's successful
/// (2xx) answer into what it contributes and whether the realm had more; an answer it
/// cannot read (`Err`) makes the realm unavailable. Fails only with a caller's error when
/// `rules.caller_errors_fail`. A fan-out ([`super::Bff::fan_out_merged`]) reads each
/// answer with this as it arrives and [`combine`]s them at the end.
pub fn contribution<T>(
    realm: &RealmId,
    outcome: Outcome,
    rules: Rules,
    read: &mut impl FnMut(&RealmId, &BackendResponse) -> std::result::Result<(T, bool), String>,
) -> Result<Contribution<T>> {
    Ok(match outcome {
        Outcome::Forbidden => Contribution::Nothing,
        Outcome::Unavailable(why) => Contribution::Failed(why),
        Outcome::Answered(r) => match r.status {
            StatusCode::FORBIDDEN => match super::sign_in_required(&r) {
                Some((ids, names)) => Contribution::SignIn(ids, names),
                None => Contribution::Nothing,
            },
            StatusCode::NOT_FOUND if rules.not_found_is_nothing => Contribution::Nothing,
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
                if rules.caller_errors_fail =>
            {
                return Err(realm_error(r.status, &r.body));
            }
            s if s.is_success() => match read(realm, &r) {
                Ok((value, more)) => Contribution::Answer { value, more },
                Err(e) => Contribution::Failed(Failure::new(
                    Reason::BadAnswer,
                    format!("unreadable answer: {e}"),
                )),
            },
            // 401 would have failed at the hub already; anything else is the realm's
            // problem, not the caller's.
            s => Contribution::Failed(Failure::new(
                Reason::Failing,
                format!("unexpected answer {s}"),
            )),
        },
    })
}

/// The merged answer from every realm's contribution (those of a fan-out, or gathered
/// by other means: realms read in-process).
pub fn combine<T>(
    contributions: impl IntoIterator<Item = (RealmId, Contribution<T>)>,
) -> Merged<T> {
    let mut contributions: Vec<_> = contributions.into_iter().collect();
    contributions.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged = Merged {
        answers: Vec::new(),
        nothing: Vec::new(),
        unavailable: Vec::new(),
        left_out: Vec::new(),
        sign_in: Vec::new(),
        truncated: false,
    };
    for (realm, c) in contributions {
        match c {
            Contribution::Answer { value, more } => {
                merged.truncated |= more;
                merged.answers.push((realm, value));
            }
            Contribution::Nothing => merged.nothing.push(realm),
            Contribution::SignIn(ids, names) => merged.sign_in.push((realm, ids, names)),
            Contribution::Failed(why) => {
                tracing::warn!(realm = %realm, reason = why.reason.as_str(), detail = %why,
                    "realm left out of a merged answer");
                merged.left_out.push(LeftOut {
                    realm: realm.clone(),
                    reason: why.reason,
                });
                merged.unavailable.push(realm);
            }
        }
    }
    merged.unavailable.dedup();
    merged.left_out.dedup_by(|a, b| a.realm == b.realm);
    merged
}

/// A realm's error answer, passed on with its status and message.
pub fn realm_error(status: StatusCode, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(String::from))
        .unwrap_or_else(|| format!("a realm answered {status}"));
    match status {
        StatusCode::BAD_REQUEST => Error::BadRequest(message),
        StatusCode::UNPROCESSABLE_ENTITY => Error::Unprocessable(message),
        StatusCode::NOT_FOUND => Error::NotFound(message),
        StatusCode::CONFLICT => Error::Conflict(message),
        StatusCode::FORBIDDEN => Error::Forbidden(message),
        _ => Error::Unavailable(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merges a fan-out's outcomes by the rules. `read` reads a realm's successful (2xx)
    /// answer into what it contributes and whether the realm had more; an answer it cannot
    /// read (`Err`) makes the realm unavailable. Fails only with a caller's error when
    /// `rules.caller_errors_fail`.
    fn merge<T>(
        outcomes: Vec<(RealmId, Outcome)>,
        rules: Rules,
        mut read: impl FnMut(&RealmId, &BackendResponse) -> std::result::Result<(T, bool), String>,
    ) -> Result<Merged<T>> {
        let mut contributions = Vec::with_capacity(outcomes.len());
        let mut outcomes = outcomes;
        // A caller's error is the first one in realm order.
        outcomes.sort_by(|a, b| a.0.cmp(&b.0));
        for (realm, outcome) in outcomes {
            let c = contribution(&realm, outcome, rules, &mut read)?;
            contributions.push((realm, c));
        }
        Ok(combine(contributions))
    }

    fn realm(id: &str) -> RealmId {
        RealmId::parse(id).unwrap()
    }

    fn answer(status: u16, body: &str) -> Outcome {
        Outcome::Answered(BackendResponse {
            status: StatusCode::from_u16(status).unwrap(),
            content_type: None,
            content_disposition: None,
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        })
    }

    /// Reads `{"items": [...], "more": bool}`.
    fn items(_: &RealmId, r: &BackendResponse) -> std::result::Result<(Vec<i64>, bool), String> {
        let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
        let items = v["items"]
            .as_array()
            .ok_or("no items")?
            .iter()
            .filter_map(|i| i.as_i64())
            .collect();
        Ok((items, v["more"].as_bool().unwrap_or(false)))
    }

    #[test]
    fn a_403_or_an_unregistered_realm_is_nothing_there_not_a_failure() {
        let m = merge(
            vec![
                (realm("beta"), answer(403, r#"{"error":{"message":"no"}}"#)),
                (realm("alpha"), answer(200, r#"{"items":[1]}"#)),
                (realm("gamma"), Outcome::Forbidden),
            ],
            Rules::default(),
            items,
        )
        .unwrap();
        assert_eq!(m.answers, vec![(realm("alpha"), vec![1])]);
        assert_eq!(m.nothing, vec![realm("beta"), realm("gamma")]);
        assert!(m.unavailable.is_empty());
        assert!(!m.partial());
        assert!(!m.truncated);
    }

    #[test]
    fn failures_go_to_unavailable_sorted_once_and_make_the_answer_partial() {
        let m = merge(
            vec![
                (realm("zeta"), answer(200, r#"{"items":[3]}"#)),
                (
                    realm("kappa"),
                    Outcome::Unavailable(Failure::new(Reason::Timeout, "no answer within 2000 ms")),
                ),
                (realm("delta"), answer(500, "{}")),
                (
                    realm("kappa"),
                    Outcome::Unavailable(Failure::new(Reason::Unreachable, "connection refused")),
                ),
                (realm("eta"), answer(200, "not json")),
                (realm("beta"), answer(401, "{}")),
                (realm("alpha"), answer(200, r#"{"items":[1]}"#)),
            ],
            Rules::default(),
            items,
        )
        .unwrap();
        assert_eq!(
            m.unavailable,
            ["beta", "delta", "eta", "kappa"].map(realm).to_vec()
        );
        // Each with its reason; a realm that failed twice, with the first.
        let reasons: Vec<_> = m
            .left_out
            .iter()
            .map(|l| (l.realm.as_str(), l.reason))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("beta", Reason::Failing),
                ("delta", Reason::Failing),
                ("eta", Reason::BadAnswer),
                ("kappa", Reason::Timeout),
            ]
        );
        assert!(m.partial());
        assert_eq!(
            m.answers,
            vec![(realm("alpha"), vec![1]), (realm("zeta"), vec![3])],
            "answers in realm order"
        );
    }

    #[test]
    fn a_realm_with_more_than_it_gave_truncates_the_answer() {
        let m = merge(
            vec![
                (realm("alpha"), answer(200, r#"{"items":[1],"more":false}"#)),
                (realm("beta"), answer(200, r#"{"items":[2],"more":true}"#)),
            ],
            Rules::default(),
            items,
        )
        .unwrap();
        assert!(m.truncated);
        let f = m.federated(|a| a.into_iter().flat_map(|(_, v)| v).collect());
        assert_eq!(f.items, vec![1, 2]);
        assert!(f.truncated && !f.coverage.partial && f.coverage.unavailable.is_empty());
    }

    #[test]
    fn a_404_is_nothing_or_a_failure_by_the_rules() {
        let outcomes = || vec![(realm("alpha"), answer(404, "{}"))];
        let nothing = Rules {
            not_found_is_nothing: true,
            ..Rules::default()
        };
        let m = merge(outcomes(), nothing, items).unwrap();
        assert_eq!((m.nothing.len(), m.unavailable.len()), (1, 0));
        let m = merge(outcomes(), Rules::default(), items).unwrap();
        assert_eq!((m.nothing.len(), m.unavailable.len()), (0, 1));
    }

    #[test]
    fn a_caller_error_is_the_answer_or_a_failure_by_the_rules() {
        let outcomes = || {
            vec![
                (
                    realm("beta"),
                    answer(422, r#"{"error":{"message":"bad q"}}"#),
                ),
                (realm("alpha"), answer(200, r#"{"items":[1]}"#)),
            ]
        };
        let fail = Rules {
            caller_errors_fail: true,
            ..Rules::default()
        };
        match merge(outcomes(), fail, items) {
            Err(Error::Unprocessable(m)) => assert_eq!(m, "bad q"),
            other => panic!("expected the realm's 422, got {other:?}"),
        }
        let m = merge(outcomes(), Rules::default(), items).unwrap();
        assert_eq!(m.unavailable, vec![realm("beta")]);
    }

    #[test]
    fn combine_takes_contributions_read_in_process() {
        let m = combine(vec![
            (
                realm("beta"),
                Contribution::Failed(Failure::new(Reason::Down, "down")),
            ),
            (
                realm("alpha"),
                Contribution::Answer {
                    value: 1,
                    more: false,
                },
            ),
        ]);
        assert_eq!(m.answers, vec![(realm("alpha"), 1)]);
        assert_eq!(m.unavailable, vec![realm("beta")]);
        assert_eq!(
            m.left_out,
            vec![LeftOut {
                realm: realm("beta"),
                reason: Reason::Down
            }]
        );
    }
}
