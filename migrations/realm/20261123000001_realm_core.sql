-- Realm schema: every instance (hub and worker) has it.
-- Isolation layer 2: realm_id is part of every key, unique and foreign key, so a child
-- in another realm than its parent cannot be stored. Layer 3 (RLS) is at the end.

CREATE TABLE realms (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{0,61}[a-z0-9]$'),
    display_name text NOT NULL CHECK (length(btrim(display_name)) BETWEEN 1 AND 200),
    created_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO realms (id, display_name) VALUES ('hub', 'Hub');

CREATE TABLE groups (
    realm_id    text NOT NULL REFERENCES realms (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    parent_id   uuid,
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    name_folded text NOT NULL,
    purpose     text NOT NULL DEFAULT 'UNKNOWN'
                CHECK (purpose IN ('UNKNOWN', 'CIRCLE', 'COMMITTEE', 'DEPARTMENT', 'EVENT',
                                   'PROJECT', 'PARTY', 'RESORT', 'OTHER')),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    archived    boolean NOT NULL DEFAULT false,
    created_by  uuid NOT NULL,
    owner_id    uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, id),
    UNIQUE (realm_id, name),
    FOREIGN KEY (realm_id, parent_id) REFERENCES groups (realm_id, id),
    CHECK (parent_id IS DISTINCT FROM id)
);
CREATE INDEX groups_name_prefix ON groups (realm_id, name_folded text_pattern_ops);
CREATE INDEX groups_parent ON groups (realm_id, parent_id);

CREATE TABLE memberships (
    realm_id   text NOT NULL REFERENCES realms (id),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    group_id   uuid NOT NULL,
    user_id    uuid NOT NULL,
    status     text NOT NULL DEFAULT 'NEWBIE'
               CHECK (status IN ('NEWBIE', 'ACTIVE', 'FORMER', 'ARCHIVED')),
    posts      text[] NOT NULL DEFAULT '{}' CHECK (cardinality(posts) <= 20),
    start_at   timestamptz NOT NULL DEFAULT now(),
    until      timestamptz CHECK (until IS NULL OR until >= start_at),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, id),
    UNIQUE (realm_id, user_id, group_id),
    FOREIGN KEY (realm_id, group_id) REFERENCES groups (realm_id, id) ON DELETE CASCADE
);
CREATE INDEX memberships_group ON memberships (realm_id, group_id);

CREATE TABLE semesters (
    realm_id   text NOT NULL REFERENCES realms (id),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 50),
    starts_on  date NOT NULL,
    ends_on    date NOT NULL CHECK (ends_on > starts_on),
    is_current boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, id),
    UNIQUE (realm_id, name)
);
CREATE UNIQUE INDEX semesters_one_current ON semesters (realm_id) WHERE is_current;

CREATE TABLE feature_flags (
    realm_id   text NOT NULL REFERENCES realms (id),
    key        text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_.-]{0,99}$'),
    enabled    boolean NOT NULL,
    updated_by uuid NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, key)
);

CREATE TABLE policies (
    realm_id   text NOT NULL REFERENCES realms (id),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    parent_id  uuid,
    is_god     boolean NOT NULL DEFAULT false,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, id),
    UNIQUE (realm_id, name),
    FOREIGN KEY (realm_id, parent_id) REFERENCES policies (realm_id, id),
    CHECK (NOT (is_god AND parent_id IS NOT NULL)),
    CHECK (parent_id IS DISTINCT FROM id)
);
CREATE UNIQUE INDEX policies_one_god ON policies (realm_id) WHERE is_god;

CREATE TABLE statements (
    realm_id    text NOT NULL REFERENCES realms (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    policy_id   uuid NOT NULL,
    group_id    uuid,
    user_id     uuid,
    permissions text[] NOT NULL CHECK (
        cardinality(permissions) > 0 AND permissions <@ ARRAY[
            'viewMembers', 'editMembers', 'viewGroup', 'editGroup', 'moveGroupOwner',
            'viewScores', 'editScores', 'evaluateScores', 'viewBasicProfile',
            'viewFullProfile', 'editProfile', 'manageRealm']::text[]),
    escalation  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, id),
    FOREIGN KEY (realm_id, policy_id) REFERENCES policies (realm_id, id) ON DELETE CASCADE,
    FOREIGN KEY (realm_id, group_id) REFERENCES groups (realm_id, id) ON DELETE CASCADE
);
CREATE INDEX statements_policy ON statements (realm_id, policy_id);
CREATE INDEX statements_group ON statements (realm_id, group_id);

CREATE TABLE policy_assignments (
    realm_id    text NOT NULL REFERENCES realms (id),
    user_id     uuid NOT NULL,
    policy_id   uuid NOT NULL,
    assigned_by uuid,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, user_id, policy_id),
    FOREIGN KEY (realm_id, policy_id) REFERENCES policies (realm_id, id) ON DELETE CASCADE
);
CREATE INDEX policy_assignments_policy ON policy_assignments (realm_id, policy_id);

-- Every realm has exactly one GOD policy; the hub realm's is seeded here.
INSERT INTO policies (realm_id, name, is_god) VALUES ('hub', 'GOD', true);

-- Isolation layer 3: row-level security keyed on the transaction's realm. FORCE makes it
-- apply to the table owner too, so even a misconfigured deployment that connects as the
-- owner cannot read across realms.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['groups', 'memberships', 'semesters', 'feature_flags',
                             'policies', 'statements', 'policy_assignments'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY realm_isolation ON %I
                 USING (realm_id = current_setting(''pek.realm_id'', true))
                 WITH CHECK (realm_id = current_setting(''pek.realm_id'', true))', t);
    END LOOP;
END $$;
