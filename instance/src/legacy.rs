//! Old links: the pages of pek-next (`/profiles/{id}`, `/groups/{id}`) and of korok
//! (`/korok/showuser/id/{id}`, `/korok/showgroup/id/{id}`) name people and groups by the
//! ids they had there, which `pek import pek-next` keeps (`users.legacy_id`,
//! `groups.legacy_id`). These find what such an id names here; the page it redirects to
//! decides, as always, what the viewer may see.

use uuid::Uuid;

use crate::db::Db;
use crate::error::Result;
use crate::realm::{self, RealmId};

/// A pek-next / korok id as old links write it: digits only.
pub fn parse(id: &str) -> Option<i64> {
    (!id.is_empty() && id.len() <= 18 && id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| id.parse().ok())
        .flatten()
        .filter(|n| *n > 0)
}

/// The person an old id names.
pub async fn person(db: &Db, legacy_id: i64) -> Result<Option<Uuid>> {
    let mut g = db.global().await?;
    let id = sqlx::query_scalar!("SELECT id FROM users WHERE legacy_id = $1", legacy_id)
        .fetch_optional(g.conn())
        .await?;
    g.commit().await?;
    Ok(id)
}

/// The group an old id names, in the realm hosted here that it was imported into.
pub async fn group(db: &Db, legacy_id: i64) -> Result<Option<(RealmId, Uuid)>> {
    let mut g = db.global().await?;
    let realms = realm::local_ids(&mut g).await?;
    g.commit().await?;
    for r in realms {
        let mut tx = db.realm(&r).await?;
        let found = sqlx::query_scalar!(
            "SELECT id FROM groups WHERE realm_id = $1 AND legacy_id = $2",
            r.as_str(),
            legacy_id
        )
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        if let Some(id) = found {
            return Ok(Some((r, id)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #[test]
    fn old_ids_are_positive_digits() {
        assert_eq!(super::parse("123"), Some(123));
        for bad in ["", "0", "-1", "12a", "1e3", "9999999999999999999", " 1"] {
            assert_eq!(super::parse(bad), None, "{bad:?}");
        }
    }
}
