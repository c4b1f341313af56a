-- Memberships need the person's consent. A membership starts pending: APPLIED (the person
-- asked to join) or INVITED (someone with editMembers asked the person). Only consented
-- memberships (NEWBIE, ACTIVE, FORMER, ARCHIVED) count for permissions, profile
-- visibility, the federation table and points. Rows from before this change stay as they
-- are (they cannot be asked about retroactively).
ALTER TABLE memberships DROP CONSTRAINT memberships_status_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_status_check
    CHECK (status IN ('APPLIED', 'INVITED', 'NEWBIE', 'ACTIVE', 'FORMER', 'ARCHIVED'));

-- One live (pending or current) membership per person and group; FORMER and ARCHIVED
-- ones are history. Coming back after leaving is a new application or invitation — new
-- consent — and so a new membership, next to the old one.
ALTER TABLE memberships DROP CONSTRAINT memberships_realm_id_user_id_group_id_key;
CREATE UNIQUE INDEX memberships_one_live ON memberships (realm_id, user_id, group_id)
    WHERE status IN ('APPLIED', 'INVITED', 'NEWBIE', 'ACTIVE');
CREATE INDEX memberships_user ON memberships (realm_id, user_id);

-- Realm administrators named in configuration (PEK_REALM_ADMINS / the Realm's
-- spec.admins) hold the GOD policy through grants marked here, so taking someone off the
-- list revokes exactly the grant the configuration made, never one a GOD gave by hand.
ALTER TABLE policy_assignments ADD COLUMN from_config boolean NOT NULL DEFAULT false;

-- A worker's outbox: a user is in the realm while they hold a consented membership that
-- is not archived, or a policy. Pending memberships are not reported at all: an
-- invitation says nothing about the invitee until they accept it.
CREATE OR REPLACE FUNCTION pek_outbox_member(p_user uuid, p_realm text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    is_member boolean;
BEGIN
    is_member := EXISTS (SELECT 1 FROM memberships
                          WHERE realm_id = p_realm AND user_id = p_user
                            AND status IN ('NEWBIE', 'ACTIVE', 'FORMER'))
              OR EXISTS (SELECT 1 FROM policy_assignments
                          WHERE realm_id = p_realm AND user_id = p_user);
    INSERT INTO federation_outbox (realm_id, user_id, member) VALUES (p_realm, p_user, is_member);
END $$;

CREATE OR REPLACE FUNCTION pek_outbox_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_counts boolean := false;
    new_counts boolean := false;
BEGIN
    -- The hub keeps its own federation table in step directly (hub migration), so only
    -- a worker's database — one without that table — writes to the outbox.
    IF to_regclass('realm_members') IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'memberships' THEN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            old_counts := OLD.status NOT IN ('APPLIED', 'INVITED');
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            new_counts := NEW.status NOT IN ('APPLIED', 'INVITED');
        END IF;
    ELSE
        old_counts := TG_OP IN ('UPDATE', 'DELETE');
        new_counts := TG_OP IN ('INSERT', 'UPDATE');
    END IF;
    IF old_counts THEN
        PERFORM pek_outbox_member(OLD.user_id, OLD.realm_id);
    END IF;
    IF new_counts AND (NOT old_counts OR NEW.user_id IS DISTINCT FROM OLD.user_id) THEN
        PERFORM pek_outbox_member(NEW.user_id, NEW.realm_id);
    END IF;
    RETURN NULL;
END $$;
