//! "Is what we want already there?" — the check that keeps a steady state free of API writes.
//!
//! Server-side apply only owns the fields we send, and the API server adds defaults, status and
//! metadata; so an object is up to date when every field we would apply is present with the same
//! value (objects compared key by key, lists element by element). Anything else — a field
//! changed by hand, a deleted label, a missing object — is drift and is applied again.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Error;

/// Annotation with the digest of what the operator last applied to an object; a changed
/// digest means the wanted object changed (including fields dropped from it).
pub const APPLIED_DIGEST_ANNOTATION: &str = "pek.sch.bme.hu/applied-digest";

/// A short digest of an object as the operator would apply it.
pub fn digest<T: serde::Serialize>(object: &T) -> Result<String, Error> {
    let bytes = serde_json::to_vec(object).map_err(Error::serialize("an object for its digest"))?;
    let d = Sha256::digest(&bytes);
    Ok(d[..12].iter().map(|b| format!("{b:02x}")).collect())
}

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
        // The API server stores quantities canonically (`0.5` CPU comes back as `500m`,
        // `1024Mi` as `1Gi`): equal values are no drift.
        (Value::String(d), Value::String(a)) => {
            d == a || matches!((quantity(d), quantity(a)), (Some(x), Some(y)) if same(x, y))
        }
        (d, a) => d == a,
    }
}

fn same(x: f64, y: f64) -> bool {
    x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
}

/// The value of a Kubernetes quantity (`500m`, `0.5`, `1Gi`, `1e3`), None for anything else.
pub fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let (number, factor) = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ]
    .iter()
    .find_map(|(suffix, f)| s.strip_suffix(suffix).map(|n| (n, *f)))
    .unwrap_or((s, 1.0));
    // Digits with an optional sign, fraction and (without a suffix) exponent; nothing else
    // (so `inf`, `NaN` or a bare `.` are not quantities).
    let body = number.strip_prefix(['+', '-']).unwrap_or(number);
    let mantissa = match body.split_once(['e', 'E']) {
        Some((m, exp)) if factor == 1.0 => {
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if exp.is_empty() || !exp.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            m
        }
        Some(_) => return None,
        None => body,
    };
    let digits = mantissa.replacen('.', "", 1);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse::<f64>().ok().map(|v| v * factor)
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
    fn quantities_compare_by_value() {
        let desired = json!({"resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"},
                                           "limits": {"memory": "1.5Gi", "cpu": "2"}}});
        let stored = json!({"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                          "limits": {"memory": "1536Mi", "cpu": "2"}}});
        assert!(contains(&desired, &stored));
        assert!(!contains(
            &json!({"resources": {"requests": {"cpu": "0.5"}}}),
            &json!({"resources": {"requests": {"cpu": "501m"}}})
        ));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("64Mi"), Some(64.0 * 1024.0 * 1024.0));
        for not in [
            "", "abc", "1.2.3", "Mi", "inf", "NaN", "1e3Mi", "v1", "1 Gi",
        ] {
            assert_eq!(quantity(not), None, "{not}");
        }
        // Other strings are still compared as text.
        assert!(!contains(
            &json!({"image": "pek:1"}),
            &json!({"image": "pek:1.0"})
        ));
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
