//! Groups (with their tree, kinds and the accepts-applications flag) and memberships with
//! pek-next's derived states.

use sqlx::PgConnection;

use super::report::{self, Tally};
use super::Ctx;

const MAP_GROUPS: &str = r#"
CREATE TEMP TABLE map_group ON COMMIT DROP AS
SELECT p.id AS pn_id, coalesce(g.id, gen_random_uuid()) AS id
  FROM pn_groups p LEFT JOIN groups g ON g.realm_id = pg_temp.pn_realm() AND g.legacy_id = p.id;
ALTER TABLE map_group ADD PRIMARY KEY (pn_id);
ANALYZE map_group;

CREATE TEMP TABLE want_group ON COMMIT DROP AS
WITH base AS (
    SELECT p.*, m.id AS uuid,
           CASE WHEN btrim(coalesce(p.name, '')) = '' THEN 'Kör ' || p.id
                ELSE left(btrim(p.name), 180) END AS name0,
           CASE WHEN btrim(coalesce(p.name, '')) = '' THEN 'kor ' || p.id
                ELSE left(n.name_folded, 180) END AS folded0
      FROM pn_groups p JOIN map_group m ON m.pn_id = p.id JOIN pn_group_names n ON n.id = p.id),
ranked AS (
    SELECT b.*, row_number() OVER (PARTITION BY b.name0 ORDER BY b.id) AS rn FROM base b),
leader AS (
    SELECT DISTINCT ON (ms.group_id) ms.group_id, mu.id AS user_id
      FROM pn_memberships ms JOIN pn_posts po ON po.membership_id = ms.id AND po.post_type_id = 3
      JOIN map_user mu ON mu.pn_id = ms.user_id
     WHERE ms.end_date IS NULL AND ms.archived IS NULL
     ORDER BY ms.group_id, ms.id)
SELECT r.id AS pn_id, r.uuid AS id, r.name0 <> btrim(coalesce(r.name, '')) AS renamed_empty,
       CASE WHEN r.rn = 1 AND NOT EXISTS (SELECT 1 FROM groups g
                                           WHERE g.realm_id = pg_temp.pn_realm() AND g.name = r.name0
                                             AND g.id <> r.uuid)
            THEN r.name0 ELSE r.name0 || ' (' || r.id || ')' END AS name,
       CASE WHEN r.rn = 1 AND NOT EXISTS (SELECT 1 FROM groups g
                                           WHERE g.realm_id = pg_temp.pn_realm() AND g.name = r.name0
                                             AND g.id <> r.uuid)
            THEN r.folded0 ELSE r.folded0 || ' (' || r.id || ')' END AS name_folded,
       CASE r.grp_type
            WHEN 'bizottság' THEN 'COMMITTEE' WHEN 'reszort' THEN 'RESORT'
            WHEN 'bulis' THEN 'PARTY' WHEN 'projekt' THEN 'PROJECT'
            WHEN 'rendezveny' THEN 'EVENT'
            WHEN 'szakmai kör' THEN 'CIRCLE' WHEN 'Kor' THEN 'CIRCLE' WHEN 'kultur' THEN 'CIRCLE'
            WHEN 'sport' THEN 'CIRCLE' WHEN 'szolgáltató kör' THEN 'CIRCLE'
            WHEN 'csoport' THEN 'CIRCLE'
            WHEN 'évfolyam' THEN 'OTHER' WHEN 'szint' THEN 'OTHER' WHEN 'ellipszis' THEN 'OTHER'
            WHEN 'D' THEN 'OTHER' WHEN 'old' THEN 'OTHER'
            ELSE 'UNKNOWN' END AS purpose,
       left(coalesce(r.description, ''), 10000) AS description,
       length(coalesce(r.description, '')) > 10000 AS description_cut,
       coalesce(r.state = 'old', false) AS archived,
       coalesce(r.users_can_apply, true) AS users_can_apply,
       left(r.grp_type, 50) AS legacy_kind,
       coalesce(l.user_id, pg_temp.pn_actor()) AS owner_id, l.user_id IS NULL AS no_leader,
       r.name AS source_name
  FROM ranked r LEFT JOIN leader l ON l.group_id = r.id;

INSERT INTO pn_report
SELECT 'groups', pn_id::text, 'changed', reason FROM (
    SELECT pn_id, 'duplicate name: ' || source_name || ' carried as ' || name AS reason
      FROM want_group WHERE name <> btrim(coalesce(source_name, '')) AND NOT renamed_empty
    UNION ALL
    SELECT pn_id, 'empty name: carried as ' || name FROM want_group WHERE renamed_empty
    UNION ALL
    SELECT pn_id, 'description longer than 10000 characters: cut' FROM want_group
     WHERE description_cut
    UNION ALL
    SELECT pn_id, 'no leader: owned by the import' FROM want_group WHERE no_leader) r;
"#;

const UPSERT_GROUPS: &str = r#"
INSERT INTO groups (realm_id, id, name, name_folded, purpose, description, archived,
                    created_by, owner_id, users_can_apply, legacy_id, legacy_kind)
SELECT pg_temp.pn_realm(), id, name, name_folded, purpose, description, archived, owner_id, owner_id,
       users_can_apply, pn_id, legacy_kind
  FROM want_group
ON CONFLICT (realm_id, id) DO UPDATE SET
    name = EXCLUDED.name, name_folded = EXCLUDED.name_folded, purpose = EXCLUDED.purpose,
    description = EXCLUDED.description, archived = EXCLUDED.archived,
    owner_id = EXCLUDED.owner_id, users_can_apply = EXCLUDED.users_can_apply,
    legacy_kind = EXCLUDED.legacy_kind, updated_at = now()
 WHERE (groups.name, groups.name_folded, groups.purpose, groups.description, groups.archived,
        groups.owner_id, groups.users_can_apply, groups.legacy_kind)
       IS DISTINCT FROM
       (EXCLUDED.name, EXCLUDED.name_folded, EXCLUDED.purpose, EXCLUDED.description,
        EXCLUDED.archived, EXCLUDED.owner_id, EXCLUDED.users_can_apply,
        EXCLUDED.legacy_kind)
"#;

const PARENTS: &str = r#"
UPDATE groups g SET parent_id = w.parent, updated_at = now()
  FROM (SELECT m.id, mp.id AS parent
          FROM pn_groups p JOIN map_group m ON m.pn_id = p.id
          LEFT JOIN map_group mp ON mp.pn_id = p.parent_id AND p.parent_id <> p.id) w
 WHERE g.realm_id = pg_temp.pn_realm() AND g.id = w.id AND g.parent_id IS DISTINCT FROM w.parent
"#;

/// pek-next's membership states are derived from dates and posts (`status` says ACTIVE
/// for pending applicants): archived date → ARCHIVED; end date → FORMER (öregtag); post 6
/// "feldolgozás alatt" → APPLIED; post 104 "újonc" → NEWBIE; else ACTIVE. A pending row
/// that carries points or entry awards is a re-application after archiving: its history
/// becomes an ARCHIVED membership beside the APPLIED one. Points or entry awards of a
/// person with no membership in the group get an ARCHIVED membership too.
const MEMBERSHIPS: &str = r#"
CREATE TEMP TABLE pn_history ON COMMIT DROP AS
SELECT e.group_id, r.user_id, min(e.semester) AS first_semester,
       max(e.semester) AS last_semester
  FROM (SELECT evaluation_id, user_id FROM pn_point_requests
        UNION ALL SELECT evaluation_id, user_id FROM pn_entry_requests) r
  JOIN pn_evaluations e ON e.id = r.evaluation_id
 WHERE pg_temp.pn_sem_ok(e.semester)
 GROUP BY e.group_id, r.user_id;

CREATE TEMP TABLE pn_ms ON COMMIT DROP AS
WITH posts AS (
    SELECT p.membership_id,
           bool_or(p.post_type_id = 6) AS pending, bool_or(p.post_type_id = 104) AS newbie,
           (array_agg(DISTINCT CASE WHEN t.id = 3 THEN 'leader' ELSE btrim(left(btrim(t.name), 50)) END)
               FILTER (WHERE t.id NOT IN (6, 104) AND btrim(t.name) <> ''))[1:20] AS posts
      FROM pn_posts p JOIN pn_post_types t ON t.id = p.post_type_id
     GROUP BY p.membership_id)
SELECT m.*, coalesce(p.pending, false) AS pending, coalesce(p.newbie, false) AS newbie,
       coalesce(p.posts, '{}') AS posts, h.first_semester, h.last_semester
  FROM pn_memberships m
  LEFT JOIN posts p ON p.membership_id = m.id
  LEFT JOIN pn_history h ON h.group_id = m.group_id AND h.user_id = m.user_id;

CREATE TEMP TABLE want_ms ON COMMIT DROP AS
WITH rows AS (
    SELECT 'membership' AS kind, m.id::text AS legacy, m.group_id, m.user_id,
           CASE WHEN m.archived IS NOT NULL THEN 'ARCHIVED'
                WHEN m.end_date IS NOT NULL THEN 'FORMER'
                WHEN m.pending THEN 'APPLIED'
                WHEN m.newbie THEN 'NEWBIE'
                ELSE 'ACTIVE' END AS status,
           m.posts, coalesce(m.start_date, DATE '2000-01-01') AS start_on,
           CASE WHEN m.archived IS NOT NULL THEN coalesce(m.end_date, m.archived)
                ELSE m.end_date END AS until_on,
           m.start_date IS NULL AS no_start
      FROM pn_ms m
    UNION ALL
    SELECT 'membership-history', m.id::text, m.group_id, m.user_id, 'ARCHIVED', m.posts,
           coalesce(m.start_date, pg_temp.pn_sem_start(m.first_semester)),
           pg_temp.pn_sem_end(m.last_semester), false
      FROM pn_ms m
     WHERE m.pending AND m.archived IS NULL AND m.end_date IS NULL
       AND m.last_semester IS NOT NULL
    UNION ALL
    SELECT 'membership-synthetic', h.group_id || ':' || h.user_id, h.group_id, h.user_id,
           'ARCHIVED', '{}'::text[], pg_temp.pn_sem_start(h.first_semester),
           pg_temp.pn_sem_end(h.last_semester), false
      FROM pn_history h
     WHERE NOT EXISTS (SELECT 1 FROM pn_memberships m
                        WHERE m.group_id = h.group_id AND m.user_id = h.user_id))
SELECT r.kind, r.legacy, r.group_id, r.user_id, r.status, r.posts, r.no_start,
       r.start_on::timestamp AT TIME ZONE 'Europe/Budapest' AS start_at,
       greatest(r.until_on, r.start_on)::timestamp AT TIME ZONE 'Europe/Budapest' AS until,
       r.until_on < r.start_on AS until_fixed,
       coalesce(k.id, gen_random_uuid()) AS id, mg.id AS group_uuid, mu.id AS user_uuid
  FROM rows r
  LEFT JOIN map_group mg ON mg.pn_id = r.group_id
  LEFT JOIN map_user mu ON mu.pn_id = r.user_id
  LEFT JOIN import_keys k ON k.realm_id = pg_temp.pn_realm() AND k.kind = r.kind AND k.legacy_id = r.legacy;
CREATE INDEX ON want_ms (group_id, user_id);
ANALYZE want_ms;

INSERT INTO pn_report
SELECT 'memberships', legacy, 'rejected', 'no such group or user'
  FROM want_ms WHERE kind = 'membership' AND (group_uuid IS NULL OR user_uuid IS NULL);
DELETE FROM want_ms WHERE group_uuid IS NULL OR user_uuid IS NULL;
INSERT INTO pn_report
SELECT 'memberships', legacy, 'changed', reason FROM (
    SELECT legacy, 'pending application with earlier points: history kept on an ARCHIVED membership' AS reason
      FROM want_ms WHERE kind = 'membership-history'
    UNION ALL
    SELECT legacy, 'no start date: carried as 2000-01-01' FROM want_ms WHERE no_start
    UNION ALL
    SELECT legacy, 'ends before it starts: end moved to the start' FROM want_ms WHERE until_fixed) r;
INSERT INTO pn_report
SELECT 'point_requests', group_id || ':' || user_id, 'changed',
       'points of a person with no membership in the group: an ARCHIVED membership was made'
  FROM want_ms WHERE kind = 'membership-synthetic';
"#;

/// pek-next's post types of a group become the group's post names, and so does every
/// name a membership holds (a membership holds only its group's posts): the leader's
/// (type 3) is built in, "feldolgozás alatt" (6) and "újonc" (104) are statuses here.
const GROUP_POSTS: &str = r#"
WITH names AS (
    SELECT mg.id AS group_id, btrim(left(btrim(t.name), 50)) AS name
      FROM pn_post_types t JOIN map_group mg ON mg.pn_id = t.group_id
     WHERE t.id NOT IN (3, 6, 104)
    UNION
    SELECT w.group_uuid, p FROM want_ms w, unnest(w.posts) AS p)
INSERT INTO group_posts (realm_id, group_id, name)
SELECT pg_temp.pn_realm(), group_id, name FROM names
 WHERE name <> '' AND name <> 'leader'
ON CONFLICT DO NOTHING
"#;

const UPDATE_MEMBERSHIPS: &str = r#"
UPDATE memberships t SET status = w.status, posts = w.posts, start_at = w.start_at,
       until = w.until, updated_at = now(),
       reopen_offered_at = CASE WHEN w.status = 'ARCHIVED' THEN t.reopen_offered_at END
  FROM want_ms w
 WHERE t.realm_id = pg_temp.pn_realm() AND t.id = w.id
   AND (t.status, t.posts, t.start_at, t.until) IS DISTINCT FROM
       (w.status, w.posts, w.start_at, w.until)
"#;

const INSERT_MEMBERSHIPS: &str = r#"
WITH ins AS (
    INSERT INTO memberships (realm_id, id, group_id, user_id, status, posts, start_at, until)
    SELECT pg_temp.pn_realm(), w.id, w.group_uuid, w.user_uuid, w.status, w.posts, w.start_at, w.until
      FROM want_ms w
     WHERE NOT EXISTS (SELECT 1 FROM memberships t WHERE t.realm_id = pg_temp.pn_realm() AND t.id = w.id)
    ON CONFLICT DO NOTHING
    RETURNING id)
INSERT INTO import_keys (realm_id, kind, legacy_id, id)
SELECT pg_temp.pn_realm(), w.kind, w.legacy, w.id FROM ins JOIN want_ms w ON w.id = ins.id
ON CONFLICT (realm_id, kind, legacy_id) DO UPDATE SET id = EXCLUDED.id
"#;

/// The hub's federation table after the memberships were written with its per-row
/// trigger off (`pek.bulk_import`): the same rule, once per person.
const FEDERATION: &str = r#"
CREATE TEMP TABLE pn_people_touched ON COMMIT DROP AS
SELECT DISTINCT user_uuid AS user_id FROM want_ms;
INSERT INTO realm_members (user_id, realm_id)
SELECT t.user_id, pg_temp.pn_realm() FROM pn_people_touched t
 WHERE pek_person_of_realm(t.user_id, pg_temp.pn_realm())
ON CONFLICT DO NOTHING;
DELETE FROM realm_members m USING pn_people_touched t
 WHERE m.realm_id = pg_temp.pn_realm() AND m.user_id = t.user_id
   AND NOT pek_person_of_realm(t.user_id, pg_temp.pn_realm());
INSERT INTO realm_pending (user_id, realm_id)
SELECT t.user_id, pg_temp.pn_realm() FROM pn_people_touched t
 WHERE pek_pending_in_realm(t.user_id, pg_temp.pn_realm())
ON CONFLICT DO NOTHING;
DELETE FROM realm_pending m USING pn_people_touched t
 WHERE m.realm_id = pg_temp.pn_realm() AND m.user_id = t.user_id
   AND NOT pek_pending_in_realm(t.user_id, pg_temp.pn_realm());
"#;

const REPORT_MEMBERSHIP_CONFLICTS: &str = r#"
INSERT INTO pn_report
SELECT 'memberships', w.legacy, 'rejected',
       'conflicts with a membership made in this realm (one live membership per person and group)'
  FROM want_ms w
 WHERE NOT EXISTS (SELECT 1 FROM memberships t WHERE t.realm_id = pg_temp.pn_realm() AND t.id = w.id);
DELETE FROM want_ms w
 WHERE NOT EXISTS (SELECT 1 FROM memberships t WHERE t.realm_id = pg_temp.pn_realm() AND t.id = w.id);
"#;

pub async fn import(conn: &mut PgConnection, ctx: &Ctx) -> anyhow::Result<Vec<Tally>> {
    ctx.script(conn, MAP_GROUPS).await?;
    let (read, fresh): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS
                  (SELECT 1 FROM groups g WHERE g.realm_id = pg_temp.pn_realm() AND g.id = w.id))
           FROM want_group w",
    )
    .fetch_one(&mut *conn)
    .await?;
    let upserted = ctx.exec(conn, UPSERT_GROUPS).await? as i64;
    let reparented = ctx.exec(conn, PARENTS).await? as i64;
    let (rejected, changed) = report::counts(conn, "groups").await?;
    let groups = Tally {
        mapping: "groups → groups (tree, kinds)".into(),
        read,
        inserted: fresh,
        updated: (upserted - fresh).max(0).max(reparented - fresh).max(0),
        rejected,
        changed,
        ..Tally::default()
    };
    ctx.script(conn, MEMBERSHIPS).await?;
    let (ms_read,): (i64,) = sqlx::query_as("SELECT count(*) FROM pn_memberships")
        .fetch_one(&mut *conn)
        .await?;
    let (post_types,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM pn_post_types WHERE group_id IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?;
    let post_names = ctx.exec(conn, GROUP_POSTS).await? as i64;
    ctx.exec(conn, "SELECT set_config('pek.bulk_import', 'on', true)")
        .await?;
    let updated = ctx.exec(conn, UPDATE_MEMBERSHIPS).await? as i64;
    let inserted = ctx.exec(conn, INSERT_MEMBERSHIPS).await? as i64;
    ctx.exec(conn, "SELECT set_config('pek.bulk_import', 'off', true)")
        .await?;
    ctx.script(conn, FEDERATION).await?;
    ctx.script(conn, REPORT_MEMBERSHIP_CONFLICTS).await?;
    let (rejected, changed) = report::counts(conn, "memberships").await?;
    let memberships = Tally {
        mapping: "memberships + posts → memberships".into(),
        read: ms_read,
        inserted,
        updated,
        rejected,
        changed,
        ..Tally::default()
    };
    let posts = Tally {
        mapping: "post types of groups + posts held → group_posts".into(),
        read: post_types,
        inserted: post_names,
        ..Tally::default()
    };
    Ok(vec![groups, posts, memberships])
}
