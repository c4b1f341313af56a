//! The directory other trusted services (AuthSCH and the like) read: a person's profile
//! basics, their current memberships with posts across all realms, and their accepted
//! entry awards of a semester — what pek-next's `/services/sync/:id`,
//! `/services/sync/:id/memberships` and `/services/entrants/get/:semester/:id` served.
//!
//! Services authenticate on the hub with per-service bearer tokens from a file
//! (`PEK_DIRECTORY_TOKEN_FILE`: one `<service-name> <token>` per line, `#` comments),
//! compared in constant time. The hub answers across realms: realms it hosts are read
//! directly, workers through `/internal/v1/realms/{realm}/directory/…`, authenticated
//! with that realm's token (the one the worker reports membership changes with, derived
//! from the federation secret), so no user token is involved and a worker answers only
//! the hub.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{Db, RealmTx};
use crate::error::{Error, Result};
use crate::realm::RealmId;

/// Who may read the directory.
#[derive(Debug, Default)]
pub struct DirectoryAuth {
    /// Hub: (service name, token).
    services: Vec<(String, String)>,
    /// Worker: this realm's token, which the hub presents when it asks.
    realm_token: Option<String>,
}

impl DirectoryAuth {
    pub fn hub(services: Vec<(String, String)>) -> Self {
        DirectoryAuth {
            services,
            realm_token: None,
        }
    }

    pub fn worker(realm_token: String) -> Self {
        DirectoryAuth {
            services: Vec::new(),
            realm_token: Some(realm_token),
        }
    }

    /// The service a presented token belongs to (every token compared, in constant time).
    pub fn service(&self, presented: &str) -> Option<&str> {
        use subtle::ConstantTimeEq;
        let mut found = None;
        for (name, token) in &self.services {
            if bool::from(token.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// Worker: whether it holds its realm's token (the hub's directory does not).
    pub fn has_realm_token(&self) -> bool {
        self.realm_token.is_some()
    }

    /// Worker: whether the presented token is this realm's.
    pub fn realm_token_ok(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.realm_token
            .as_ref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(presented.as_bytes())))
    }
}

/// Reads the service token file: `<service-name> <token>` per line; blank lines and
/// `#` comments are skipped. Names are 1–64 of `[A-Za-z0-9._-]`, tokens at least 16
/// characters, both unique.
pub fn read_service_tokens(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading directory token file {}", path.display()))?;
    parse_service_tokens(&text).with_context(|| format!("in {}", path.display()))
}

pub fn parse_service_tokens(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!(
                "line {}: expected `<service-name> <token>` (the token is not shown)",
                n + 1
            );
        };
        anyhow::ensure!(
            (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "line {}: service names are 1-64 of A-Z a-z 0-9 . _ -",
            n + 1
        );
        anyhow::ensure!(
            token.len() >= 16,
            "line {}: the token of service {name} must be at least 16 characters",
            n + 1
        );
        anyhow::ensure!(
            !out.iter().any(|(a, b)| a == name || b == token),
            "line {}: service {name} or its token is listed twice",
            n + 1
        );
        out.push((name.to_string(), token.to_string()));
    }
    Ok(out)
}

/// A current membership (NEWBIE or ACTIVE) as the directory shows it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirMembership {
    pub realm_id: String,
    pub group_id: Uuid,
    pub group_name: String,
    pub status: String,
    pub posts: Vec<String>,
    pub start_at: chrono::DateTime<chrono::Utc>,
}

/// An accepted entry award request.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirEntryAward {
    pub realm_id: String,
    pub semester_name: String,
    pub group_id: Uuid,
    pub group_name: String,
    /// KDO, KB or AB.
    pub kind: String,
    pub justification: String,
}

/// The user's current memberships in this realm.
pub async fn memberships(tx: &mut RealmTx, user: Uuid) -> Result<Vec<DirMembership>> {
    let realm = tx.realm().as_str().to_string();
    Ok(sqlx::query_as!(
        DirMembership,
        "SELECT m.realm_id, m.group_id, g.name AS group_name, m.status, m.posts, m.start_at
           FROM memberships m
           JOIN groups g ON g.realm_id = m.realm_id AND g.id = m.group_id
          WHERE m.realm_id = $1 AND m.user_id = $2 AND m.status IN ('NEWBIE', 'ACTIVE')
          ORDER BY g.name_folded, g.id",
        realm,
        user
    )
    .fetch_all(tx.conn())
    .await?)
}

/// The user's accepted entry awards of a semester (by name, the same in every realm) in
/// this realm, from live (not rejected) scoreboards and consented memberships.
pub async fn entry_awards(
    tx: &mut RealmTx,
    semester: &str,
    user: Uuid,
) -> Result<Vec<DirEntryAward>> {
    let realm = tx.realm().as_str().to_string();
    if semester.trim().is_empty()
        || semester.chars().count() > 50
        || semester.chars().any(char::is_control)
    {
        return Err(Error::invalid("semester must be 1-50 characters"));
    }
    // Counted statuses: evaluation::COUNTED_STATUSES.
    Ok(sqlx::query_as!(
        DirEntryAward,
        "SELECT e.realm_id, sem.name AS semester_name, e.group_id, g.name AS group_name,
                e.kind, e.justification
           FROM entry_award_requests e
           JOIN semesters sem ON sem.realm_id = e.realm_id AND sem.id = e.semester_id
           JOIN scoreboards s ON s.realm_id = e.realm_id AND s.id = e.scoreboard_id
           JOIN groups g ON g.realm_id = e.realm_id AND g.id = e.group_id
           JOIN memberships m ON m.realm_id = e.realm_id AND m.id = e.membership_id
          WHERE e.realm_id = $1 AND sem.name = $2 AND m.user_id = $3
            AND e.status = 'ACCEPTED' AND s.status <> 'REJECTED'
            AND m.status IN ('NEWBIE', 'ACTIVE', 'FORMER', 'ARCHIVED')
          ORDER BY g.name_folded, g.id",
        realm,
        semester.trim(),
        user
    )
    .fetch_all(tx.conn())
    .await?)
}

/// A person by hub user id, AuthSCH id, Neptun code or pek-next id (what services know
/// them by); 400 for an id that can be none of these, 404 for nobody.
pub async fn resolve_user(
    db: &Db,
    naming: &crate::identity::Naming,
    id: &str,
) -> Result<(Uuid, Option<String>)> {
    let id = id.trim();
    if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "the id must be a user id or an AuthSCH id".into(),
        ));
    }
    let mut g = db.global().await?;
    // An identity named with its provider (`authsch:<id>`, `<provider>:<subject>`).
    if id.contains(':') {
        let n = naming.parse(id);
        if let Some(user) = crate::identity::find(&mut g, n.issuer, n.subject).await? {
            let authsch = sqlx::query_scalar!("SELECT auth_sch_id FROM users WHERE id = $1", user)
                .fetch_one(g.conn())
                .await?;
            g.commit().await?;
            return Ok((user, authsch));
        }
    }
    // The hub's id or the AuthSCH id first; then what pek-next's services knew people
    // by: the Neptun code (`/services/sync/{neptun}`) or pek-next's own id. Someone merged
    // into another person is answered as that person (a service that stored their old id
    // gets the one record that is kept up to date).
    let row: Option<(Uuid, Option<String>)> = sqlx::query!(
        "SELECT t.id, t.auth_sch_id FROM users u
           LEFT JOIN profiles p ON p.user_id = u.id
           JOIN users t ON t.id = coalesce(u.merged_into, u.id)
          WHERE u.id::text = $1 OR u.auth_sch_id = $1
             OR ($1 ~ '^[A-Za-z0-9]{6}$' AND p.neptun = upper($1))
             OR ($1 ~ '^[0-9]{1,18}$' AND u.legacy_id = $1::bigint)
          ORDER BY (u.id::text = $1 OR u.auth_sch_id = $1) DESC,
                   (p.neptun IS NOT DISTINCT FROM upper($1)) DESC
          LIMIT 1",
        id
    )
    .fetch_optional(g.conn())
    .await?
    .map(|r| (r.id, r.auth_sch_id));
    g.commit().await?;
    row.ok_or_else(|| Error::not_found(format!("user {id}")))
}

/// [`memberships`] in a realm this process hosts, in a transaction of its own.
pub async fn memberships_in(db: &Db, realm: &RealmId, user: Uuid) -> Result<Vec<DirMembership>> {
    let mut tx = db.realm(realm).await?;
    let out = memberships(&mut tx, user).await?;
    tx.commit().await?;
    Ok(out)
}

/// [`entry_awards`] in a realm this process hosts, in a transaction of its own.
pub async fn entry_awards_in(
    db: &Db,
    realm: &RealmId,
    semester: &str,
    user: Uuid,
) -> Result<Vec<DirEntryAward>> {
    let mut tx = db.realm(realm).await?;
    let out = entry_awards(&mut tx, semester, user).await?;
    tx.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_token_file() {
        let ok = parse_service_tokens(
            "# AuthSCH\nauthsch 0123456789abcdef0123\n\n  vir.sch   fedcba9876543210fedc  \n",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].0, "vir.sch");
        let auth = DirectoryAuth::hub(ok);
        assert_eq!(auth.service("fedcba9876543210fedc"), Some("vir.sch"));
        assert_eq!(auth.service("fedcba9876543210fedX"), None);
        assert_eq!(auth.service(""), None);
        for bad in [
            "authsch short",
            "authsch",
            "a b c",
            "bad/name 0123456789abcdef0123",
            "a 0123456789abcdef0123\na 1123456789abcdef0123",
            "a 0123456789abcdef0123\nb 0123456789abcdef0123",
        ] {
            let err = parse_service_tokens(bad).unwrap_err().to_string();
            assert!(!err.contains("0123456789abcdef"), "token leaked: {err}");
        }
    }
}
