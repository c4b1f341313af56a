-- What the PéK in production (pek-next) has and this model lacked, and the bookkeeping of
-- `pek import pek-next`.

-- Whether a group takes applications is `groups.users_can_apply` (the group directory's
-- migration); the import carries pek-next's flag of the same name into it.

-- The id a group had in pek-next / korok, so old links (`/groups/{id}`,
-- `/korok/showgroup/id/{id}`) can redirect, and so a repeated import finds its rows. Its
-- korok kind (`grp_type`) is kept too: `purpose` folds sixteen kinds into eight.
ALTER TABLE groups
    ADD COLUMN legacy_id bigint CHECK (legacy_id IS NULL OR legacy_id > 0),
    ADD COLUMN legacy_kind text CHECK (length(legacy_kind) <= 50);
CREATE UNIQUE INDEX groups_legacy_id ON groups (realm_id, legacy_id) WHERE legacy_id IS NOT NULL;

-- A DO (KDO) entry award needs no justification: pek-next never asked for one and wipes
-- them when the application season ends. KB and ÁB still need one.
ALTER TABLE entry_award_requests DROP CONSTRAINT entry_award_requests_justification_check;
ALTER TABLE entry_award_requests ADD CONSTRAINT entry_award_requests_justification_check
    CHECK (length(justification) <= 5000
           AND (kind = 'KDO' OR length(btrim(justification)) >= 1));
-- The resort leaders' recommendations ({resort group id: KDO|KB|AB}) and whether the
-- award was finalised, as pek-next keeps them.
ALTER TABLE entry_award_requests
    ADD COLUMN recommendations jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(recommendations) = 'object'),
    ADD COLUMN finalized boolean NOT NULL DEFAULT false;

-- Which row of this realm came from which pek-next row, for rows that have no legacy
-- column of their own (one pek-next membership can become two memberships, an
-- evaluation a scoreboard and a guideline collection, …). A repeated import updates
-- these rows instead of adding new ones.
CREATE TABLE import_keys (
    realm_id  text NOT NULL REFERENCES realms (id),
    kind      text NOT NULL CHECK (length(kind) BETWEEN 1 AND 50),
    legacy_id text NOT NULL CHECK (length(legacy_id) BETWEEN 1 AND 500),
    id        uuid NOT NULL,
    PRIMARY KEY (realm_id, kind, legacy_id)
);
CREATE INDEX import_keys_id ON import_keys (realm_id, id);

-- One row per realm that was imported into: where from (the source without its
-- password), when, and the reconciliation of the last run.
CREATE TABLE imports (
    realm_id    text PRIMARY KEY REFERENCES realms (id),
    source      text NOT NULL CHECK (length(source) BETWEEN 1 AND 500),
    first_at    timestamptz NOT NULL DEFAULT now(),
    last_at     timestamptz NOT NULL DEFAULT now(),
    runs        integer NOT NULL DEFAULT 1 CHECK (runs >= 1),
    summary     jsonb NOT NULL DEFAULT '{}'
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['import_keys', 'imports'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY realm_isolation ON %I
                 USING (realm_id = current_setting(''pek.realm_id'', true))
                 WITH CHECK (realm_id = current_setting(''pek.realm_id'', true))', t);
    END LOOP;
END $$;
