-- Community evaluation as the real PéK runs it.
--
-- Seasons replace the evaluation period: a realm's evaluation is OFF (nothing
-- editable), in SUBMISSION (groups fill and submit scoreboards) or in JUDGING
-- (evaluators accept or reject; rejected scoreboards may be resubmitted as new
-- versions), always of one semester. Leaving JUDGING for OFF computes the semester's
-- point history.

-- FORCE'd row-level security hides rows from the owner too while no realm is set, so
-- the data migration below lifts it for this transaction and restores it at the end.
ALTER TABLE evaluation_settings NO FORCE ROW LEVEL SECURITY;

ALTER TABLE evaluation_settings
    ADD COLUMN season text NOT NULL DEFAULT 'OFF'
        CONSTRAINT evaluation_settings_season_check
        CHECK (season IN ('OFF', 'SUBMISSION', 'JUDGING')),
    ADD COLUMN semester_id uuid,
    ADD COLUMN season_changed_at timestamptz,
    -- When the point history of `semester_id` was last computed (leaving JUDGING).
    ADD COLUMN history_computed_at timestamptz,
    ADD CONSTRAINT evaluation_settings_semester_fkey FOREIGN KEY (realm_id, semester_id)
        REFERENCES semesters (realm_id, id);

-- An open period becomes the SUBMISSION season of the realm's current semester (or its
-- latest one): scores were editable then, and stay so. Any other realm is OFF, still
-- remembering the semester it last evaluated when it had one.
UPDATE evaluation_settings e SET
    semester_id = (SELECT s.id FROM semesters s WHERE s.realm_id = e.realm_id
                    ORDER BY s.is_current DESC, s.starts_on DESC, s.name LIMIT 1),
    season_changed_at = now();
UPDATE evaluation_settings SET season = 'SUBMISSION'
 WHERE semester_id IS NOT NULL
   AND period_starts_at <= now() AND now() < period_ends_at;

ALTER TABLE evaluation_settings
    DROP CONSTRAINT evaluation_settings_period_check,
    DROP COLUMN period_starts_at,
    DROP COLUMN period_ends_at,
    ADD CONSTRAINT evaluation_settings_season_semester_check
        CHECK (season = 'OFF' OR semester_id IS NOT NULL);

ALTER TABLE evaluation_settings FORCE ROW LEVEL SECURITY;

-- Entry award requests (KDO / KB / AB) are reviewed on their own, apart from the points.
ALTER TABLE entry_award_requests
    ADD COLUMN status text NOT NULL DEFAULT 'PENDING'
        CONSTRAINT entry_award_requests_status_check
        CHECK (status IN ('PENDING', 'ACCEPTED', 'REJECTED')),
    ADD COLUMN rejection_reason text,
    ADD COLUMN reviewed_by uuid,
    ADD COLUMN reviewed_at timestamptz,
    ADD CONSTRAINT entry_award_requests_review_check CHECK (
        (status = 'PENDING') = (reviewed_at IS NULL)
        AND (status = 'REJECTED') = (rejection_reason IS NOT NULL)
        AND (rejection_reason IS NULL
             OR length(btrim(rejection_reason)) BETWEEN 1 AND 5000));
CREATE INDEX entry_award_requests_semester_status
    ON entry_award_requests (realm_id, semester_id, status);

-- Comments on one cell of a scoreboard (a member under a guideline), besides the
-- scoreboard's discussion. A cell may be discussed before or without a request on it.
CREATE TABLE point_request_comments (
    realm_id      text NOT NULL REFERENCES realms (id),
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    scoreboard_id uuid NOT NULL,
    group_id      uuid NOT NULL,
    semester_id   uuid NOT NULL,
    membership_id uuid NOT NULL,
    guideline_id  uuid NOT NULL,
    author_id     uuid NOT NULL,
    body          text NOT NULL CHECK (length(btrim(body)) BETWEEN 1 AND 5000),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT point_request_comments_pkey PRIMARY KEY (realm_id, id),
    CONSTRAINT point_request_comments_scoreboard_fkey
        FOREIGN KEY (realm_id, scoreboard_id, group_id, semester_id)
        REFERENCES scoreboards (realm_id, id, group_id, semester_id) ON DELETE CASCADE,
    CONSTRAINT point_request_comments_membership_fkey
        FOREIGN KEY (realm_id, membership_id, group_id)
        REFERENCES memberships (realm_id, id, group_id) ON DELETE CASCADE,
    CONSTRAINT point_request_comments_guideline_fkey
        FOREIGN KEY (realm_id, guideline_id, group_id, semester_id)
        REFERENCES guidelines (realm_id, id, group_id, semester_id) ON DELETE CASCADE
);
CREATE INDEX point_request_comments_cell
    ON point_request_comments (realm_id, scoreboard_id, membership_id, guideline_id,
                               created_at, id);
ALTER TABLE point_request_comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE point_request_comments FORCE ROW LEVEL SECURITY;
CREATE POLICY realm_isolation ON point_request_comments
    USING (realm_id = current_setting('pek.realm_id', true))
    WITH CHECK (realm_id = current_setting('pek.realm_id', true));

-- Point history now holds a member's points on a scoreboard by the formula (0–50); the
-- semester figure is computed from it when read. Reads go by semester for a user and by
-- semester for the whole realm (closing, exports).
CREATE INDEX point_history_semester ON point_history (realm_id, semester_id, user_id);
