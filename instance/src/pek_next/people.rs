//! People: pek-next's `users` become hub users (keyed by their legacy id; a person who
//! already signed in here with the same AuthSCH id is merged, not duplicated), profiles
//! with the full-profile fields and per-field privacy, usernames and external accounts.

use sqlx::PgConnection;

use super::report::{self, Tally};
use super::Ctx;

/// The identity a person without an AuthSCH id is kept under: a login provider never
/// issues it (`login` refuses such subjects), so nobody can sign in as it; an
/// administrator merges it into the person's account when they first sign in.
pub const PLACEHOLDER_PREFIX: &str = "legacy-pek:";

const MAP: &str = r#"
CREATE TEMP TABLE map_user ON COMMIT DROP AS
SELECT p.id AS pn_id, coalesce(a.id, b.id, gen_random_uuid()) AS id,
       a.id IS NULL AND b.id IS NOT NULL AS merged,
       a.id IS NULL AND b.id IS NULL AS fresh,
       p.auth AS auth_sch_id
  FROM (SELECT id, CASE WHEN length(btrim(auth_sch_id)) BETWEEN 1 AND 200
                          AND btrim(auth_sch_id) NOT LIKE 'legacy-pek:%'
                        THEN btrim(auth_sch_id) END AS auth
          FROM pn_users) p
  LEFT JOIN users a ON a.legacy_id = p.id
  LEFT JOIN users b ON a.id IS NULL AND b.auth_sch_id = p.auth AND b.legacy_id IS NULL;
ALTER TABLE map_user ADD PRIMARY KEY (pn_id);
CREATE INDEX ON map_user (id);
ANALYZE map_user;
INSERT INTO pn_report
SELECT 'users', pn_id::text, 'changed',
       'no AuthSCH id: kept as ' || 'legacy-pek:' || pn_id || ', to be merged when the person signs in'
  FROM map_user WHERE auth_sch_id IS NULL AND fresh;
"#;

const INSERT_USERS: &str = r#"
INSERT INTO users (id, auth_sch_id, created_at, last_login, legacy_id)
SELECT m.id, coalesce(m.auth_sch_id, 'legacy-pek:' || m.pn_id),
       coalesce(p.created_at AT TIME ZONE 'Europe/Budapest', now()),
       p.last_login AT TIME ZONE 'Europe/Budapest', m.pn_id
  FROM map_user m JOIN pn_users p ON p.id = m.pn_id
 WHERE m.fresh
"#;

const UPDATE_USERS: &str = r#"
WITH want AS (
    SELECT u.id, m.pn_id,
           greatest(u.last_login, p.last_login AT TIME ZONE 'Europe/Budapest') AS last_login,
           CASE WHEN u.auth_sch_id LIKE 'legacy-pek:%' AND m.auth_sch_id IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM users o WHERE o.auth_sch_id = m.auth_sch_id)
                THEN m.auth_sch_id ELSE u.auth_sch_id END AS auth_sch_id
      FROM map_user m JOIN pn_users p ON p.id = m.pn_id JOIN users u ON u.id = m.id
     WHERE NOT m.fresh)
UPDATE users u SET legacy_id = w.pn_id, last_login = w.last_login, auth_sch_id = w.auth_sch_id
  FROM want w
 WHERE u.id = w.id
   AND (u.legacy_id, u.last_login, u.auth_sch_id)
       IS DISTINCT FROM (w.pn_id, w.last_login, w.auth_sch_id)
"#;

const REPORT_AUTH_CONFLICT: &str = r#"
INSERT INTO pn_report
SELECT 'users', m.pn_id::text, 'changed',
       'AuthSCH id already belongs to another account: kept apart, to be merged by an administrator'
  FROM map_user m JOIN users u ON u.id = m.id
 WHERE m.auth_sch_id IS NOT NULL AND u.auth_sch_id <> m.auth_sch_id
"#;

const PROFILES: &str = r#"
CREATE TEMP TABLE want_profile ON COMMIT DROP AS
WITH hidden AS (
    SELECT v.user_id, array_agg(DISTINCT f.field ORDER BY f.field) AS fields
      FROM pn_privacies v
      JOIN (VALUES ('EMAIL', 'email'), ('NEPTUN', 'neptun'), ('BME_ID', 'bmeId'),
                   ('CELL_PHONE', 'cellPhone'), ('ROOM_NUMBER', 'room'),
                   ('DORMITORY', 'dormitory'), ('IM_ACCOUNTS', 'externalAccounts'))
           AS f(attr, field) ON f.attr = upper(btrim(v.attribute_name))
     WHERE NOT coalesce(v.visible, false)
     GROUP BY v.user_id),
neptun AS (
    SELECT p.id, upper(btrim(p.neptun)) AS code,
           row_number() OVER (PARTITION BY upper(btrim(p.neptun)) ORDER BY p.id) AS rn
      FROM pn_users p WHERE p.neptun IS NOT NULL AND btrim(p.neptun) <> '')
SELECT m.id AS user_id, p.id AS pn_id,
       nullif(left(btrim(p.firstname), 100), '') AS first_name,
       nullif(left(btrim(p.lastname), 100), '') AS last_name,
       nullif(left(btrim(p.nickname), 100), '') AS nickname,
       nullif(left(btrim(p.cell_phone), 50), '') AS cell_phone,
       nullif(left(btrim(p.room), 50), '') AS room,
       length(btrim(p.room)) > 50 AS room_cut,
       (CASE btrim(p.dormitory)
            WHEN 'Schönherz Zoltán Kollégium' THEN 'SCH'
            WHEN 'Nagytétényi úti Kollégium' THEN 'TETENY'
            WHEN 'Kármán Tódor Kollégium' THEN 'KARMAN'
            WHEN 'Vásárhelyi Pál Kollégium' THEN 'VASARHELYI'
            WHEN 'Külsős' THEN 'EXTERNAL'
            ELSE 'UNKNOWN' END)::dormitory AS dormitory,
       p.dormitory AS dormitory_text,
       (CASE p.gender WHEN 'MALE' THEN 'MALE' WHEN 'FEMALE' THEN 'FEMALE'
                      WHEN 'UNKNOWN' THEN 'OTHER' ELSE 'UNKNOWN' END)::gender AS gender,
       (CASE WHEN p.student_status IN ('ACTIVE', 'GRADUATED', 'OTHER') THEN p.student_status
             ELSE 'UNKNOWN' END)::student_status AS student_status,
       n.search_folded,
       CASE WHEN btrim(p.email) ~ '^[^@[:space:]]+@[^@[:space:]]+$'
                 AND length(btrim(p.email)) BETWEEN 3 AND 254 THEN btrim(p.email) END AS email,
       p.email AS email_text,
       CASE WHEN j.code ~ '^[A-Z0-9]{6}$' AND j.rn = 1
                 AND NOT EXISTS (SELECT 1 FROM profiles o WHERE o.neptun = j.code
                                                            AND o.user_id <> m.id)
            THEN j.code END AS neptun,
       p.neptun AS neptun_text,
       CASE WHEN length(btrim(p.bme_id)) BETWEEN 1 AND 50 THEN btrim(p.bme_id) END AS bme_id,
       p.bme_id AS bme_id_text,
       coalesce(h.fields, '{}') AS hidden_fields
  FROM map_user m
  JOIN pn_users p ON p.id = m.pn_id
  JOIN pn_user_names n ON n.id = p.id
  LEFT JOIN hidden h ON h.user_id = p.id
  LEFT JOIN neptun j ON j.id = p.id;

INSERT INTO pn_report
SELECT 'users', pn_id::text, 'changed', reason FROM (
    SELECT pn_id, 'room longer than 50 characters: cut' AS reason FROM want_profile WHERE room_cut
    UNION ALL
    SELECT pn_id, 'free-text dormitory: ' || dormitory_text || ' carried as UNKNOWN'
      FROM want_profile
     WHERE dormitory = 'UNKNOWN' AND btrim(coalesce(dormitory_text, '')) <> ''
    UNION ALL
    SELECT pn_id, 'e-mail not an address: dropped' FROM want_profile
     WHERE email IS NULL AND btrim(coalesce(email_text, '')) <> ''
    UNION ALL
    SELECT pn_id, 'Neptun code invalid or held by another person: dropped' FROM want_profile
     WHERE neptun IS NULL AND btrim(coalesce(neptun_text, '')) <> ''
    UNION ALL
    SELECT pn_id, 'BME id longer than 50 characters: dropped' FROM want_profile
     WHERE bme_id IS NULL AND btrim(coalesce(bme_id_text, '')) <> '') r;

INSERT INTO pn_report
SELECT 'privacies', v.id::text, 'rejected',
       'privacy of a field not carried: ' || coalesce(v.attribute_name, '')
  FROM pn_privacies v
 WHERE upper(btrim(coalesce(v.attribute_name, ''))) NOT IN
       ('EMAIL', 'NEPTUN', 'BME_ID', 'CELL_PHONE', 'ROOM_NUMBER', 'DORMITORY', 'IM_ACCOUNTS');
"#;

const UPSERT_PROFILES: &str = r#"
INSERT INTO profiles (user_id, first_name, last_name, nickname, cell_phone, room, dormitory,
                      gender, student_status, search_folded, email, neptun, bme_id,
                      hidden_fields)
SELECT user_id, first_name, last_name, nickname, cell_phone, room, dormitory, gender,
       student_status, search_folded, email, neptun, bme_id, hidden_fields
  FROM want_profile
ON CONFLICT (user_id) DO UPDATE SET
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    nickname = EXCLUDED.nickname, cell_phone = EXCLUDED.cell_phone, room = EXCLUDED.room,
    dormitory = EXCLUDED.dormitory, gender = EXCLUDED.gender,
    student_status = EXCLUDED.student_status, search_folded = EXCLUDED.search_folded,
    email = EXCLUDED.email, neptun = EXCLUDED.neptun, bme_id = EXCLUDED.bme_id,
    hidden_fields = EXCLUDED.hidden_fields, updated_at = now()
 WHERE (profiles.first_name, profiles.last_name, profiles.nickname, profiles.cell_phone,
        profiles.room, profiles.dormitory, profiles.gender, profiles.student_status,
        profiles.search_folded, profiles.email, profiles.neptun, profiles.bme_id,
        profiles.hidden_fields)
       IS DISTINCT FROM
       (EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.nickname, EXCLUDED.cell_phone,
        EXCLUDED.room, EXCLUDED.dormitory, EXCLUDED.gender, EXCLUDED.student_status,
        EXCLUDED.search_folded, EXCLUDED.email, EXCLUDED.neptun, EXCLUDED.bme_id,
        EXCLUDED.hidden_fields)
"#;

const USERNAMES: &str = r#"
CREATE TEMP TABLE want_username ON COMMIT DROP AS
WITH want AS (
    SELECT m.id AS user_id, m.pn_id, n.username AS base, p.screen_name,
           row_number() OVER (PARTITION BY n.username ORDER BY m.pn_id) AS rn
      FROM map_user m JOIN pn_user_names n ON n.id = m.pn_id JOIN pn_users p ON p.id = m.pn_id)
SELECT w.user_id, w.pn_id, w.screen_name,
       CASE WHEN w.rn = 1 AND NOT EXISTS (SELECT 1 FROM usernames x
                                           WHERE x.username = w.base AND x.user_id <> w.user_id)
            THEN w.base
            ELSE rtrim(left(w.base, 39 - length(w.pn_id::text)), '-._') || '-' || w.pn_id
       END AS username
  FROM want w
 WHERE NOT EXISTS (SELECT 1 FROM usernames u WHERE u.user_id = w.user_id);
"#;

const INSERT_USERNAMES: &str = r#"
INSERT INTO usernames (username, user_id)
SELECT username, user_id FROM want_username ON CONFLICT DO NOTHING
"#;

const REPORT_USERNAMES: &str = r#"
INSERT INTO pn_report
SELECT 'users', w.pn_id::text, 'changed',
       'screen name is not a valid username: ' || coalesce(w.screen_name, '') || ' carried as ' || w.username
  FROM want_username w
 WHERE w.username IS DISTINCT FROM w.screen_name
   AND EXISTS (SELECT 1 FROM usernames u WHERE u.user_id = w.user_id AND u.username = w.username);
INSERT INTO pn_report
SELECT 'users', w.pn_id::text, 'changed', 'no username: ' || w.username || ' is taken'
  FROM want_username w
 WHERE NOT EXISTS (SELECT 1 FROM usernames u WHERE u.user_id = w.user_id);
"#;

const ACCOUNTS: &str = r#"
CREATE TEMP TABLE want_account ON COMMIT DROP AS
SELECT a.id AS pn_id, m.id AS owner_id, a.protocol, btrim(a.name) AS account_name,
       a.protocol IN (SELECT unnest(enum_range(NULL::external_account_protocol))::text)
       AND length(btrim(a.name)) BETWEEN 1 AND 200 AS ok
  FROM pn_im_accounts a LEFT JOIN map_user m ON m.pn_id = a.user_id;
INSERT INTO pn_report
SELECT 'im_accounts', pn_id::text, 'rejected',
       CASE WHEN owner_id IS NULL THEN 'no such user'
            ELSE 'unknown protocol or empty name: ' || coalesce(protocol, '') END
  FROM want_account WHERE NOT ok OR owner_id IS NULL;
"#;

const INSERT_ACCOUNTS: &str = r#"
INSERT INTO external_account_links (owner_id, protocol, account_name)
SELECT DISTINCT owner_id, protocol::external_account_protocol, account_name
  FROM want_account WHERE ok AND owner_id IS NOT NULL
ON CONFLICT DO NOTHING
"#;

pub async fn import(conn: &mut PgConnection, ctx: &Ctx) -> anyhow::Result<Vec<Tally>> {
    ctx.script(conn, MAP).await?;
    let (read, fresh, merged): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE fresh), count(*) FILTER (WHERE merged)
           FROM map_user",
    )
    .fetch_one(&mut *conn)
    .await?;
    let inserted = ctx.exec(conn, INSERT_USERS).await?;
    let updated = ctx.exec(conn, UPDATE_USERS).await?;
    ctx.exec(conn, REPORT_AUTH_CONFLICT).await?;
    debug_assert_eq!(inserted as i64, fresh);
    ctx.script(conn, PROFILES).await?;
    let profiles = ctx.exec(conn, UPSERT_PROFILES).await?;
    ctx.script(conn, USERNAMES).await?;
    let usernames = ctx.exec(conn, INSERT_USERNAMES).await?;
    ctx.script(conn, REPORT_USERNAMES).await?;
    ctx.script(conn, ACCOUNTS).await?;
    let accounts = ctx.exec(conn, INSERT_ACCOUNTS).await?;
    let (rejected, changed) = report::counts(conn, "users").await?;
    let users = Tally {
        mapping: "users → users, profiles, usernames".into(),
        read,
        inserted: inserted as i64,
        updated: (updated as i64).max(profiles as i64 - inserted as i64),
        merged,
        rejected,
        changed,
    };
    let _ = usernames;
    let (acc_read,): (i64,) = sqlx::query_as("SELECT count(*) FROM pn_im_accounts")
        .fetch_one(&mut *conn)
        .await?;
    let (acc_rej, acc_changed) = report::counts(conn, "im_accounts").await?;
    let accounts = Tally {
        mapping: "im_accounts → external_account_links".into(),
        read: acc_read,
        inserted: accounts as i64,
        rejected: acc_rej,
        changed: acc_changed,
        ..Tally::default()
    };
    let (priv_read,): (i64,) = sqlx::query_as("SELECT count(*) FROM pn_privacies")
        .fetch_one(&mut *conn)
        .await?;
    let (priv_rej, _) = report::counts(conn, "privacies").await?;
    let privacies = Tally {
        mapping: "privacies → profiles.hidden_fields".into(),
        read: priv_read,
        rejected: priv_rej,
        ..Tally::default()
    };
    Ok(vec![users, accounts, privacies])
}
