-- The hub's federation table follows the one rule of "a person of the realm"
-- (pek_person_of_realm, realm migration), for the realms in its own database as a worker's
-- outbox does for the others. Beside it, realm_pending: realms where something waits for
-- the person's own decision (an invitation, a role offer, an offer to bring back an
-- archived membership, their own application), so the person's home page can list them
-- although the person is not (yet) in that realm. Only the person is shown these.
CREATE TABLE realm_pending (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    realm_id text NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    since    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, realm_id)
);

CREATE OR REPLACE FUNCTION pek_sync_realm_member(p_user uuid, p_realm text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF pek_person_of_realm(p_user, p_realm) THEN
        INSERT INTO realm_members (user_id, realm_id) VALUES (p_user, p_realm)
        ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM realm_members WHERE user_id = p_user AND realm_id = p_realm;
    END IF;
    IF pek_pending_in_realm(p_user, p_realm) THEN
        INSERT INTO realm_pending (user_id, realm_id) VALUES (p_user, p_realm)
        ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM realm_pending WHERE user_id = p_user AND realm_id = p_realm;
    END IF;
END $$;

DROP TRIGGER memberships_realm_members ON memberships;
CREATE TRIGGER memberships_realm_members
    AFTER INSERT OR UPDATE OF status, user_id, reopen_offered_at OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION pek_realm_member_trigger();
DROP TRIGGER policy_assignments_realm_members ON policy_assignments;
CREATE TRIGGER policy_assignments_realm_members
    AFTER INSERT OR UPDATE OF accepted_at, user_id OR DELETE ON policy_assignments
    FOR EACH ROW EXECUTE FUNCTION pek_realm_member_trigger();

-- Hub replicas drop cached pending lists with the realm lists.
CREATE TRIGGER realm_pending_notify
    AFTER INSERT OR DELETE ON realm_pending
    FOR EACH ROW EXECUTE FUNCTION pek_notify_realm_members();

-- Recompute both tables for the realms in this database: grants that became offers no
-- longer put their holder in the realm (row-level security: one realm at a time).
DO $$
DECLARE
    r record;
    p record;
BEGIN
    FOR r IN SELECT id FROM realms WHERE endpoint IS NULL LOOP
        PERFORM set_config('pek.realm_id', r.id, true);
        FOR p IN SELECT user_id FROM realm_members WHERE realm_id = r.id
                 UNION SELECT user_id FROM policy_assignments WHERE realm_id = r.id
                 UNION SELECT user_id FROM memberships WHERE realm_id = r.id LOOP
            IF EXISTS (SELECT 1 FROM users WHERE id = p.user_id) THEN
                PERFORM pek_sync_realm_member(p.user_id, r.id);
            END IF;
        END LOOP;
    END LOOP;
    PERFORM set_config('pek.realm_id', '', true);
END $$;

-- A person's global profile is written by the person, and otherwise only by a hub
-- administrator: each such write is recorded here (who, when, which fields — no values,
-- so the audit holds no personal data beyond the fact of the change).
CREATE TABLE profile_audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    changed_by uuid NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    fields     text[] NOT NULL
);
CREATE INDEX profile_audit_user ON profile_audit (user_id, changed_at);
