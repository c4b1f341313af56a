//! The realm id rule, written once: the Realm CRD's CEL validation (`pek-crds`), the
//! operator and the instance's API paths (`pek`) all use it. A crate of its own, without
//! dependencies, so the instance does not carry the Kubernetes types for one function.

/// The realm id reserved for the hub itself.
pub const RESERVED_REALM_ID: &str = "hub";

/// Well-formed realm ids (a DNS-label-like lowercase name). The CRD's CEL rule on
/// `spec.realmId` is `self.matches('<this>')` (a test in `pek-crds` checks the generated
/// CRD and that the apiserver's CEL and [`is_valid_realm_id`] agree), and the instance
/// documents this pattern for the `{realm}` path segment of its OpenAPI document.
pub const REALM_ID_PATTERN: &str = "^[a-z][a-z0-9-]{0,61}[a-z0-9]$";

/// Whether `id` matches [`REALM_ID_PATTERN`]: 2 to 63 lowercase letters, digits or '-',
/// starting with a letter and ending with a letter or digit. `hub` matches too: the hub
/// serves that realm itself, so only a Realm resource may not take it
/// ([`is_valid_realm_id`]).
pub fn is_well_formed_realm_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (2..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

/// Whether `id` is a well-formed, non-reserved realm id: what a Realm resource may name
/// (the same rules as the CRD's CEL).
pub fn is_valid_realm_id(id: &str) -> bool {
    is_well_formed_realm_id(id) && id != RESERVED_REALM_ID
}
