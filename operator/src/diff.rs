//! "Is what we want already there?" — the check that keeps a steady state free of API writes.
//!
//! Server-side apply only owns the fields we send, and the API server adds defaults, status and
//! metadata; so an object is up to date when every field we would apply is present with the same
//! value (objects compared key by key, lists element by element). Anything else — a field
//! changed by hand, a deleted label, a missing object — is drift and is applied again.

use serde_json::Value;

/// Whether `actual` contains everything in `desired`.
pub fn contains(desired: &Value, actual: &Value) -> bool {
    match (desired, actual) {
        (Value::Object(d), Value::Object(a)) => d.iter().all(|(k, dv)| match a.get(k) {
            Some(av) => contains(dv, av),
            None => dv.is_null() || dv.as_object().is_some_and(|o| o.is_empty()),
        }),
        (Value::Array(d), Value::Array(a)) => {
            d.len() <= a.len() && d.iter().zip(a).all(|(dv, av)| contains(dv, av))
        }
        (Value::Number(d), Value::Number(a)) => d.as_f64() == a.as_f64(),
        (d, a) => d == a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_extra_fields_are_not_drift() {
        let desired = json!({"spec": {"replicas": 1, "template": {"containers": [{"name": "w", "image": "a"}]}}});
        let actual = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600,
            "template": {"containers": [{"name": "w", "image": "a", "terminationMessagePath": "/dev/x"}]}},
            "status": {"availableReplicas": 1}});
        assert!(contains(&desired, &actual));
    }

    #[test]
    fn changed_missing_and_shortened_fields_are_drift() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 8080}, {"port": 9090}]}});
        assert!(!contains(
            &desired,
            &json!({"spec": {"replicas": 1, "ports": [{"port": 8080}, {"port": 9090}]}})
        ));
        assert!(!contains(
            &desired,
            &json!({"spec": {"ports": [{"port": 8080}, {"port": 9090}]}})
        ));
        assert!(!contains(
            &desired,
            &json!({"spec": {"replicas": 2, "ports": [{"port": 8080}]}})
        ));
        assert!(!contains(
            &json!({"metadata": {"labels": {"a": "b"}}}),
            &json!({"metadata": {"labels": {}}})
        ));
    }
}
