//! Identity and profiles (hub only, no realm_id). One profile per person; who sees what
//! is decided per realm: the basic profile (names, nickname) by anyone sharing a realm
//! with the person, the full profile only with viewFullProfile in a shared realm.
//! Someone who shares no realm with the viewer is reported as not found.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{Db, GlobalTx};
use crate::error::{Error, Result, ResultExt};
use crate::page::{Cursor, Page};
use crate::policy::{self, Grants, Permission, Target};
use crate::realm::RealmId;
use crate::text::{fold, like_escape, Line};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "dormitory")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Dormitory {
    Karman,
    Teteny,
    Sch,
    Baross,
    Bercsenyi,
    Vasarhelyi,
    External,
    Unknown,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "gender", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Gender {
    Male,
    Female,
    Other,
    Unknown,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "student_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StudentStatus {
    Active,
    Graduated,
    Other,
    Unknown,
}

/// External account kinds; stored with the original PéK values (seed 003).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "external_account_protocol")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExternalProtocol {
    #[sqlx(rename = "twitter")]
    XFormerlyTwitter,
    #[sqlx(rename = "skype")]
    Skype,
    #[sqlx(rename = "call_sign")]
    CallSign,
    #[sqlx(rename = "irc")]
    Irc,
    #[sqlx(rename = "gtalk")]
    Gtalk,
    #[sqlx(rename = "jabber")]
    Jabber,
    #[sqlx(rename = "facebook")]
    MetaFormerlyFacebook,
    #[sqlx(rename = "Telegram")]
    Telegram,
    #[sqlx(rename = "sch_mail")]
    SchMail,
    #[sqlx(rename = "Hímzek")]
    Himzo,
    #[sqlx(rename = "gmail")]
    Gmail,
    #[sqlx(rename = "🏆")]
    EasterEgg,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalAccount {
    pub protocol: ExternalProtocol,
    pub account_name: Line<200>,
}

/// What a person writes into their profile (every field optional).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileInput {
    pub first_name: Option<Line<100>>,
    pub last_name: Option<Line<100>>,
    pub nickname: Option<Line<100>>,
    pub cell_phone: Option<Line<50>>,
    pub room: Option<Line<50>>,
    pub dormitory: Option<Dormitory>,
    pub gender: Option<Gender>,
    pub student_status: Option<StudentStatus>,
    #[serde(default)]
    pub external_accounts: Vec<ExternalAccount>,
    /// E-mail address; absent: unchanged, empty: removed.
    pub email: Option<Line<254>>,
    /// Full-profile fields shown to nobody but the person; absent: unchanged.
    pub hidden_fields: Option<Vec<HiddenField>>,
}

/// A full-profile field a person can hide from everyone else (pek-next's `privacies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum HiddenField {
    Email,
    Neptun,
    BmeId,
    CellPhone,
    Room,
    Dormitory,
    ExternalAccounts,
}

impl HiddenField {
    fn as_str(self) -> &'static str {
        match self {
            HiddenField::Email => "email",
            HiddenField::Neptun => "neptun",
            HiddenField::BmeId => "bmeId",
            HiddenField::CellPhone => "cellPhone",
            HiddenField::Room => "room",
            HiddenField::Dormitory => "dormitory",
            HiddenField::ExternalAccounts => "externalAccounts",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicProfile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub nickname: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FullProfile {
    #[serde(flatten)]
    pub basic: BasicProfile,
    pub cell_phone: Option<String>,
    pub room: Option<String>,
    pub dormitory: Dormitory,
    pub gender: Gender,
    pub student_status: StudentStatus,
    pub external_accounts: Vec<ExternalAccount>,
    pub email: Option<String>,
    /// The Neptun code (from AuthSCH at sign-in, or imported): not editable.
    pub neptun: Option<String>,
    /// The BME id (imported): not editable.
    pub bme_id: Option<String>,
    /// The fields the person hides from everyone else; shown to the person only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_fields: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Basic,
    Full,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileData {
    Full(FullProfile),
    Basic(BasicProfile),
}

// Documented as `anyOf`, not the `oneOf` utoipa derives for an untagged enum: a full
// profile carries every basic field too, so it matches both shapes and `oneOf`
// ("exactly one") would reject every full profile. `scope` says which one it is.
impl utoipa::PartialSchema for ProfileData {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("FullProfile"))
            .item(utoipa::openapi::Ref::from_schema_name("BasicProfile"))
            .description(Some(
                "The full profile when `scope` is `full`, else the basic one.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for ProfileData {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "FullProfile".into(),
            <FullProfile as utoipa::PartialSchema>::schema(),
        ));
        <FullProfile as utoipa::ToSchema>::schemas(schemas);
        schemas.push((
            "BasicProfile".into(),
            <BasicProfile as utoipa::PartialSchema>::schema(),
        ));
        <BasicProfile as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A person as one viewer may see them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: Uuid,
    pub scope: Scope,
    /// Absent when the person has not filled in a profile.
    pub profile: Option<ProfileData>,
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    first_name: Option<String>,
    last_name: Option<String>,
    nickname: Option<String>,
    cell_phone: Option<String>,
    room: Option<String>,
    dormitory: Dormitory,
    gender: Gender,
    student_status: StudentStatus,
    email: Option<String>,
    neptun: Option<String>,
    bme_id: Option<String>,
    hidden_fields: Vec<String>,
}

/// Creates the user for an AuthSCH subject, or returns the existing one.
/// Records the Neptun code AuthSCH vouches for on a person's profile, unless they have
/// one or someone else holds it.
pub async fn record_neptun(g: &mut GlobalTx, user: Uuid, neptun: &str) -> Result<()> {
    let neptun = neptun.trim().to_uppercase();
    if neptun.len() != 6 || !neptun.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE profiles SET neptun = $2, updated_at = now()
          WHERE user_id = $1 AND neptun IS NULL
            AND NOT EXISTS (SELECT 1 FROM profiles o WHERE o.neptun = $2)",
        user,
        neptun
    )
    .execute(g.conn())
    .await?;
    Ok(())
}

pub async fn upsert_user(g: &mut GlobalTx, auth_sch_id: &str) -> Result<Uuid> {
    if auth_sch_id.is_empty() || crate::text::check(auth_sch_id, 200, false).is_err() {
        return Err(Error::invalid(
            "auth_sch_id must be 1-200 characters of single-line text",
        ));
    }
    refuse_placeholder(auth_sch_id)?;
    Ok(sqlx::query_scalar!(
        // A person merged into another is that other person now.
        r#"INSERT INTO users (auth_sch_id, last_login) VALUES ($1, now())
           ON CONFLICT (auth_sch_id) DO UPDATE SET last_login = now()
           RETURNING coalesce(merged_into, id) AS "id!""#,
        auth_sch_id
    )
    .fetch_one(g.conn())
    .await?)
}

/// The identities `pek import pek-next` keeps people without an AuthSCH id under are
/// nobody's login: no sign-in, token or configuration may name one.
fn refuse_placeholder(auth_sch_id: &str) -> Result<()> {
    if auth_sch_id.starts_with(crate::pek_next::PLACEHOLDER_PREFIX) {
        return Err(Error::invalid(format!(
            "ids starting with {} are reserved for imported people",
            crate::pek_next::PLACEHOLDER_PREFIX
        )));
    }
    Ok(())
}

/// A person imported from pek-next without an AuthSCH id, signing in for the first time:
/// when nobody has this AuthSCH id yet and exactly one imported placeholder person has
/// the Neptun code AuthSCH vouches for, that person becomes this login's (their history
/// stays theirs). Returns whether one was claimed.
pub async fn claim_imported(g: &mut GlobalTx, auth_sch_id: &str, neptun: &str) -> Result<bool> {
    refuse_placeholder(auth_sch_id)?;
    let neptun = neptun.trim().to_uppercase();
    let n = sqlx::query!(
        "UPDATE users u SET auth_sch_id = $1
          WHERE u.auth_sch_id LIKE 'legacy-pek:%' AND u.legacy_id IS NOT NULL
            AND u.id = (SELECT p.user_id FROM profiles p WHERE p.neptun = $2)
            AND NOT EXISTS (SELECT 1 FROM users o WHERE o.auth_sch_id = $1)",
        auth_sch_id,
        neptun
    )
    .execute(g.conn())
    .await?
    .rows_affected();
    if n > 0 {
        tracing::info!("an imported person without an AuthSCH id signed in for the first time");
    }
    Ok(n > 0)
}

/// The user of an AuthSCH id, created (never logged in) if missing: people named before
/// their first login, e.g. a realm's configured administrators.
pub async fn ensure_user(g: &mut GlobalTx, auth_sch_id: &str) -> Result<Uuid> {
    if auth_sch_id.trim().is_empty()
        || auth_sch_id.chars().count() > 200
        || auth_sch_id.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "authSchId must be 1-200 characters without control characters",
        ));
    }
    refuse_placeholder(auth_sch_id)?;
    sqlx::query!(
        "INSERT INTO users (auth_sch_id) VALUES ($1) ON CONFLICT (auth_sch_id) DO NOTHING",
        auth_sch_id
    )
    .execute(g.conn())
    .await?;
    Ok(
        // A person merged into another is that other person now.
        sqlx::query_scalar!(
            r#"SELECT coalesce(merged_into, id) AS "id!" FROM users WHERE auth_sch_id = $1"#,
            auth_sch_id
        )
        .fetch_one(g.conn())
        .await?,
    )
}

pub async fn user_exists(g: &mut GlobalTx, user: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) AS "exists!""#,
        user
    )
    .fetch_one(g.conn())
    .await?)
}

/// Replaces a person's profile (and external accounts) as a whole.
pub async fn put_profile(g: &mut GlobalTx, user: Uuid, p: &ProfileInput) -> Result<()> {
    // Lengths and characters are checked by the field types (crate::text).
    if p.external_accounts.len() > 50 {
        return Err(Error::invalid("at most 50 external accounts"));
    }
    for a in &p.external_accounts {
        if a.account_name.trim().is_empty() {
            return Err(Error::invalid("accountName must be 1-200 characters"));
        }
    }
    let email = p.email.as_deref().map(str::trim);
    if let Some(e) = email.filter(|e| !e.is_empty()) {
        let ok = e.len() >= 3
            && e.split_once('@').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && !b.contains('@')
                    && !e.contains(char::is_whitespace)
            });
        if !ok {
            return Err(Error::invalid("email must be an e-mail address"));
        }
    }
    let hidden: Option<Vec<String>> = p.hidden_fields.as_ref().map(|h| {
        let mut v: Vec<String> = h.iter().map(|f| f.as_str().to_string()).collect();
        v.sort();
        v.dedup();
        v
    });
    if !user_exists(g, user).await? {
        return Err(Error::not_found(format!("user {user}")));
    }
    let folded = fold(
        &[&p.first_name, &p.last_name, &p.nickname]
            .iter()
            .filter_map(|s| s.as_deref())
            .collect::<Vec<_>>()
            .join(" "),
    );
    sqlx::query!(
        "INSERT INTO profiles (user_id, first_name, last_name, nickname, cell_phone, room,
                               dormitory, gender, student_status, search_folded, email,
                               hidden_fields)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULLIF($11::text, ''),
                 COALESCE($12::text[], '{}'))
         ON CONFLICT (user_id) DO UPDATE SET first_name = EXCLUDED.first_name,
             last_name = EXCLUDED.last_name, nickname = EXCLUDED.nickname,
             cell_phone = EXCLUDED.cell_phone, room = EXCLUDED.room,
             dormitory = EXCLUDED.dormitory, gender = EXCLUDED.gender,
             student_status = EXCLUDED.student_status, search_folded = EXCLUDED.search_folded,
             email = CASE WHEN $11::text IS NULL THEN profiles.email
                          ELSE NULLIF($11::text, '') END,
             hidden_fields = COALESCE($12::text[], profiles.hidden_fields),
             updated_at = now()",
        user,
        p.first_name.as_deref(),
        p.last_name.as_deref(),
        p.nickname.as_deref(),
        p.cell_phone.as_deref(),
        p.room.as_deref(),
        p.dormitory.unwrap_or(Dormitory::Unknown) as Dormitory,
        p.gender.unwrap_or(Gender::Unknown) as Gender,
        p.student_status.unwrap_or(StudentStatus::Unknown) as StudentStatus,
        folded,
        email,
        hidden.as_deref()
    )
    .execute(g.conn())
    .await?;
    sqlx::query!(
        "DELETE FROM external_account_links WHERE owner_id = $1",
        user
    )
    .execute(g.conn())
    .await?;
    for a in &p.external_accounts {
        sqlx::query!(
            "INSERT INTO external_account_links (owner_id, protocol, account_name) VALUES ($1, $2, $3)",
            user,
            a.protocol as ExternalProtocol,
            a.account_name.trim()
        )
        .execute(g.conn())
        .await
        .on_constraint("external_account_links_owner_id_protocol_account_name_key", |_| {
            Error::Conflict("this external account is listed twice".into())
        })?;
    }
    Ok(())
}

/// [`put_profile`] on behalf of `by`. When `by` is not the person (a hub administrator;
/// the caller has checked that), the same transaction records who changed which fields
/// when in `profile_audit`, values left out so the audit holds no personal data.
pub async fn put_profile_as(
    g: &mut GlobalTx,
    user: Uuid,
    p: &ProfileInput,
    by: Uuid,
) -> Result<()> {
    if by == user {
        return put_profile(g, user, p).await;
    }
    let before = load(g, user, Scope::Full, true).await?;
    put_profile(g, user, p).await?;
    let after = load(g, user, Scope::Full, true).await?;
    let fields = changed_fields(before.as_ref(), after.as_ref());
    sqlx::query!(
        "INSERT INTO profile_audit (user_id, changed_by, fields) VALUES ($1, $2, $3)",
        user,
        by,
        &fields
    )
    .execute(g.conn())
    .await?;
    tracing::info!(user = %user, by = %by, fields = ?fields, "profile written by a hub administrator");
    Ok(())
}

/// Names of the profile fields that differ between two versions (camelCase, as the API
/// names them).
fn changed_fields(before: Option<&ProfileData>, after: Option<&ProfileData>) -> Vec<String> {
    fn flat(v: Option<&ProfileData>) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        if let Some(serde_json::Value::Object(m)) = v.and_then(|v| serde_json::to_value(v).ok()) {
            for (k, v) in m {
                match v {
                    serde_json::Value::Object(inner) => out.extend(inner),
                    other => {
                        out.insert(k, other);
                    }
                }
            }
        }
        out
    }
    let (a, b) = (flat(before), flat(after));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// A profile at `scope`; `own`: read by the person themself, so the fields they hide
/// from others are shown too.
async fn load(
    g: &mut GlobalTx,
    user: Uuid,
    scope: Scope,
    own: bool,
) -> Result<Option<ProfileData>> {
    let row: Option<ProfileRow> = sqlx::query_as!(
        ProfileRow,
        r#"SELECT first_name, last_name, nickname, cell_phone, room,
                  dormitory AS "dormitory: Dormitory", gender AS "gender: Gender",
                  student_status AS "student_status: StudentStatus", email, neptun, bme_id,
                  hidden_fields
             FROM profiles WHERE user_id = $1"#,
        user
    )
    .fetch_optional(g.conn())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let external_accounts = match scope {
        Scope::Basic => Vec::new(),
        Scope::Full => {
            sqlx::query_as!(
                ExternalAccount,
                r#"SELECT protocol AS "protocol: ExternalProtocol",
                          account_name AS "account_name: Line<200>"
                     FROM external_account_links
                    WHERE owner_id = $1 ORDER BY protocol, account_name"#,
                user
            )
            .fetch_all(g.conn())
            .await?
        }
    };
    Ok(Some(assemble(r, external_accounts, scope, own)))
}

/// A profile as `scope` shows it (`own`: to the person themself, hidden fields too).
fn assemble(
    r: ProfileRow,
    external_accounts: Vec<ExternalAccount>,
    scope: Scope,
    own: bool,
) -> ProfileData {
    let basic = BasicProfile {
        first_name: r.first_name,
        last_name: r.last_name,
        nickname: r.nickname,
    };
    match scope {
        Scope::Basic => ProfileData::Basic(basic),
        Scope::Full => {
            let shown = |f: HiddenField| own || !r.hidden_fields.iter().any(|h| h == f.as_str());
            ProfileData::Full(FullProfile {
                basic,
                cell_phone: r.cell_phone.filter(|_| shown(HiddenField::CellPhone)),
                room: r.room.filter(|_| shown(HiddenField::Room)),
                dormitory: if shown(HiddenField::Dormitory) {
                    r.dormitory
                } else {
                    Dormitory::Unknown
                },
                gender: r.gender,
                student_status: r.student_status,
                external_accounts: if shown(HiddenField::ExternalAccounts) {
                    external_accounts
                } else {
                    Vec::new()
                },
                email: r.email.filter(|_| shown(HiddenField::Email)),
                neptun: r.neptun.filter(|_| shown(HiddenField::Neptun)),
                bme_id: r.bme_id.filter(|_| shown(HiddenField::BmeId)),
                hidden_fields: own.then_some(r.hidden_fields),
            })
        }
    }
}

/// Realms both people are in, wherever the realms are served (federation table).
pub async fn shared_realms(db: &Db, a: Uuid, b: Uuid) -> Result<Vec<RealmId>> {
    let mut g = db.global().await?;
    let ids: Vec<String> = sqlx::query_scalar!(
        "SELECT x.realm_id FROM realm_members x
           JOIN realm_members y ON y.realm_id = x.realm_id AND y.user_id = $2
          WHERE x.user_id = $1 ORDER BY x.realm_id",
        a,
        b
    )
    .fetch_all(g.conn())
    .await?;
    g.commit().await?;
    ids.iter().map(|s| RealmId::parse(s)).collect()
}

/// Leaders' names as the group directory shows them to everyone: the basic profile of
/// each (realm, person) pair the hub's federation table confirms — a realm names only
/// its own people — one query for the whole list.
pub async fn leader_names(
    db: &Db,
    pairs: &[(RealmId, Uuid)],
) -> Result<HashMap<(RealmId, Uuid), UserView>> {
    let realms: Vec<&str> = pairs.iter().map(|(r, _)| r.as_str()).collect();
    let users: Vec<Uuid> = pairs.iter().map(|(_, u)| *u).collect();
    let mut g = db.global().await?;
    let rows = sqlx::query!(
        r#"SELECT t.realm_id, t.user_id, p.first_name AS "first_name?",
                  p.last_name AS "last_name?", p.nickname AS "nickname?",
                  (p.user_id IS NOT NULL) AS "has_profile!"
             FROM unnest($1::text[], $2::uuid[]) AS q (realm_id, user_id)
             JOIN realm_members t ON t.realm_id = q.realm_id AND t.user_id = q.user_id
             LEFT JOIN profiles p ON p.user_id = t.user_id"#,
        &realms as &[&str],
        &users
    )
    .fetch_all(g.conn())
    .await?;
    g.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let realm = RealmId::parse(&r.realm_id).ok()?;
            let profile = r.has_profile.then_some(ProfileData::Basic(BasicProfile {
                first_name: r.first_name,
                last_name: r.last_name,
                nickname: r.nickname,
            }));
            Some((
                (realm, r.user_id),
                UserView {
                    id: r.user_id,
                    scope: Scope::Basic,
                    profile,
                },
            ))
        })
        .collect())
}

/// Which of `people` wait for a decision in a realm `viewer` is in (an application, an
/// invitation, a role offer), and which realms: (person, realm) pairs, one query.
pub async fn pending_in_realms_of(
    db: &Db,
    viewer: Uuid,
    people: &[Uuid],
) -> Result<Vec<(Uuid, RealmId)>> {
    let mut g = db.global().await?;
    let rows = sqlx::query!(
        "SELECT y.user_id, x.realm_id FROM realm_members x
           JOIN realm_pending y ON y.realm_id = x.realm_id AND y.user_id = ANY($2)
          WHERE x.user_id = $1 ORDER BY y.user_id, x.realm_id",
        viewer,
        people,
    )
    .fetch_all(g.conn())
    .await?;
    g.commit().await?;
    rows.into_iter()
        .map(|r| Ok((r.user_id, RealmId::parse(&r.realm_id)?)))
        .collect()
}

/// Which of `people` share a realm with `viewer`, and which realms: (person, realm)
/// pairs, one query for the whole list.
pub async fn shared_realms_with(
    db: &Db,
    viewer: Uuid,
    people: &[Uuid],
) -> Result<Vec<(Uuid, RealmId)>> {
    let mut g = db.global().await?;
    let rows = sqlx::query!(
        "SELECT y.user_id, x.realm_id FROM realm_members x
           JOIN realm_members y ON y.realm_id = x.realm_id AND y.user_id = ANY($2)
          WHERE x.user_id = $1 ORDER BY y.user_id, x.realm_id",
        viewer,
        people,
    )
    .fetch_all(g.conn())
    .await?;
    g.commit().await?;
    rows.into_iter()
        .map(|r| Ok((r.user_id, RealmId::parse(&r.realm_id)?)))
        .collect()
}

/// One person at a scope the caller has already decided; 404 when there is no user.
pub async fn view_at(db: &Db, target: Uuid, scope: Scope) -> Result<UserView> {
    view(db, target, scope, false).await
}

/// The person's own profile: everything, the fields they hide from others too.
pub async fn view_own(db: &Db, me: Uuid) -> Result<UserView> {
    view(db, me, Scope::Full, true).await
}

async fn view(db: &Db, target: Uuid, scope: Scope, own: bool) -> Result<UserView> {
    let mut g = db.global().await?;
    if !user_exists(&mut g, target).await? {
        return Err(Error::not_found(format!("user {target}")));
    }
    let profile = load(&mut g, target, scope, own).await?;
    g.commit().await?;
    Ok(UserView {
        id: target,
        scope,
        profile,
    })
}

/// Several people, each at its scope, in the given order.
pub async fn views(db: &Db, people: &[(Uuid, Scope)]) -> Result<Vec<UserView>> {
    // Two queries for the whole list, not two per person: a page of a big group's
    // members asks for all of them at once.
    let ids: Vec<Uuid> = people.iter().map(|(id, _)| *id).collect();
    let full: Vec<Uuid> = people
        .iter()
        .filter(|(_, s)| *s == Scope::Full)
        .map(|(id, _)| *id)
        .collect();
    let mut g = db.global().await?;
    let mut rows: HashMap<Uuid, ProfileRow> = sqlx::query!(
        r#"SELECT user_id, first_name, last_name, nickname, cell_phone, room,
                  dormitory AS "dormitory: Dormitory", gender AS "gender: Gender",
                  student_status AS "student_status: StudentStatus", email, neptun, bme_id,
                  hidden_fields
             FROM profiles WHERE user_id = ANY($1)"#,
        &ids
    )
    .fetch_all(g.conn())
    .await?
    .into_iter()
    .map(|r| {
        (
            r.user_id,
            ProfileRow {
                first_name: r.first_name,
                last_name: r.last_name,
                nickname: r.nickname,
                cell_phone: r.cell_phone,
                room: r.room,
                dormitory: r.dormitory,
                gender: r.gender,
                student_status: r.student_status,
                email: r.email,
                neptun: r.neptun,
                bme_id: r.bme_id,
                hidden_fields: r.hidden_fields,
            },
        )
    })
    .collect();
    let mut accounts: HashMap<Uuid, Vec<ExternalAccount>> = HashMap::new();
    if !full.is_empty() {
        for a in sqlx::query!(
            r#"SELECT owner_id, protocol AS "protocol: ExternalProtocol",
                      account_name AS "account_name: Line<200>"
                 FROM external_account_links
                WHERE owner_id = ANY($1) ORDER BY owner_id, protocol, account_name"#,
            &full
        )
        .fetch_all(g.conn())
        .await?
        {
            accounts
                .entry(a.owner_id)
                .or_default()
                .push(ExternalAccount {
                    protocol: a.protocol,
                    account_name: a.account_name,
                });
        }
    }
    g.commit().await?;
    Ok(people
        .iter()
        .map(|(id, scope)| UserView {
            id: *id,
            scope: *scope,
            profile: rows
                .remove(id)
                .map(|r| assemble(r, accounts.remove(id).unwrap_or_default(), *scope, false)),
        })
        .collect())
}

/// People in any of `realms` (the viewer's) whose names and nickname contain every word
/// of `q`, in any order (case- and accent-insensitive: "Szabó Áron", "aron szabo" and
/// "áron" all find Szabó Áron), with the realms of `realms` each one is in; in Hungarian
/// alphabetical order of their names (family name first).
pub async fn candidates(
    db: &Db,
    realms: &[RealmId],
    q: &str,
    limit: i64,
    cursor: Option<Cursor>,
) -> Result<Page<(Uuid, Vec<RealmId>)>> {
    let words = crate::text::search_words(q);
    if words.iter().map(|w| w.chars().count()).sum::<usize>() < 2 {
        return Err(Error::BadRequest(
            "q must have at least 2 letters or digits".into(),
        ));
    }
    let patterns: Vec<String> = words
        .iter()
        .map(|w| format!("%{}%", like_escape(w)))
        .collect();
    let (after_key, after_id) = match cursor {
        Some(c) => (Some(c.key), Some(c.id)),
        None => (None, None),
    };
    let realm_ids: Vec<&str> = realms.iter().map(RealmId::as_str).collect();
    let mut g = db.global().await?;
    let rows: Vec<(Uuid, String, Vec<String>)> = sqlx::query!(
        r#"SELECT p.user_id, p.sort_key AS "sort_key!",
                  array_agg(t.realm_id ORDER BY t.realm_id) AS "realms!"
           FROM profiles p
           JOIN realm_members t ON t.user_id = p.user_id AND t.realm_id = ANY($1)
          WHERE p.search_folded LIKE ALL($2)
            AND ($3::text IS NULL
                 OR (p.sort_key COLLATE "C", p.user_id) > ($3::text COLLATE "C", $4::uuid))
          GROUP BY p.user_id, p.sort_key
          ORDER BY p.sort_key COLLATE "C", p.user_id
          LIMIT $5"#,
        &realm_ids as &[&str],
        &patterns,
        after_key,
        after_id,
        limit + 1
    )
    .fetch_all(g.conn())
    .await?
    .into_iter()
    .map(|r| (r.user_id, r.sort_key, r.realms))
    .collect();
    g.commit().await?;
    let page = Page::from_rows(rows, limit, |(id, key, _)| (key.clone(), *id));
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|(id, _, rs)| {
                (
                    id,
                    rs.iter().filter_map(|r| RealmId::parse(r).ok()).collect(),
                )
            })
            .collect(),
        next_cursor: page.next_cursor,
    })
}

/// What a viewer may see of people's profiles, as judged by one realm's policies. (No
/// realm judges who may edit a profile: only its person and hub administrators do.)
#[derive(Debug, Default, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileAccess {
    /// People whose full profile the viewer may see (viewFullProfile).
    pub view_full: Vec<Uuid>,
    /// People not (yet) of the realm whose basic profile the viewer may see: those who
    /// applied to a group whose members the viewer may edit.
    #[serde(default)]
    pub view_basic: Vec<Uuid>,
}

/// Realm side: judges `users` for the viewer of `grants` in the transaction's realm.
pub async fn access(
    tx: &mut crate::db::RealmTx,
    grants: &Grants,
    users: &[Uuid],
) -> Result<ProfileAccess> {
    let mut out = ProfileAccess {
        view_basic: policy::applicants_seen_by(tx, grants, users)
            .await?
            .into_iter()
            .collect(),
        ..ProfileAccess::default()
    };
    if grants.god {
        // A GOD sees the realm's own people in full, and nothing of anyone else: one
        // query instead of one per person.
        let inside = policy::people_of_realm(tx, users).await?;
        for &u in users {
            if u == grants.viewer || inside.contains(&u) {
                out.view_full.push(u);
            }
        }
        return Ok(out);
    }
    for &u in users {
        if policy::can(tx, grants, Permission::ViewFullProfile, Target::User(u)).await? {
            out.view_full.push(u);
        }
    }
    Ok(out)
}
