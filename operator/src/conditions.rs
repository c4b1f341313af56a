//! Typed status conditions with transition times (the Stackable/Kubernetes convention: the
//! transition time changes only when the status does).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// True / False / Unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// Sets condition `type_` in `conditions`, keeping its lastTransitionTime unless the status
/// changed. Returns whether anything (status, reason or message) changed.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: Status,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> bool {
    let message = message.into();
    let new = |t: Timestamp| Condition {
        type_: type_.to_string(),
        status: status.as_str().to_string(),
        reason: reason.to_string(),
        message: message.clone(),
        observed_generation: generation,
        last_transition_time: Time(t),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let transition = if c.status == status.as_str() {
                c.last_transition_time.0
            } else {
                now
            };
            let updated = new(transition);
            let changed = c.status != updated.status
                || c.reason != updated.reason
                || c.message != updated.message;
            *c = updated;
            changed
        }
        None => {
            conditions.push(new(now));
            true
        }
    }
}

/// The status of condition `type_`, if set.
pub fn status_of<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// Whether condition `type_` is True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    status_of(conditions, type_) == Some("True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t0 = Timestamp::now();
        let t1 = t0 + SignedDuration::from_secs(60);
        let t2 = t1 + SignedDuration::from_secs(60);
        let mut c = Vec::new();
        assert!(set(
            &mut c,
            "Ready",
            Status::False,
            "Pending",
            "waiting",
            Some(1),
            t0
        ));
        assert!(set(
            &mut c,
            "Ready",
            Status::False,
            "Pending",
            "still waiting",
            Some(1),
            t1
        ));
        assert_eq!(
            c[0].last_transition_time.0, t0,
            "same status keeps the time"
        );
        assert!(!set(
            &mut c,
            "Ready",
            Status::False,
            "Pending",
            "still waiting",
            Some(1),
            t1
        ));
        assert!(set(
            &mut c,
            "Ready",
            Status::True,
            "Ready",
            "ok",
            Some(2),
            t2
        ));
        assert_eq!(c[0].last_transition_time.0, t2);
        assert_eq!(c[0].observed_generation, Some(2));
        assert!(is_true(&c, "Ready"));
        assert_eq!(c.len(), 1);
    }
}
