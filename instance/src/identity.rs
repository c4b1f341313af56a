//! A person's identities `(issuer, subject)`: which sign-ins reach which person, linking
//! and unlinking them, and the record of both.
//!
//! The AuthSCH identity (issuer `authsch`) is `users.auth_sch_id`; every other provider's
//! identities are rows of `user_identities` (see the migration `…_identities.sql` for
//! why); the view `identities` lists both. A person is found only by an identity — never
//! by e-mail — and a second identity is linked only from a signed-in session (the login
//! callback checks that; see `login.rs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::DEFAULT_PROVIDER;
use crate::db::GlobalTx;
use crate::error::{Error, Result};

/// The issuer of the AuthSCH identity (`users.auth_sch_id`).
pub const AUTHSCH_ISSUER: &str = "authsch";

/// The stable reason of the refusal of an unknown identity at a provider that may not
/// create people.
pub const IDENTITY_NOT_LINKED: &str = "identity_not_linked";

/// The person an identity belongs to: for an identity of a person merged into another
/// (see `person_merge.rs`), that other person.
pub async fn find(g: &mut GlobalTx, issuer: &str, subject: &str) -> Result<Option<Uuid>> {
    if issuer == AUTHSCH_ISSUER {
        return Ok(sqlx::query_scalar!(
            r#"SELECT coalesce(merged_into, id) AS "id!" FROM users WHERE auth_sch_id = $1"#,
            subject
        )
        .fetch_optional(g.conn())
        .await?);
    }
    Ok(sqlx::query_scalar!(
        r#"SELECT coalesce(u.merged_into, u.id) AS "id!"
             FROM user_identities i JOIN users u ON u.id = i.user_id
            WHERE i.issuer = $1 AND i.subject = $2"#,
        issuer,
        subject
    )
    .fetch_optional(g.conn())
    .await?)
}

/// Records a sign-in through a non-AuthSCH identity.
pub async fn touch(g: &mut GlobalTx, user: Uuid, issuer: &str, subject: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE user_identities SET last_login = now() WHERE issuer = $1 AND subject = $2",
        issuer,
        subject
    )
    .execute(g.conn())
    .await?;
    sqlx::query!("UPDATE users SET last_login = now() WHERE id = $1", user)
        .execute(g.conn())
        .await?;
    Ok(())
}

/// A new person whose only identity is `(issuer, subject)` of a non-AuthSCH provider.
pub async fn create_person(
    g: &mut GlobalTx,
    issuer: &str,
    subject: &str,
    provider: &str,
) -> Result<Uuid> {
    let user: Uuid = sqlx::query_scalar!(
        "INSERT INTO users (auth_sch_id, last_login) VALUES (NULL, now()) RETURNING id"
    )
    .fetch_one(g.conn())
    .await?;
    insert(g, user, issuer, subject, provider).await?;
    record(g, user, Some(user), "link", issuer, subject, provider).await?;
    Ok(user)
}

async fn insert(
    g: &mut GlobalTx,
    user: Uuid,
    issuer: &str,
    subject: &str,
    provider: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO user_identities (user_id, issuer, subject, provider, last_login)
         VALUES ($1, $2, $3, $4, now())",
        user,
        issuer,
        subject,
        provider
    )
    .execute(g.conn())
    .await?;
    Ok(())
}

async fn record(
    g: &mut GlobalTx,
    user: Uuid,
    actor: Option<Uuid>,
    action: &str,
    issuer: &str,
    subject: &str,
    provider: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO identity_events (user_id, actor, action, issuer, subject, provider)
         VALUES ($1, $2, $3, $4, $5, $6)",
        user,
        actor,
        action,
        issuer,
        subject,
        provider
    )
    .execute(g.conn())
    .await?;
    Ok(())
}

/// Links `(issuer, subject)` to `user`, who proved it from their own signed-in session.
/// An identity that already belongs to someone else is refused (409: only merging two
/// people joins them); linking one's own identity again changes nothing.
pub async fn link(
    g: &mut GlobalTx,
    user: Uuid,
    issuer: &str,
    subject: &str,
    provider: &str,
) -> Result<()> {
    // One link or unlink of a person at a time (the last-identity rule).
    lock_person(g, user).await?;
    match find(g, issuer, subject).await? {
        Some(owner) if owner == user => return Ok(()),
        Some(_) => {
            return Err(Error::conflict_because(
                "identity_taken",
                "this sign-in already belongs to another person here; sign in with it to use \
                 that account (a hub administrator can merge two people)",
            ))
        }
        None => {}
    }
    if issuer == AUTHSCH_ISSUER {
        let set = sqlx::query!(
            "UPDATE users SET auth_sch_id = $2 WHERE id = $1 AND auth_sch_id IS NULL",
            user,
            subject
        )
        .execute(g.conn())
        .await?
        .rows_affected();
        if set == 0 {
            return Err(Error::conflict_because(
                "identity_slot_taken",
                "you already have an AuthSCH sign-in; unlink it first",
            ));
        }
    } else {
        insert(g, user, issuer, subject, provider).await?;
    }
    record(g, user, Some(user), "link", issuer, subject, provider).await
}

async fn lock_person(g: &mut GlobalTx, user: Uuid) -> Result<()> {
    sqlx::query_scalar!("SELECT id FROM users WHERE id = $1 FOR UPDATE", user)
        .fetch_optional(g.conn())
        .await?
        .ok_or_else(|| Error::not_found(format!("user {user}")))?;
    Ok(())
}

/// One of a person's identities.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    /// What `DELETE /api/v1/me/identities/{key}` takes: `authsch` for the AuthSCH
    /// identity, `authsch:<id>` for the AuthSCH identity of a person merged into this
    /// one, an id otherwise.
    pub key: String,
    /// The sign-in provider's id.
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub linked_at: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

/// A link, unlink or merge of an identity.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityEvent {
    pub at: DateTime<Utc>,
    /// `link`, `unlink` or `merge`.
    pub action: String,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    /// Who did it (the person themselves, or a hub administrator).
    pub actor: Option<Uuid>,
}

/// A person's identities, AuthSCH first.
pub async fn list(g: &mut GlobalTx, user: Uuid) -> Result<Vec<IdentityView>> {
    let mut out = Vec::new();
    let authsch = sqlx::query!(
        r#"SELECT auth_sch_id AS "subject!", created_at, last_login
             FROM users WHERE id = $1 AND auth_sch_id IS NOT NULL"#,
        user
    )
    .fetch_optional(g.conn())
    .await?;
    if let Some(r) = authsch {
        out.push(IdentityView {
            key: AUTHSCH_ISSUER.into(),
            provider: DEFAULT_PROVIDER.into(),
            issuer: AUTHSCH_ISSUER.into(),
            subject: r.subject,
            linked_at: r.created_at,
            last_login: r.last_login,
        });
    }
    // People merged into this one whose AuthSCH id could not move here (one per person;
    // this person has their own): it signs in here, so it is listed and may be unlinked.
    let merged = sqlx::query!(
        r#"SELECT id, auth_sch_id AS "subject!", created_at, last_login
             FROM users WHERE merged_into = $1 AND auth_sch_id IS NOT NULL
            ORDER BY created_at, id"#,
        user
    )
    .fetch_all(g.conn())
    .await?;
    out.extend(merged.into_iter().map(|r| IdentityView {
        key: format!("{AUTHSCH_ISSUER}:{}", r.id),
        provider: DEFAULT_PROVIDER.into(),
        issuer: AUTHSCH_ISSUER.into(),
        subject: r.subject,
        linked_at: r.created_at,
        last_login: r.last_login,
    }));
    let rows = sqlx::query!(
        "SELECT id, provider, issuer, subject, created_at, last_login
           FROM user_identities WHERE user_id = $1 ORDER BY created_at, id",
        user
    )
    .fetch_all(g.conn())
    .await?;
    out.extend(rows.into_iter().map(|r| IdentityView {
        key: r.id.to_string(),
        provider: r.provider,
        issuer: r.issuer,
        subject: r.subject,
        linked_at: r.created_at,
        last_login: r.last_login,
    }));
    Ok(out)
}

/// The record of a person's links and unlinks, newest first (at most 200).
pub async fn events(g: &mut GlobalTx, user: Uuid) -> Result<Vec<IdentityEvent>> {
    Ok(sqlx::query_as!(
        IdentityEvent,
        "SELECT at, action, provider, issuer, subject, actor
           FROM identity_events WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT 200",
        user
    )
    .fetch_all(g.conn())
    .await?)
}

/// Unlinks one of `user`'s identities (`key` as [`IdentityView::key`]), by `actor`. The
/// last one stays: a person without an identity could never sign in again (409).
pub async fn unlink(g: &mut GlobalTx, user: Uuid, key: &str, actor: Uuid) -> Result<()> {
    lock_person(g, user).await?;
    let all = list(g, user).await?;
    let Some(it) = all.iter().find(|i| i.key == key) else {
        return Err(Error::not_found(format!("identity {key}")));
    };
    if all.len() <= 1 {
        return Err(Error::conflict_because(
            "last_identity",
            "this is your only way to sign in; link another provider before unlinking it",
        ));
    }
    if it.issuer == AUTHSCH_ISSUER {
        // Their own, or that of someone merged into them (`authsch:<that person's id>`).
        let holder = key
            .strip_prefix(AUTHSCH_ISSUER)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|id| Uuid::parse_str(id).ok());
        sqlx::query!(
            "UPDATE users SET auth_sch_id = NULL
              WHERE id = coalesce($2::uuid, $1) AND ($2::uuid IS NULL OR merged_into = $1)",
            user,
            holder
        )
        .execute(g.conn())
        .await?;
    } else {
        let id = Uuid::parse_str(key).map_err(|_| Error::not_found(format!("identity {key}")))?;
        sqlx::query!(
            "DELETE FROM user_identities WHERE id = $1 AND user_id = $2",
            id,
            user
        )
        .execute(g.conn())
        .await?;
    }
    record(
        g,
        user,
        Some(actor),
        "unlink",
        &it.issuer,
        &it.subject,
        &it.provider,
    )
    .await
}

/// How configuration and services name a person by identity: `authsch:<id>` or a bare
/// AuthSCH id (the form everything used before identity brokering: `spec.admins`,
/// `PEK_REALM_ADMINS`, the directory, `pek local`, the pek-next import), or
/// `<provider>:<subject>` for another configured sign-in provider.
#[derive(Debug, Clone, Default)]
pub struct Naming {
    /// (provider id, its identities' issuer), the default provider left out.
    providers: Vec<(String, String)>,
}

/// A person's identity as a name resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub provider: &'a str,
}

impl Naming {
    pub fn new(providers: Vec<(String, String)>) -> Naming {
        Naming {
            providers: providers
                .into_iter()
                .filter(|(id, _)| id != DEFAULT_PROVIDER)
                .collect(),
        }
    }

    pub fn parse<'a>(&'a self, name: &'a str) -> Named<'a> {
        if let Some(subject) = name.strip_prefix("authsch:") {
            return Named {
                issuer: AUTHSCH_ISSUER,
                subject,
                provider: DEFAULT_PROVIDER,
            };
        }
        if let Some((prefix, subject)) = name.split_once(':') {
            if let Some((id, issuer)) = self.providers.iter().find(|(id, _)| id == prefix) {
                return Named {
                    issuer,
                    subject,
                    provider: id,
                };
            }
        }
        Named {
            issuer: AUTHSCH_ISSUER,
            subject: name,
            provider: DEFAULT_PROVIDER,
        }
    }
}

/// The person a name (see [`Naming`]) stands for, created when nobody has that identity
/// yet: people named before their first sign-in, e.g. a realm's configured
/// administrators (what is granted to them works at their first sign-in).
pub async fn ensure_named(g: &mut GlobalTx, naming: &Naming, name: &str) -> Result<Uuid> {
    let n = naming.parse(name.trim());
    if n.issuer == AUTHSCH_ISSUER {
        return crate::profile::ensure_user(g, n.subject).await;
    }
    if n.subject.trim().is_empty()
        || n.subject.chars().count() > 200
        || n.subject.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "the subject must be 1-200 characters without control characters",
        ));
    }
    if let Some(user) = find(g, n.issuer, n.subject).await? {
        return Ok(user);
    }
    let user: Uuid =
        sqlx::query_scalar!("INSERT INTO users (auth_sch_id) VALUES (NULL) RETURNING id")
            .fetch_one(g.conn())
            .await?;
    sqlx::query!(
        "INSERT INTO user_identities (user_id, issuer, subject, provider) VALUES ($1, $2, $3, $4)",
        user,
        n.issuer,
        n.subject,
        n.provider
    )
    .execute(g.conn())
    .await?;
    record(g, user, None, "link", n.issuer, n.subject, n.provider).await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_todays_form_and_name_other_providers_by_id() {
        let n = Naming::new(vec![
            ("authsch".into(), "authsch".into()),
            ("google".into(), "https://accounts.google.com".into()),
        ]);
        let authsch = |s| Named {
            issuer: "authsch",
            subject: s,
            provider: "authsch",
        };
        assert_eq!(n.parse("5d1f0a2c"), authsch("5d1f0a2c"));
        assert_eq!(n.parse("authsch:5d1f0a2c"), authsch("5d1f0a2c"));
        // Not a configured provider: the whole name is an AuthSCH id (as before).
        assert_eq!(n.parse("legacy-pek:12"), authsch("legacy-pek:12"));
        assert_eq!(
            n.parse("google:1234"),
            Named {
                issuer: "https://accounts.google.com",
                subject: "1234",
                provider: "google",
            }
        );
    }
}
