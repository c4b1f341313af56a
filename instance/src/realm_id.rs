//! Realm ids: the isolation boundary's name. A `RealmId` can only be built from a
//! well-formed id, so every realm-scoped query downstream starts from a validated value.
//! The rule itself is the Realm CRD's ([`pek_realm_id::is_well_formed_realm_id`]), so an id
//! the apiserver accepts for a Realm is an id this instance serves, and no other.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The hub's own realm.
pub const HUB: &str = pek_realm_id::RESERVED_REALM_ID;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct RealmId(String);

impl RealmId {
    pub fn hub() -> Self {
        RealmId(HUB.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_hub(&self) -> bool {
        self.0 == HUB
    }

    /// An id read back from the realm table, which holds only ids that were parsed.
    pub(crate) fn stored(id: String) -> Self {
        RealmId(id)
    }

    /// Lowercase DNS-label-like id ([`pek_realm_id::REALM_ID_PATTERN`]): 2–63 chars,
    /// `[a-z0-9-]`, starting with a letter and not ending with '-'.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if pek_realm_id::is_well_formed_realm_id(s) {
            Ok(RealmId(s.to_string()))
        } else {
            Err(Error::BadRequest(format!(
                "invalid realm id {s:?}: expected 2-63 lowercase letters, digits or '-', \
                 starting with a letter and not ending with '-'"
            )))
        }
    }
}

impl FromStr for RealmId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        RealmId::parse(s)
    }
}

impl<'de> Deserialize<'de> for RealmId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RealmId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RealmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_ids_are_validated() {
        for ok in ["hub", "kir-dev", "a1", "conference-2025"] {
            assert!(RealmId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "Hub", "1abc", "ab-", "a_b", "a b", &"a".repeat(64)] {
            assert!(RealmId::parse(bad).is_err(), "{bad}");
        }
    }

    /// The instance serves exactly the ids a Realm resource may name, and the hub's own.
    #[test]
    fn the_instance_accepts_what_the_realm_crd_accepts() {
        for id in [
            "hub", "kszk", "a1", "a-", "-a", "A1", "a_b", "é1", "ab", "a",
        ] {
            assert_eq!(
                RealmId::parse(id).is_ok(),
                pek_realm_id::is_valid_realm_id(id) || id == HUB,
                "{id}"
            );
        }
    }
}
