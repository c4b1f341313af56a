-- Community evaluation (issue 5): guideline collections and guidelines, versioned
-- scoreboards with a discussion thread, point and entry award requests, point history,
-- and the realm's evaluation settings. Same isolation layers as the core schema:
-- realm_id in every key, composite foreign keys to realm-scoped parents (a child in
-- another realm, or in another group / semester than its scoreboard, cannot be stored),
-- and forced row-level security.

-- A point or entry award request names a membership *of the scoreboard's group*; this
-- key lets the foreign key say so.
ALTER TABLE memberships
    ADD CONSTRAINT memberships_realm_id_id_group_id_key UNIQUE (realm_id, id, group_id);

CREATE TABLE evaluation_settings (
    realm_id                text PRIMARY KEY REFERENCES realms (id),
    period_starts_at        timestamptz,
    period_ends_at          timestamptz,
    max_points_per_semester integer NOT NULL DEFAULT 100
                            CHECK (max_points_per_semester BETWEEN 1 AND 10000),
    updated_by              uuid NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT evaluation_settings_period_check CHECK (
        (period_starts_at IS NULL) = (period_ends_at IS NULL)
        AND (period_ends_at IS NULL OR period_ends_at > period_starts_at))
);

CREATE TABLE guideline_collections (
    realm_id    text NOT NULL REFERENCES realms (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    group_id    uuid NOT NULL,
    semester_id uuid NOT NULL,
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    created_by  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT guideline_collections_pkey PRIMARY KEY (realm_id, id),
    CONSTRAINT guideline_collections_one_per_group_semester
        UNIQUE (realm_id, group_id, semester_id),
    CONSTRAINT guideline_collections_scope_key UNIQUE (realm_id, id, group_id, semester_id),
    CONSTRAINT guideline_collections_group_fkey FOREIGN KEY (realm_id, group_id)
        REFERENCES groups (realm_id, id),
    CONSTRAINT guideline_collections_semester_fkey FOREIGN KEY (realm_id, semester_id)
        REFERENCES semesters (realm_id, id)
);

CREATE TABLE guidelines (
    realm_id          text NOT NULL REFERENCES realms (id),
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    collection_id     uuid NOT NULL,
    group_id          uuid NOT NULL,
    semester_id       uuid NOT NULL,
    title             text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    description       text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    category          text NOT NULL CHECK (category IN ('WORK', 'RESPONSIBILITY')),
    max_per_member    integer NOT NULL CHECK (max_per_member > 0),
    max_per_guideline integer NOT NULL,
    created_by        uuid NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT guidelines_pkey PRIMARY KEY (realm_id, id),
    CONSTRAINT guidelines_scope_key UNIQUE (realm_id, id, group_id, semester_id),
    CONSTRAINT guidelines_title_key UNIQUE (realm_id, collection_id, title),
    CONSTRAINT guidelines_collection_fkey
        FOREIGN KEY (realm_id, collection_id, group_id, semester_id)
        REFERENCES guideline_collections (realm_id, id, group_id, semester_id)
        ON DELETE CASCADE,
    CONSTRAINT guidelines_limits_check CHECK (max_per_guideline >= max_per_member)
);

CREATE TABLE scoreboards (
    realm_id         text NOT NULL REFERENCES realms (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    group_id         uuid NOT NULL,
    semester_id      uuid NOT NULL,
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    previous_id      uuid,
    status           text NOT NULL DEFAULT 'NOT_SUBMITTED'
                     CHECK (status IN ('NOT_SUBMITTED', 'NOT_YET_EVALUATED', 'ACCEPTED',
                                       'REJECTED')),
    rejection_reason text CHECK (length(rejection_reason) <= 5000),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    submitted_by     uuid,
    submitted_at     timestamptz,
    evaluated_by     uuid,
    evaluated_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scoreboards_pkey PRIMARY KEY (realm_id, id),
    CONSTRAINT scoreboards_scope_key UNIQUE (realm_id, id, group_id, semester_id),
    CONSTRAINT scoreboards_version_key UNIQUE (realm_id, group_id, semester_id, version),
    CONSTRAINT scoreboards_one_successor UNIQUE (realm_id, previous_id),
    CONSTRAINT scoreboards_group_fkey FOREIGN KEY (realm_id, group_id)
        REFERENCES groups (realm_id, id),
    CONSTRAINT scoreboards_semester_fkey FOREIGN KEY (realm_id, semester_id)
        REFERENCES semesters (realm_id, id),
    -- The previous version is of the same group and semester.
    CONSTRAINT scoreboards_previous_fkey FOREIGN KEY (realm_id, previous_id, group_id, semester_id)
        REFERENCES scoreboards (realm_id, id, group_id, semester_id),
    CONSTRAINT scoreboards_previous_version_check CHECK ((version = 1) = (previous_id IS NULL)),
    CONSTRAINT scoreboards_reason_check CHECK (
        (status = 'REJECTED') = (rejection_reason IS NOT NULL)
        AND (rejection_reason IS NULL OR length(btrim(rejection_reason)) > 0)),
    CONSTRAINT scoreboards_submitted_check CHECK (
        (status = 'NOT_SUBMITTED') = (submitted_at IS NULL)),
    CONSTRAINT scoreboards_evaluated_check CHECK (
        (status IN ('ACCEPTED', 'REJECTED')) = (evaluated_at IS NOT NULL))
);
-- At most one scoreboard per group and semester is not rejected (the live version).
CREATE UNIQUE INDEX scoreboards_one_live ON scoreboards (realm_id, group_id, semester_id)
    WHERE status <> 'REJECTED';
CREATE INDEX scoreboards_semester_status ON scoreboards (realm_id, semester_id, status);

CREATE TABLE scoreboard_comments (
    realm_id      text NOT NULL REFERENCES realms (id),
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    scoreboard_id uuid NOT NULL,
    author_id     uuid NOT NULL,
    body          text NOT NULL CHECK (length(btrim(body)) BETWEEN 1 AND 5000),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT scoreboard_comments_pkey PRIMARY KEY (realm_id, id),
    CONSTRAINT scoreboard_comments_scoreboard_fkey FOREIGN KEY (realm_id, scoreboard_id)
        REFERENCES scoreboards (realm_id, id) ON DELETE CASCADE
);
CREATE INDEX scoreboard_comments_thread
    ON scoreboard_comments (realm_id, scoreboard_id, created_at, id);

CREATE TABLE point_requests (
    realm_id      text NOT NULL REFERENCES realms (id),
    scoreboard_id uuid NOT NULL,
    group_id      uuid NOT NULL,
    semester_id   uuid NOT NULL,
    membership_id uuid NOT NULL,
    guideline_id  uuid NOT NULL,
    points        integer NOT NULL CHECK (points > 0),
    updated_by    uuid NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT point_requests_pkey
        PRIMARY KEY (realm_id, scoreboard_id, membership_id, guideline_id),
    CONSTRAINT point_requests_scoreboard_fkey
        FOREIGN KEY (realm_id, scoreboard_id, group_id, semester_id)
        REFERENCES scoreboards (realm_id, id, group_id, semester_id) ON DELETE CASCADE,
    CONSTRAINT point_requests_membership_fkey FOREIGN KEY (realm_id, membership_id, group_id)
        REFERENCES memberships (realm_id, id, group_id),
    CONSTRAINT point_requests_guideline_fkey
        FOREIGN KEY (realm_id, guideline_id, group_id, semester_id)
        REFERENCES guidelines (realm_id, id, group_id, semester_id)
);
CREATE INDEX point_requests_guideline ON point_requests (realm_id, guideline_id);
CREATE INDEX point_requests_membership ON point_requests (realm_id, membership_id);

CREATE TABLE entry_award_requests (
    realm_id      text NOT NULL REFERENCES realms (id),
    scoreboard_id uuid NOT NULL,
    group_id      uuid NOT NULL,
    semester_id   uuid NOT NULL,
    membership_id uuid NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('KDO', 'KB', 'AB')),
    justification text NOT NULL CHECK (length(btrim(justification)) BETWEEN 1 AND 5000),
    updated_by    uuid NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- One per membership and scoreboard; with one live scoreboard per group and
    -- semester, that is one per (membership, semester).
    CONSTRAINT entry_award_requests_pkey PRIMARY KEY (realm_id, scoreboard_id, membership_id),
    CONSTRAINT entry_award_requests_scoreboard_fkey
        FOREIGN KEY (realm_id, scoreboard_id, group_id, semester_id)
        REFERENCES scoreboards (realm_id, id, group_id, semester_id) ON DELETE CASCADE,
    CONSTRAINT entry_award_requests_membership_fkey
        FOREIGN KEY (realm_id, membership_id, group_id)
        REFERENCES memberships (realm_id, id, group_id)
);
CREATE INDEX entry_award_requests_membership ON entry_award_requests (realm_id, membership_id);

-- Derived from accepted scoreboards: a user's points from one group in one semester.
CREATE TABLE point_history (
    realm_id      text NOT NULL REFERENCES realms (id),
    semester_id   uuid NOT NULL,
    user_id       uuid NOT NULL,
    group_id      uuid NOT NULL,
    scoreboard_id uuid NOT NULL,
    points        integer NOT NULL CHECK (points >= 0),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT point_history_pkey PRIMARY KEY (realm_id, semester_id, user_id, group_id),
    CONSTRAINT point_history_scoreboard_fkey
        FOREIGN KEY (realm_id, scoreboard_id, group_id, semester_id)
        REFERENCES scoreboards (realm_id, id, group_id, semester_id)
);
CREATE INDEX point_history_user ON point_history (realm_id, user_id, semester_id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['evaluation_settings', 'guideline_collections', 'guidelines',
                             'scoreboards', 'scoreboard_comments', 'point_requests',
                             'entry_award_requests', 'point_history'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY realm_isolation ON %I
                 USING (realm_id = current_setting(''pek.realm_id'', true))
                 WITH CHECK (realm_id = current_setting(''pek.realm_id'', true))', t);
    END LOOP;
END $$;
