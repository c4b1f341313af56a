-- "A person of the realm" — whoever the realm may see and act on — is one rule, written
-- here once and used by every visibility and permission check, by the hub's federation
-- table and by a worker's outbox: consented presence only. That is a consented membership
-- that is not archived (NEWBIE, ACTIVE, FORMER: the person applied or accepted), or a
-- role (policy assignment) the person accepted — a configured administrator's grant is
-- accepted by the platform. A policy assignment to someone outside the realm is an offer:
-- until the person accepts it, it grants nothing and exposes nothing.
ALTER TABLE policy_assignments ADD COLUMN accepted_at timestamptz;

-- Bringing an archived membership back (ARCHIVED → FORMER) is an invitation too: the
-- person accepts or declines it; until then the membership stays archived.
ALTER TABLE memberships ADD COLUMN reopen_offered_at timestamptz;
ALTER TABLE memberships ADD CONSTRAINT memberships_reopen_only_archived
    CHECK (reopen_offered_at IS NULL OR status = 'ARCHIVED');

CREATE FUNCTION pek_person_of_realm(p_user uuid, p_realm text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM memberships
                    WHERE realm_id = p_realm AND user_id = p_user
                      AND status IN ('NEWBIE', 'ACTIVE', 'FORMER'))
        OR EXISTS (SELECT 1 FROM policy_assignments
                    WHERE realm_id = p_realm AND user_id = p_user AND accepted_at IS NOT NULL)
$$;

-- Something waits for the person's own decision in the realm: an invitation, an offer to
-- bring back an archived membership, a role offer — or their own open application. The
-- hub lists these realms for the person only (their home page), nobody else.
CREATE FUNCTION pek_pending_in_realm(p_user uuid, p_realm text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM memberships
                    WHERE realm_id = p_realm AND user_id = p_user
                      AND (status IN ('APPLIED', 'INVITED') OR reopen_offered_at IS NOT NULL))
        OR EXISTS (SELECT 1 FROM policy_assignments
                    WHERE realm_id = p_realm AND user_id = p_user AND accepted_at IS NULL)
$$;

-- A worker reports both facts of a person to the hub after every change.
ALTER TABLE federation_outbox ADD COLUMN pending boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION pek_outbox_member(p_user uuid, p_realm text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO federation_outbox (realm_id, user_id, member, pending)
    VALUES (p_realm, p_user, pek_person_of_realm(p_user, p_realm),
            pek_pending_in_realm(p_user, p_realm));
END $$;

CREATE OR REPLACE FUNCTION pek_outbox_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The hub keeps its own federation table in step directly (hub migration), so only
    -- a worker's database — one without that table — writes to the outbox.
    IF to_regclass('realm_members') IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pek_outbox_member(OLD.user_id, OLD.realm_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.user_id IS DISTINCT FROM OLD.user_id) THEN
        PERFORM pek_outbox_member(NEW.user_id, NEW.realm_id);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER memberships_outbox ON memberships;
CREATE TRIGGER memberships_outbox
    AFTER INSERT OR UPDATE OF status, user_id, reopen_offered_at OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION pek_outbox_trigger();
DROP TRIGGER policy_assignments_outbox ON policy_assignments;
CREATE TRIGGER policy_assignments_outbox
    AFTER INSERT OR UPDATE OF accepted_at, user_id OR DELETE ON policy_assignments
    FOR EACH ROW EXECUTE FUNCTION pek_outbox_trigger();

-- Existing grants: a configured administrator's, and those of people the realm already
-- had through a consented membership, stand as accepted; any other was never agreed to
-- and becomes an offer. Row-level security applies to this migration too, so each realm
-- is visited with its own setting.
DO $$
DECLARE
    r record;
    u uuid;
BEGIN
    FOR r IN SELECT id FROM realms LOOP
        PERFORM set_config('pek.realm_id', r.id, true);
        UPDATE policy_assignments a SET accepted_at = a.assigned_at
         WHERE a.realm_id = r.id
           AND (a.from_config
                OR EXISTS (SELECT 1 FROM memberships m
                            WHERE m.realm_id = a.realm_id AND m.user_id = a.user_id
                              AND m.status IN ('NEWBIE', 'ACTIVE', 'FORMER')));
        IF to_regclass('realm_members') IS NULL THEN
            FOR u IN SELECT DISTINCT user_id FROM policy_assignments
                      WHERE realm_id = r.id AND accepted_at IS NULL LOOP
                PERFORM pek_outbox_member(u, r.id);
            END LOOP;
        END IF;
        -- No realm role writes a person's global profile: the permission is gone.
        UPDATE statements SET permissions = array_remove(permissions, 'editProfile')
         WHERE realm_id = r.id AND 'editProfile' = ANY (permissions);
        DELETE FROM statements WHERE realm_id = r.id AND cardinality(permissions) = 0;
    END LOOP;
    PERFORM set_config('pek.realm_id', '', true);
END $$;
