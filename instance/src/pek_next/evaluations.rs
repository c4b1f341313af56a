//! Semesters, the season, and the evaluation: pek-next's evaluations become scoreboards
//! (korok version chains kept, superseded versions REJECTED so one version stays live)
//! with one guideline collection per group and semester; principles become guidelines
//! (pre-2018 evaluations, which have none, get an imported guideline that carries the
//! total); point requests and details, cell comments, the group↔judges messages and the
//! entry awards follow. `pg_temp.pn_realm()` is the realm, `pg_temp.pn_actor()` the
//! import's own actor (see `FUNCTIONS`).

use sqlx::PgConnection;

use super::report::{self, Tally};
use super::Ctx;

/// Functions of the import's session: the realm and the import's actor (from the
/// transaction's settings), and pek-next's semester strings (`201620171` = 2016/17
/// autumn, `…2` spring): checks and conversions.
pub const FUNCTIONS: &str = r#"
CREATE FUNCTION pg_temp.pn_realm() RETURNS text STABLE LANGUAGE sql AS $f$
    SELECT current_setting('pek.realm_id')
$f$;
CREATE FUNCTION pg_temp.pn_actor() RETURNS uuid STABLE LANGUAGE sql AS $f$
    SELECT current_setting('pek.import_actor')::uuid
$f$;
CREATE FUNCTION pg_temp.pn_sem_ok(s text) RETURNS boolean IMMUTABLE LANGUAGE sql AS $f$
    SELECT CASE WHEN s ~ '^[0-9]{9}$'
                THEN substr(s, 5, 4)::int = substr(s, 1, 4)::int + 1 AND right(s, 1) IN ('1', '2')
                     AND substr(s, 1, 4)::int BETWEEN 1950 AND 2200
                ELSE false END
$f$;
CREATE FUNCTION pg_temp.pn_sem_name(s text) RETURNS text IMMUTABLE LANGUAGE sql AS $f$
    SELECT substr(s, 1, 4) || '/' || substr(s, 7, 2) || '/' || right(s, 1)
$f$;
CREATE FUNCTION pg_temp.pn_sem_start(s text) RETURNS date IMMUTABLE LANGUAGE sql AS $f$
    SELECT CASE right(s, 1) WHEN '1' THEN make_date(substr(s, 1, 4)::int, 9, 1)
                            ELSE make_date(substr(s, 1, 4)::int + 1, 2, 1) END
$f$;
CREATE FUNCTION pg_temp.pn_sem_end(s text) RETURNS date IMMUTABLE LANGUAGE sql AS $f$
    SELECT CASE right(s, 1) WHEN '1' THEN make_date(substr(s, 1, 4)::int + 1, 1, 31)
                            ELSE make_date(substr(s, 1, 4)::int + 1, 8, 31) END
$f$;
CREATE FUNCTION pg_temp.pn_sem_ord(s text) RETURNS int IMMUTABLE LANGUAGE sql AS $f$
    SELECT substr(s, 1, 4)::int * 2 + right(s, 1)::int - 1
$f$;
CREATE FUNCTION pg_temp.pn_sem_of_ord(o int) RETURNS text IMMUTABLE LANGUAGE sql AS $f$
    SELECT (o / 2)::text || (o / 2 + 1)::text || (o % 2 + 1)::text
$f$;
"#;

/// Every semester from pek-next's first to its last, empty ones included: "the semester
/// before" is the previous row here, and an arithmetic one in pek-next.
const SEMESTERS: &str = r#"
CREATE TEMP TABLE want_semester ON COMMIT DROP AS
WITH used AS (
    SELECT semester AS s FROM pn_evaluations
    UNION SELECT semester FROM pn_point_histories
    UNION SELECT value FROM pn_system_attributes WHERE name = 'szemeszter'),
span AS (
    SELECT min(pg_temp.pn_sem_ord(s)) AS lo, max(pg_temp.pn_sem_ord(s)) AS hi
      FROM used WHERE pg_temp.pn_sem_ok(s))
SELECT pg_temp.pn_sem_of_ord(o) AS code
  FROM span, generate_series(span.lo, span.hi) o
 WHERE span.lo IS NOT NULL;

INSERT INTO semesters (realm_id, name, starts_on, ends_on)
SELECT pg_temp.pn_realm(), pg_temp.pn_sem_name(code), pg_temp.pn_sem_start(code), pg_temp.pn_sem_end(code)
  FROM want_semester
ON CONFLICT (realm_id, name) DO UPDATE SET
    starts_on = EXCLUDED.starts_on, ends_on = EXCLUDED.ends_on
 WHERE (semesters.starts_on, semesters.ends_on)
       IS DISTINCT FROM (EXCLUDED.starts_on, EXCLUDED.ends_on);

CREATE TEMP TABLE map_semester ON COMMIT DROP AS
SELECT w.code, s.id FROM want_semester w
  JOIN semesters s ON s.realm_id = pg_temp.pn_realm() AND s.name = pg_temp.pn_sem_name(w.code);
ALTER TABLE map_semester ADD PRIMARY KEY (code);

INSERT INTO pn_report
SELECT 'evaluations', id::text, 'rejected', 'semester is not a pek-next semester: ' || coalesce(semester, '')
  FROM pn_evaluations WHERE NOT pg_temp.pn_sem_ok(semester);
INSERT INTO pn_report
SELECT 'point_histories', user_id || ':' || coalesce(semester, ''), 'rejected',
       'semester is not a pek-next semester'
  FROM pn_point_histories WHERE NOT pg_temp.pn_sem_ok(semester);
"#;

/// The current semester, the season and the cap of the semester figure.
const SETTINGS: &str = r#"
CREATE TEMP TABLE want_settings ON COMMIT DROP AS
SELECT (SELECT s.id FROM pn_system_attributes a JOIN map_semester s ON s.code = a.value
         WHERE a.name = 'szemeszter' LIMIT 1) AS current,
       (SELECT CASE a.value WHEN 'ERTEKELESLEADAS' THEN 'SUBMISSION'
                            WHEN 'ERTEKELESELBIRALAS' THEN 'JUDGING' ELSE 'OFF' END
          FROM pn_system_attributes a WHERE a.name = 'ertekeles_idoszak' LIMIT 1) AS season,
       (SELECT CASE WHEN a.value ~ '^[0-9]{1,5}$' AND a.value::int BETWEEN 1 AND 10000
                    THEN a.value::int END
          FROM pn_system_attributes a WHERE a.name = 'max_point_for_semester' LIMIT 1) AS cap;

UPDATE semesters SET is_current = false
 WHERE realm_id = pg_temp.pn_realm() AND is_current
   AND id IS DISTINCT FROM (SELECT current FROM want_settings);
UPDATE semesters SET is_current = true
 WHERE realm_id = pg_temp.pn_realm() AND NOT is_current AND id = (SELECT current FROM want_settings);

INSERT INTO evaluation_settings (realm_id, max_points_per_semester, updated_by, season,
                                 semester_id, season_changed_at)
SELECT pg_temp.pn_realm(), coalesce(cap, 100), pg_temp.pn_actor(),
       CASE WHEN current IS NULL THEN 'OFF' ELSE coalesce(season, 'OFF') END, current, now()
  FROM want_settings
ON CONFLICT (realm_id) DO UPDATE SET
    max_points_per_semester = EXCLUDED.max_points_per_semester, season = EXCLUDED.season,
    semester_id = EXCLUDED.semester_id, updated_by = EXCLUDED.updated_by, updated_at = now(),
    season_changed_at = now()
 WHERE (evaluation_settings.max_points_per_semester, evaluation_settings.season,
        evaluation_settings.semester_id)
       IS DISTINCT FROM (EXCLUDED.max_points_per_semester, EXCLUDED.season,
                         EXCLUDED.semester_id);
"#;

const SCOREBOARDS: &str = r#"
CREATE TEMP TABLE want_sb ON COMMIT DROP AS
WITH e AS (
    SELECT e.*,
           row_number() OVER (PARTITION BY e.group_id, e.semester
                              ORDER BY e.idx_in_semester, e.id)::int AS version,
           count(*) OVER (PARTITION BY e.group_id, e.semester) AS versions
      FROM pn_evaluations e WHERE pg_temp.pn_sem_ok(e.semester)),
s AS (
    SELECT e.*, e.version < e.versions AS superseded,
           CASE WHEN e.version < e.versions THEN 'REJECTED'
                ELSE CASE e.point_request_status
                          WHEN 'ELBIRALATLAN' THEN 'NOT_YET_EVALUATED'
                          WHEN 'ELFOGADVA' THEN 'ACCEPTED'
                          WHEN 'ELUTASITVA' THEN 'REJECTED'
                          ELSE 'NOT_SUBMITTED' END END AS status,
           pg_temp.pn_sem_start(e.semester)::timestamp AT TIME ZONE 'Europe/Budapest' AS sem_start,
           pg_temp.pn_sem_end(e.semester)::timestamp AT TIME ZONE 'Europe/Budapest' AS sem_end
      FROM e)
SELECT s.id AS pn_id, s.group_id, s.semester, s.version, NOT s.superseded AS latest,
       s.status, mg.id AS group_uuid, ms.id AS semester_uuid,
       coalesce(k.id, gen_random_uuid()) AS id,
       NULL::uuid AS previous_id,
       CASE WHEN s.status <> 'REJECTED' THEN NULL
            WHEN s.superseded AND s.point_request_status IS DISTINCT FROM 'ELUTASITVA'
                THEN 'Felváltotta egy későbbi változat (korok)'
            ELSE coalesce(nullif(left(btrim(s.explanation), 5000), ''),
                          'Elutasítva (a pek-next nem őrzött indoklást)') END AS rejection_reason,
       s.point_request_status = 'ELUTASITVA'
           AND nullif(btrim(s.explanation), '') IS NULL AS reason_placeholder,
       s.superseded AND s.point_request_status IS DISTINCT FROM 'ELUTASITVA' AS made_rejected,
       coalesce(cu.id, pg_temp.pn_actor()) AS created_by,
       coalesce(s.ts AT TIME ZONE 'Europe/Budapest',
                s.last_modification AT TIME ZONE 'Europe/Budapest', s.sem_start) AS created_at,
       CASE WHEN s.status <> 'NOT_SUBMITTED'
            THEN coalesce(s.ts AT TIME ZONE 'Europe/Budapest',
                          s.last_modification AT TIME ZONE 'Europe/Budapest', s.sem_end) END
           AS submitted_at,
       CASE WHEN s.status IN ('ACCEPTED', 'REJECTED')
            THEN coalesce(s.last_evaluation AT TIME ZONE 'Europe/Budapest',
                          s.last_modification AT TIME ZONE 'Europe/Budapest',
                          s.ts AT TIME ZONE 'Europe/Budapest', s.sem_end) END AS evaluated_at,
       CASE WHEN s.status IN ('ACCEPTED', 'REJECTED') THEN coalesce(ru.id, pg_temp.pn_actor()) END AS evaluated_by,
       s.entry_request_status, s.explanation, s.principle, s.justification
  FROM s
  LEFT JOIN map_group mg ON mg.pn_id = s.group_id
  LEFT JOIN map_semester ms ON ms.code = s.semester
  LEFT JOIN map_user cu ON cu.pn_id = s.creator_user_id
  LEFT JOIN map_user ru ON ru.pn_id = s.reviewer_user_id
  LEFT JOIN import_keys k ON k.realm_id = pg_temp.pn_realm() AND k.kind = 'evaluation'
                         AND k.legacy_id = s.id::text;
INSERT INTO pn_report
SELECT 'evaluations', pn_id::text, 'rejected', 'no such group' FROM want_sb WHERE group_uuid IS NULL;
DELETE FROM want_sb WHERE group_uuid IS NULL;
ALTER TABLE want_sb ADD PRIMARY KEY (pn_id);
CREATE INDEX ON want_sb (group_id, semester);
ANALYZE want_sb;
UPDATE want_sb w SET previous_id = p.id
  FROM want_sb p
 WHERE p.group_id = w.group_id AND p.semester = w.semester AND p.version = w.version - 1;
INSERT INTO pn_report
SELECT 'evaluations', pn_id::text, 'changed', reason FROM (
    SELECT pn_id, 'superseded korok version: carried as REJECTED' AS reason
      FROM want_sb WHERE made_rejected
    UNION ALL
    SELECT pn_id, 'rejected without a reason: a placeholder reason was given'
      FROM want_sb WHERE reason_placeholder) r;

CREATE TEMP TABLE want_collection ON COMMIT DROP AS
SELECT DISTINCT ON (w.group_id, w.semester)
       w.group_id, w.semester, w.group_uuid, w.semester_uuid,
       coalesce(k.id, c.id, gen_random_uuid()) AS id,
       left(coalesce((SELECT string_agg(btrim(x.principle), E'\n\n' ORDER BY x.version DESC)
                        FROM want_sb x
                       WHERE x.group_id = w.group_id AND x.semester = w.semester
                         AND btrim(coalesce(x.principle, '')) <> ''), ''), 10000) AS description,
       w.created_by
  FROM want_sb w
  LEFT JOIN import_keys k ON k.realm_id = pg_temp.pn_realm() AND k.kind = 'collection'
                         AND k.legacy_id = w.group_id || ':' || w.semester
  LEFT JOIN guideline_collections c ON c.realm_id = pg_temp.pn_realm() AND c.group_id = w.group_uuid
                                   AND c.semester_id = w.semester_uuid
 ORDER BY w.group_id, w.semester, w.version;
"#;

const UPSERT_COLLECTIONS: &str = r#"
WITH up AS (
    INSERT INTO guideline_collections (realm_id, id, group_id, semester_id, name, description,
                                       created_by)
    SELECT pg_temp.pn_realm(), id, group_uuid, semester_uuid, 'Pontozási elvek', description, created_by
      FROM want_collection
    ON CONFLICT (realm_id, id) DO UPDATE SET description = EXCLUDED.description
     WHERE guideline_collections.description IS DISTINCT FROM EXCLUDED.description
    RETURNING id)
INSERT INTO import_keys (realm_id, kind, legacy_id, id)
SELECT pg_temp.pn_realm(), 'collection', w.group_id || ':' || w.semester, w.id FROM up JOIN want_collection w ON w.id = up.id
ON CONFLICT (realm_id, kind, legacy_id) DO NOTHING
"#;

const UPSERT_SCOREBOARDS: &str = r#"
WITH up AS (
    INSERT INTO scoreboards (realm_id, id, group_id, semester_id, version, previous_id, status,
                             rejection_reason, created_by, created_at, submitted_by,
                             submitted_at, evaluated_by, evaluated_at, updated_at)
    SELECT pg_temp.pn_realm(), id, group_uuid, semester_uuid, version, previous_id, status, rejection_reason,
           created_by, created_at, CASE WHEN submitted_at IS NOT NULL THEN created_by END,
           submitted_at, evaluated_by, evaluated_at, coalesce(evaluated_at, submitted_at, created_at)
      FROM want_sb WHERE version = {version}
    ON CONFLICT (realm_id, id) DO UPDATE SET
        status = EXCLUDED.status, rejection_reason = EXCLUDED.rejection_reason,
        submitted_by = EXCLUDED.submitted_by, submitted_at = EXCLUDED.submitted_at,
        evaluated_by = EXCLUDED.evaluated_by, evaluated_at = EXCLUDED.evaluated_at,
        updated_at = EXCLUDED.updated_at
     WHERE (scoreboards.status, scoreboards.rejection_reason, scoreboards.submitted_at,
            scoreboards.evaluated_by, scoreboards.evaluated_at)
           IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.rejection_reason,
                             EXCLUDED.submitted_at, EXCLUDED.evaluated_by,
                             EXCLUDED.evaluated_at)
    RETURNING id)
INSERT INTO import_keys (realm_id, kind, legacy_id, id)
SELECT pg_temp.pn_realm(), 'evaluation', w.pn_id::text, w.id FROM up JOIN want_sb w ON w.id = up.id
ON CONFLICT (realm_id, kind, legacy_id) DO NOTHING
"#;

/// Principles → guidelines. One guideline per (group, semester, title, category, maximum,
/// k-th such principle of its evaluation): the versions of one evaluation share them.
/// Evaluations without principles (before 2018) put the member's total on imported
/// guidelines: up to 30 on a WORK one, the rest (up to 20) on a RESPONSIBILITY one, so
/// the project's formula gives the same member points (its WORK sum caps at 30).
const GUIDELINES: &str = r#"
CREATE TEMP TABLE map_principle ON COMMIT DROP AS
WITH p AS (
    SELECT p.id, p.evaluation_id, sb.group_id, sb.semester,
           coalesce(nullif(left(btrim(p.name), 180), ''), 'Elv ' || p.id) AS title0,
           CASE WHEN p.type IN ('WORK', 'RESPONSIBILITY') THEN p.type ELSE 'WORK' END AS category,
           p.type IS DISTINCT FROM 'WORK' AND p.type IS DISTINCT FROM 'RESPONSIBILITY' AS bad_type,
           coalesce(p.max_per_member, 0) AS max_raw,
           left(coalesce(p.description, ''), 10000) AS description
      FROM pn_principles p JOIN want_sb sb ON sb.pn_id = p.evaluation_id)
SELECT p.*, greatest(p.max_raw, 1) AS max_pm,
       md5(p.group_id || ':' || p.semester || ':' || p.title0 || ':' || p.category || ':'
           || greatest(p.max_raw, 1) || ':'
           || row_number() OVER (PARTITION BY p.evaluation_id, p.title0, p.category, p.max_raw
                                 ORDER BY p.id)) AS key
  FROM p;
ALTER TABLE map_principle ADD PRIMARY KEY (id);
INSERT INTO pn_report
SELECT 'principles', id::text, 'changed', reason FROM (
    SELECT id, 'type is neither WORK nor RESPONSIBILITY: carried as WORK' AS reason
      FROM map_principle WHERE bad_type
    UNION ALL
    SELECT id, 'maximum per member below 1: carried as 1, its points (0 in pek-next) are not'
      FROM map_principle WHERE max_raw < 1) r;
INSERT INTO pn_report
SELECT 'principles', p.id::text, 'rejected', 'no such evaluation'
  FROM pn_principles p WHERE NOT EXISTS (SELECT 1 FROM want_sb sb WHERE sb.pn_id = p.evaluation_id);

CREATE TEMP TABLE pn_totals ON COMMIT DROP AS
SELECT r.id, r.evaluation_id, r.user_id, coalesce(r.point, 0) AS point, sb.group_id, sb.semester
  FROM pn_point_requests r JOIN want_sb sb ON sb.pn_id = r.evaluation_id
 WHERE NOT EXISTS (SELECT 1 FROM pn_principles p WHERE p.evaluation_id = r.evaluation_id);

CREATE TEMP TABLE want_gl ON COMMIT DROP AS
WITH g AS (
    (SELECT DISTINCT ON (key) key, group_id, semester, title0, category, max_pm, description,
            id AS first_id
       FROM map_principle ORDER BY key, id)
    UNION ALL
    SELECT DISTINCT 'total-work:' || group_id || ':' || semester, group_id, semester,
           'Összesen (importált)', 'WORK', 30,
           'A 2018 előtti pek-next értékelés tagonkénti összpontszáma (legfeljebb 30).', 0
      FROM pn_totals WHERE point > 0
    UNION ALL
    SELECT DISTINCT 'total-responsibility:' || group_id || ':' || semester, group_id, semester,
           'Összesen, felelősség (importált)', 'RESPONSIBILITY', 20,
           'A 2018 előtti pek-next értékelés tagonkénti összpontszámának 30 feletti része.', 0
      FROM pn_totals WHERE point > 30)
SELECT g.key, g.group_id, g.semester, g.category, g.max_pm, g.description,
       CASE WHEN row_number() OVER (PARTITION BY g.group_id, g.semester, g.title0
                                    ORDER BY g.first_id, g.key) = 1 THEN g.title0
            ELSE g.title0 || ' (' || row_number() OVER (PARTITION BY g.group_id, g.semester, g.title0
                                                      ORDER BY g.first_id, g.key) || ')' END AS title,
       c.id AS collection_id, c.group_uuid, c.semester_uuid,
       coalesce(k.id, gen_random_uuid()) AS id
  FROM g
  JOIN want_collection c ON c.group_id = g.group_id AND c.semester = g.semester
  LEFT JOIN import_keys k ON k.realm_id = pg_temp.pn_realm() AND k.kind = 'guideline' AND k.legacy_id = g.key;
ALTER TABLE want_gl ADD PRIMARY KEY (key);
ANALYZE want_gl;
"#;

const UPSERT_GUIDELINES: &str = r#"
WITH up AS (
    INSERT INTO guidelines (realm_id, id, collection_id, group_id, semester_id, title,
                            description, category, max_per_member, max_per_guideline,
                            created_by)
    SELECT pg_temp.pn_realm(), id, collection_id, group_uuid, semester_uuid, title, description, category,
           max_pm, 100000, pg_temp.pn_actor()
      FROM want_gl
    ON CONFLICT (realm_id, id) DO UPDATE SET
        title = EXCLUDED.title, description = EXCLUDED.description,
        category = EXCLUDED.category, max_per_member = EXCLUDED.max_per_member
     WHERE (guidelines.title, guidelines.description, guidelines.category,
            guidelines.max_per_member)
           IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.description, EXCLUDED.category,
                             EXCLUDED.max_per_member)
    RETURNING id)
INSERT INTO import_keys (realm_id, kind, legacy_id, id)
SELECT pg_temp.pn_realm(), 'guideline', w.key, w.id FROM up JOIN want_gl w ON w.id = up.id
ON CONFLICT (realm_id, kind, legacy_id) DO NOTHING
"#;

/// The membership a person's points and awards in a group hang on: the archived history
/// of a re-application, else the membership itself, else the one made for them.
const POINTS_MEMBERSHIP: &str = r#"
CREATE TEMP TABLE points_ms ON COMMIT DROP AS
SELECT DISTINCT ON (group_id, user_id) group_id, user_id, id
  FROM want_ms
 ORDER BY group_id, user_id,
          CASE kind WHEN 'membership-history' THEN 0 WHEN 'membership' THEN 1 ELSE 2 END;
ALTER TABLE points_ms ADD PRIMARY KEY (group_id, user_id);
ANALYZE points_ms;
"#;

const POINT_REQUESTS: &str = r#"
CREATE TEMP TABLE want_pr ON COMMIT DROP AS
SELECT sb.id AS scoreboard_id, sb.group_uuid, sb.semester_uuid, ms.id AS membership_id,
       gl.id AS guideline_id, sum(d.point)::int AS points,
       max(coalesce(sb.evaluated_at, sb.submitted_at, sb.created_at)) AS updated_at
  FROM pn_point_details d
  JOIN pn_point_requests r ON r.id = d.point_request_id
  JOIN want_sb sb ON sb.pn_id = r.evaluation_id
  JOIN map_principle mp ON mp.id = d.principle_id
  JOIN want_gl gl ON gl.key = mp.key
  JOIN points_ms ms ON ms.group_id = sb.group_id AND ms.user_id = r.user_id
 WHERE d.point > 0 AND mp.max_raw >= 1
 GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT sb.id, sb.group_uuid, sb.semester_uuid, ms.id, gl.id, p.part,
       coalesce(sb.evaluated_at, sb.submitted_at, sb.created_at)
  FROM pn_totals t
  JOIN want_sb sb ON sb.pn_id = t.evaluation_id
  JOIN points_ms ms ON ms.group_id = t.group_id AND ms.user_id = t.user_id
  CROSS JOIN LATERAL (VALUES ('total-work:', least(t.point, 30)),
                             ('total-responsibility:', least(t.point - 30, 20))) p(k, part)
  JOIN want_gl gl ON gl.key = p.k || t.group_id || ':' || t.semester
 WHERE p.part > 0;
CREATE INDEX ON want_pr (scoreboard_id, membership_id, guideline_id);
ANALYZE want_pr;

INSERT INTO pn_report
SELECT 'point_details', d.id::text, 'skipped', 'zero points: nothing to carry'
  FROM pn_point_details d WHERE coalesce(d.point, 0) <= 0;
INSERT INTO pn_report
SELECT 'point_details', d.id::text, 'rejected', 'its principle allows no points (maximum below 1)'
  FROM pn_point_details d JOIN map_principle mp ON mp.id = d.principle_id
 WHERE d.point > 0 AND mp.max_raw < 1;
INSERT INTO pn_report
SELECT 'point_details', d.id::text, 'rejected', 'no such principle or point request'
  FROM pn_point_details d
 WHERE NOT EXISTS (SELECT 1 FROM map_principle mp WHERE mp.id = d.principle_id)
    OR NOT EXISTS (SELECT 1 FROM pn_point_requests r JOIN want_sb sb ON sb.pn_id = r.evaluation_id
                    WHERE r.id = d.point_request_id);
INSERT INTO pn_report
SELECT 'point_requests', t.id::text, 'skipped', 'zero points: nothing to carry'
  FROM pn_totals t WHERE t.point <= 0;
INSERT INTO pn_report
SELECT 'point_requests', t.id::text, 'changed',
       'a total of ' || t.point || ' is not a result of the points formula (0, 5 or 5-50): carried as entered, the figure may differ'
  FROM pn_totals t WHERE t.point IN (1, 2) OR t.point > 50;
INSERT INTO pn_report
SELECT 'point_requests', r.id::text, 'rejected', 'no such evaluation'
  FROM pn_point_requests r WHERE NOT EXISTS (SELECT 1 FROM want_sb sb WHERE sb.pn_id = r.evaluation_id);
"#;

const DELETE_POINT_REQUESTS: &str = r#"
DELETE FROM point_requests p
 USING want_sb sb
 WHERE p.realm_id = pg_temp.pn_realm() AND p.scoreboard_id = sb.id
   AND NOT EXISTS (SELECT 1 FROM want_pr w
                    WHERE w.scoreboard_id = p.scoreboard_id AND w.membership_id = p.membership_id
                      AND w.guideline_id = p.guideline_id)
"#;

/// Changed rows updated, new rows inserted without ON CONFLICT (a first import is all
/// inserts, and a plain insert is the cheaper path), in key order for the indexes.
const UPSERT_POINT_REQUESTS: &str = r#"
UPDATE point_requests p SET points = w.points, updated_by = pg_temp.pn_actor(),
       updated_at = w.updated_at
  FROM want_pr w
 WHERE p.realm_id = pg_temp.pn_realm() AND p.scoreboard_id = w.scoreboard_id
   AND p.membership_id = w.membership_id AND p.guideline_id = w.guideline_id
   AND p.points IS DISTINCT FROM w.points;
INSERT INTO point_requests (realm_id, scoreboard_id, group_id, semester_id, membership_id,
                            guideline_id, points, updated_by, updated_at)
SELECT pg_temp.pn_realm(), w.scoreboard_id, w.group_uuid, w.semester_uuid, w.membership_id,
       w.guideline_id, w.points, pg_temp.pn_actor(), w.updated_at
  FROM want_pr w
 WHERE NOT EXISTS (SELECT 1 FROM point_requests p
                    WHERE p.realm_id = pg_temp.pn_realm() AND p.scoreboard_id = w.scoreboard_id
                      AND p.membership_id = w.membership_id
                      AND p.guideline_id = w.guideline_id)
 ORDER BY w.scoreboard_id, w.membership_id, w.guideline_id;
"#;

const ENTRY_AWARDS: &str = r#"
CREATE TEMP TABLE want_er ON COMMIT DROP AS
SELECT er.id AS pn_id, sb.id AS scoreboard_id, sb.group_uuid, sb.semester_uuid,
       ms.id AS membership_id, k.kind,
       CASE WHEN k.kind = 'KDO' THEN left(coalesce(er.justification, ''), 5000)
            ELSE coalesce(nullif(left(btrim(er.justification), 5000), ''),
                          '(a pek-next nem őrzött indoklást)') END AS justification,
       k.kind <> 'KDO' AND nullif(btrim(er.justification), '') IS NULL AS placeholder,
       coalesce((SELECT jsonb_object_agg(mg.id::text, v.value)
                   FROM jsonb_each(CASE WHEN jsonb_typeof(er.recommendations) = 'object'
                                        THEN er.recommendations ELSE '{}'::jsonb END) v
                   JOIN map_group mg ON mg.pn_id::text = v.key), '{}'::jsonb) AS recommendations,
       coalesce(er.finalized, false) AS finalized,
       CASE sb.entry_request_status WHEN 'ELFOGADVA' THEN 'ACCEPTED'
                                    WHEN 'ELUTASITVA' THEN 'REJECTED' ELSE 'PENDING' END AS status,
       coalesce(sb.evaluated_at, sb.submitted_at, sb.created_at) AS at,
       sb.evaluated_by, sb.explanation
  FROM pn_entry_requests er
  JOIN want_sb sb ON sb.pn_id = er.evaluation_id
  JOIN points_ms ms ON ms.group_id = sb.group_id AND ms.user_id = er.user_id
  CROSS JOIN LATERAL (SELECT CASE upper(btrim(er.entry_type))
                                  WHEN 'KDO' THEN 'KDO' WHEN 'DO' THEN 'KDO'
                                  WHEN 'KB' THEN 'KB' WHEN 'AB' THEN 'AB' WHEN 'ÁB' THEN 'AB'
                             END AS kind) k;
INSERT INTO pn_report
SELECT 'entry_requests', er.id::text, 'rejected',
       CASE WHEN w.pn_id IS NULL THEN 'no such evaluation' ELSE 'unknown entry type: ' || coalesce(er.entry_type, '') END
  FROM pn_entry_requests er LEFT JOIN want_er w ON w.pn_id = er.id
 WHERE w.pn_id IS NULL OR w.kind IS NULL;
DELETE FROM want_er WHERE kind IS NULL;
INSERT INTO pn_report
SELECT 'entry_requests', pn_id::text, 'changed', 'KB/ÁB without a justification: a placeholder was given'
  FROM want_er WHERE placeholder;
CREATE TEMP TABLE want_er_row ON COMMIT DROP AS
SELECT scoreboard_id, group_uuid, semester_uuid, membership_id, kind, justification, at,
       status,
       CASE WHEN status = 'REJECTED'
            THEN coalesce(nullif(left(btrim(explanation), 5000), ''),
                          'Elutasítva (a pek-next nem őrzött indoklást)') END AS rejection_reason,
       CASE WHEN status <> 'PENDING' THEN coalesce(evaluated_by, pg_temp.pn_actor()) END
           AS reviewed_by,
       CASE WHEN status <> 'PENDING' THEN at END AS reviewed_at,
       recommendations, finalized
  FROM want_er;
"#;

const DELETE_ENTRY_AWARDS: &str = r#"
DELETE FROM entry_award_requests e
 USING want_sb sb
 WHERE e.realm_id = pg_temp.pn_realm() AND e.scoreboard_id = sb.id
   AND NOT EXISTS (SELECT 1 FROM want_er w
                    WHERE w.scoreboard_id = e.scoreboard_id AND w.membership_id = e.membership_id)
"#;

const UPSERT_ENTRY_AWARDS: &str = r#"
UPDATE entry_award_requests e SET
    kind = w.kind, justification = w.justification, status = w.status,
    rejection_reason = w.rejection_reason, reviewed_by = w.reviewed_by,
    reviewed_at = w.reviewed_at, recommendations = w.recommendations,
    finalized = w.finalized, updated_at = w.at
  FROM want_er_row w
 WHERE e.realm_id = pg_temp.pn_realm() AND e.scoreboard_id = w.scoreboard_id
   AND e.membership_id = w.membership_id
   AND (e.kind, e.justification, e.status, e.rejection_reason, e.reviewed_by, e.reviewed_at,
        e.recommendations, e.finalized)
       IS DISTINCT FROM
       (w.kind, w.justification, w.status, w.rejection_reason, w.reviewed_by, w.reviewed_at,
        w.recommendations, w.finalized);
INSERT INTO entry_award_requests (realm_id, scoreboard_id, group_id, semester_id, membership_id,
                                  kind, justification, updated_by, updated_at, status,
                                  rejection_reason, reviewed_by, reviewed_at, recommendations,
                                  finalized)
SELECT pg_temp.pn_realm(), w.scoreboard_id, w.group_uuid, w.semester_uuid, w.membership_id,
       w.kind, w.justification, pg_temp.pn_actor(), w.at, w.status, w.rejection_reason,
       w.reviewed_by, w.reviewed_at, w.recommendations, w.finalized
  FROM want_er_row w
 WHERE NOT EXISTS (SELECT 1 FROM entry_award_requests e
                    WHERE e.realm_id = pg_temp.pn_realm() AND e.scoreboard_id = w.scoreboard_id
                      AND e.membership_id = w.membership_id)
 ORDER BY w.scoreboard_id, w.membership_id;
"#;

/// The group↔judges thread (pek-next keys it by group and semester: it goes to the live
/// version's scoreboard) and the group's written report of each version (its first
/// comment: the project has no column for it).
const COMMENTS: &str = r#"
CREATE TEMP TABLE want_sc ON COMMIT DROP AS
SELECT r.kind, r.legacy, r.scoreboard_id, r.author_id, r.body, r.created_at,
       coalesce(k.id, gen_random_uuid()) AS id
  FROM (SELECT 'message' AS kind, m.id::text AS legacy, sb.id AS scoreboard_id,
               coalesce(mu.id, pg_temp.pn_actor()) AS author_id, left(btrim(m.message), 5000) AS body,
               coalesce(m.sent_at AT TIME ZONE 'Europe/Budapest', sb.created_at) AS created_at
          FROM pn_evaluation_messages m
          JOIN want_sb sb ON sb.group_id = m.group_id AND sb.semester = m.semester AND sb.latest
          LEFT JOIN map_user mu ON mu.pn_id = m.sender_user_id AND NOT coalesce(m.from_system, false)
         WHERE btrim(coalesce(m.message, '')) <> ''
        UNION ALL
        SELECT 'justification', sb.pn_id::text, sb.id, sb.created_by,
               left(btrim(sb.justification), 5000), sb.created_at
          FROM want_sb sb WHERE btrim(coalesce(sb.justification, '')) <> '') r
  LEFT JOIN import_keys k ON k.realm_id = pg_temp.pn_realm() AND k.kind = r.kind AND k.legacy_id = r.legacy;
INSERT INTO pn_report
SELECT 'evaluation_messages', m.id::text, 'rejected',
       CASE WHEN btrim(coalesce(m.message, '')) = '' THEN 'empty message'
            ELSE 'no evaluation of that group and semester' END
  FROM pn_evaluation_messages m
 WHERE NOT EXISTS (SELECT 1 FROM want_sc w WHERE w.kind = 'message' AND w.legacy = m.id::text);

CREATE TEMP TABLE want_cc ON COMMIT DROP AS
SELECT c.id AS pn_id, sb.id AS scoreboard_id, sb.group_uuid, sb.semester_uuid,
       ms.id AS membership_id, gl.id AS guideline_id, coalesce(mu.id, pg_temp.pn_actor()) AS author_id,
       left(btrim(c.comment), 5000) AS body,
       coalesce(c.created_at AT TIME ZONE 'Europe/Budapest', sb.created_at) AS created_at,
       coalesce(k.id, gen_random_uuid()) AS id
  FROM pn_point_detail_comments c
  JOIN pn_point_details d ON d.id = c.point_detail_id
  JOIN pn_point_requests r ON r.id = d.point_request_id
  JOIN want_sb sb ON sb.pn_id = r.evaluation_id
  JOIN map_principle mp ON mp.id = d.principle_id
  JOIN want_gl gl ON gl.key = mp.key
  JOIN points_ms ms ON ms.group_id = sb.group_id AND ms.user_id = r.user_id
  LEFT JOIN map_user mu ON mu.pn_id = c.user_id
  LEFT JOIN import_keys k ON k.realm_id = pg_temp.pn_realm() AND k.kind = 'detail-comment'
                         AND k.legacy_id = c.id::text
 WHERE btrim(coalesce(c.comment, '')) <> '';
INSERT INTO pn_report
SELECT 'point_detail_comments', c.id::text, 'rejected',
       CASE WHEN btrim(coalesce(c.comment, '')) = '' THEN 'empty comment'
            ELSE 'no such point detail' END
  FROM pn_point_detail_comments c
 WHERE NOT EXISTS (SELECT 1 FROM want_cc w WHERE w.pn_id = c.id);
"#;

const UPSERT_COMMENTS: &str = r#"
DELETE FROM scoreboard_comments t
 USING import_keys k
 WHERE t.realm_id = pg_temp.pn_realm() AND k.realm_id = pg_temp.pn_realm() AND k.kind IN ('message', 'justification')
   AND k.id = t.id
   AND NOT EXISTS (SELECT 1 FROM want_sc w WHERE w.id = t.id);
UPDATE scoreboard_comments t SET body = w.body
  FROM want_sc w WHERE t.realm_id = pg_temp.pn_realm() AND t.id = w.id AND t.body IS DISTINCT FROM w.body;
WITH ins AS (
    INSERT INTO scoreboard_comments (realm_id, id, scoreboard_id, author_id, body, created_at)
    SELECT pg_temp.pn_realm(), w.id, w.scoreboard_id, w.author_id, w.body, w.created_at FROM want_sc w
     WHERE NOT EXISTS (SELECT 1 FROM scoreboard_comments t WHERE t.realm_id = pg_temp.pn_realm() AND t.id = w.id)
    RETURNING id)
INSERT INTO import_keys (realm_id, kind, legacy_id, id)
SELECT pg_temp.pn_realm(), w.kind, w.legacy, w.id FROM ins JOIN want_sc w ON w.id = ins.id
ON CONFLICT (realm_id, kind, legacy_id) DO UPDATE SET id = EXCLUDED.id;

DELETE FROM point_request_comments t
 USING import_keys k
 WHERE t.realm_id = pg_temp.pn_realm() AND k.realm_id = pg_temp.pn_realm() AND k.kind = 'detail-comment' AND k.id = t.id
   AND NOT EXISTS (SELECT 1 FROM want_cc w WHERE w.id = t.id);
UPDATE point_request_comments t SET body = w.body
  FROM want_cc w WHERE t.realm_id = pg_temp.pn_realm() AND t.id = w.id AND t.body IS DISTINCT FROM w.body;
WITH ins AS (
    INSERT INTO point_request_comments (realm_id, id, scoreboard_id, group_id, semester_id,
                                        membership_id, guideline_id, author_id, body, created_at)
    SELECT pg_temp.pn_realm(), w.id, w.scoreboard_id, w.group_uuid, w.semester_uuid, w.membership_id,
           w.guideline_id, w.author_id, w.body, w.created_at FROM want_cc w
     WHERE NOT EXISTS (SELECT 1 FROM point_request_comments t
                        WHERE t.realm_id = pg_temp.pn_realm() AND t.id = w.id)
    RETURNING id)
INSERT INTO import_keys (realm_id, kind, legacy_id, id)
SELECT pg_temp.pn_realm(), 'detail-comment', w.pn_id::text, w.id FROM ins JOIN want_cc w ON w.id = ins.id
ON CONFLICT (realm_id, kind, legacy_id) DO UPDATE SET id = EXCLUDED.id;
"#;

async fn count(conn: &mut PgConnection, sql: &str) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(conn).await?;
    Ok(n)
}

pub async fn semesters(conn: &mut PgConnection, ctx: &Ctx) -> anyhow::Result<Vec<Tally>> {
    let before = count(conn, "SELECT count(*) FROM semesters").await?;
    ctx.script(conn, SEMESTERS).await?;
    ctx.script(conn, SETTINGS).await?;
    let after = count(conn, "SELECT count(*) FROM semesters").await?;
    let read = count(conn, "SELECT count(*) FROM want_semester").await?;
    Ok(vec![Tally {
        mapping: "semester strings → semesters".into(),
        read,
        inserted: after - before,
        ..Tally::default()
    }])
}

pub async fn import(conn: &mut PgConnection, ctx: &Ctx) -> anyhow::Result<Vec<Tally>> {
    let mut out = Vec::new();
    ctx.script(conn, SCOREBOARDS).await?;
    let read = count(conn, "SELECT count(*) FROM pn_evaluations").await?;
    let fresh_sb = count(
        conn,
        "SELECT count(*) FROM want_sb w WHERE NOT EXISTS (SELECT 1 FROM scoreboards s WHERE s.id = w.id)",
    )
    .await?;
    ctx.exec(conn, UPSERT_COLLECTIONS).await?;
    let max_version = count(
        conn,
        "SELECT coalesce(max(version), 0)::bigint FROM want_sb",
    )
    .await?;
    let mut upserted = 0i64;
    for v in 1..=max_version {
        // An integer of ours: formatting it in is safe.
        let sql = UPSERT_SCOREBOARDS.replace("{version}", &v.to_string());
        upserted += ctx.exec(conn, &sql).await? as i64;
    }
    let (rejected, changed) = report::counts(conn, "evaluations").await?;
    out.push(Tally {
        mapping: "evaluations → scoreboards, collections".into(),
        read,
        inserted: fresh_sb,
        updated: upserted_delta(upserted, fresh_sb),
        rejected,
        changed,
        ..Tally::default()
    });

    ctx.script(conn, GUIDELINES).await?;
    let read = count(conn, "SELECT count(*) FROM pn_principles").await?;
    let fresh = count(
        conn,
        "SELECT count(*) FROM want_gl w WHERE NOT EXISTS (SELECT 1 FROM guidelines g WHERE g.id = w.id)",
    )
    .await?;
    let synthetic = count(
        conn,
        "SELECT count(*) FROM want_gl WHERE key LIKE 'total-%'",
    )
    .await?;
    let upserted = ctx.exec(conn, UPSERT_GUIDELINES).await? as i64;
    let (rejected, changed) = report::counts(conn, "principles").await?;
    out.push(Tally {
        mapping: format!("principles → guidelines (+{synthetic} imported totals)"),
        read,
        inserted: fresh,
        updated: upserted_delta(upserted, fresh),
        rejected,
        changed,
        ..Tally::default()
    });

    ctx.script(conn, POINTS_MEMBERSHIP).await?;
    ctx.script(conn, POINT_REQUESTS).await?;
    let read = count(conn, "SELECT count(*) FROM pn_point_requests").await?
        + count(conn, "SELECT count(*) FROM pn_point_details").await?;
    let fresh = count(
        conn,
        "SELECT count(*) FROM want_pr w WHERE NOT EXISTS (SELECT 1 FROM point_requests p
            WHERE p.scoreboard_id = w.scoreboard_id AND p.membership_id = w.membership_id
              AND p.guideline_id = w.guideline_id)",
    )
    .await?;
    let deleted = ctx.exec(conn, DELETE_POINT_REQUESTS).await? as i64;
    let upserted = ctx.exec(conn, UPSERT_POINT_REQUESTS).await? as i64;
    let (r1, c1) = report::counts(conn, "point_requests").await?;
    let (r2, c2) = report::counts(conn, "point_details").await?;
    let skipped = count(
        conn,
        "SELECT count(*) FROM pn_report WHERE outcome = 'skipped' AND tbl IN ('point_requests', 'point_details')",
    )
    .await?;
    out.push(Tally {
        mapping: "point_requests + point_details → point_requests".into(),
        read,
        inserted: fresh,
        updated: upserted_delta(upserted, fresh) + deleted,
        rejected: r1 + r2 + skipped,
        changed: c1 + c2,
        ..Tally::default()
    });

    ctx.script(conn, ENTRY_AWARDS).await?;
    let read = count(conn, "SELECT count(*) FROM pn_entry_requests").await?;
    let fresh = count(
        conn,
        "SELECT count(*) FROM want_er w WHERE NOT EXISTS (SELECT 1 FROM entry_award_requests e
            WHERE e.scoreboard_id = w.scoreboard_id AND e.membership_id = w.membership_id)",
    )
    .await?;
    let deleted = ctx.exec(conn, DELETE_ENTRY_AWARDS).await? as i64;
    let upserted = ctx.exec(conn, UPSERT_ENTRY_AWARDS).await? as i64;
    let (rejected, changed) = report::counts(conn, "entry_requests").await?;
    out.push(Tally {
        mapping: "entry_requests → entry_award_requests".into(),
        read,
        inserted: fresh,
        updated: upserted_delta(upserted, fresh) + deleted,
        rejected,
        changed,
        ..Tally::default()
    });

    ctx.script(conn, COMMENTS).await?;
    let fresh_sc = count(
        conn,
        "SELECT count(*) FROM want_sc w WHERE NOT EXISTS (SELECT 1 FROM scoreboard_comments t WHERE t.id = w.id)",
    )
    .await?;
    let fresh_cc = count(
        conn,
        "SELECT count(*) FROM want_cc w WHERE NOT EXISTS (SELECT 1 FROM point_request_comments t WHERE t.id = w.id)",
    )
    .await?;
    ctx.script(conn, UPSERT_COMMENTS).await?;
    let read = count(conn, "SELECT count(*) FROM pn_evaluation_messages").await?;
    let (rejected, changed) = report::counts(conn, "evaluation_messages").await?;
    out.push(Tally {
        mapping: "evaluation_messages + justifications → scoreboard_comments".into(),
        read,
        inserted: fresh_sc,
        rejected,
        changed,
        ..Tally::default()
    });
    let read = count(conn, "SELECT count(*) FROM pn_point_detail_comments").await?;
    let (rejected, changed) = report::counts(conn, "point_detail_comments").await?;
    out.push(Tally {
        mapping: "point_detail_comments → point_request_comments".into(),
        read,
        inserted: fresh_cc,
        rejected,
        changed,
        ..Tally::default()
    });
    Ok(out)
}

fn upserted_delta(upserted: i64, fresh: i64) -> i64 {
    (upserted - fresh).max(0)
}
