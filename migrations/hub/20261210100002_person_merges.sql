-- Merging two people (issue 25): a hub administrator merges person B into person A.
--
-- B's row stays as history, marked `merged_into` A: B's profile is kept (not deleted),
-- old links to B still resolve, and every identity of B signs in to A (identity lookups
-- follow `merged_into`; the identities themselves move to A where they can).
ALTER TABLE users
    ADD COLUMN merged_into uuid REFERENCES users (id),
    ADD COLUMN merged_at   timestamptz,
    ADD CONSTRAINT users_merged_not_self CHECK (merged_into IS DISTINCT FROM id),
    ADD CONSTRAINT users_merged_at CHECK ((merged_into IS NULL) = (merged_at IS NULL));
CREATE INDEX users_merged_into ON users (merged_into) WHERE merged_into IS NOT NULL;

-- One row per merge (a person is merged away at most once): who, when, into whom, and
-- when every realm had moved B's rows to A. The realms' progress is kept per realm, so a
-- realm that was down is finished by a retry or a later hub pass without redoing the
-- others.
CREATE TABLE person_merges (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source       uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    target       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor        uuid REFERENCES users (id) ON DELETE SET NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CHECK (source <> target)
);
CREATE INDEX person_merges_target ON person_merges (target);
CREATE INDEX person_merges_open ON person_merges (started_at) WHERE completed_at IS NULL;

CREATE TABLE person_merge_realms (
    merge_id   uuid NOT NULL REFERENCES person_merges (id) ON DELETE CASCADE,
    -- No foreign key: a realm deregistered while its part was pending stays in the record.
    realm_id   text NOT NULL,
    done_at    timestamptz,
    attempts   integer NOT NULL DEFAULT 0,
    last_error text,
    -- What the realm moved (pek_merge_person's answer).
    moved      jsonb,
    PRIMARY KEY (merge_id, realm_id)
);
