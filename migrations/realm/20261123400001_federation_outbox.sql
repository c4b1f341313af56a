-- Transactional outbox of a worker's membership changes (DESIGN §5). Whenever a change
-- to memberships or policy assignments changes whether a user is "in" the realm, the
-- same transaction records the new state here; a delivery loop sends the rows to the
-- hub in order and deletes them once the hub has acknowledged them. Rows carry the new
-- state, not a delta, so delivering one twice is harmless.
CREATE TABLE federation_outbox (
    realm_id    text NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    user_id     uuid NOT NULL,
    member      boolean NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, seq)
);

ALTER TABLE federation_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE federation_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY realm_isolation ON federation_outbox
    USING (realm_id = current_setting('pek.realm_id', true))
    WITH CHECK (realm_id = current_setting('pek.realm_id', true));

CREATE FUNCTION pek_outbox_member(p_user uuid, p_realm text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    is_member boolean;
BEGIN
    is_member := EXISTS (SELECT 1 FROM memberships
                          WHERE realm_id = p_realm AND user_id = p_user AND status <> 'ARCHIVED')
              OR EXISTS (SELECT 1 FROM policy_assignments
                          WHERE realm_id = p_realm AND user_id = p_user);
    INSERT INTO federation_outbox (realm_id, user_id, member) VALUES (p_realm, p_user, is_member);
END $$;

CREATE FUNCTION pek_outbox_trigger() RETURNS trigger
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

CREATE TRIGGER memberships_outbox
    AFTER INSERT OR UPDATE OF status, user_id OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION pek_outbox_trigger();
CREATE TRIGGER policy_assignments_outbox
    AFTER INSERT OR DELETE ON policy_assignments
    FOR EACH ROW EXECUTE FUNCTION pek_outbox_trigger();
