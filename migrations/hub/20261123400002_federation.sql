-- Membership reports from workers (DESIGN §5): the newest outbox sequence number applied
-- per (realm, user), so a report delivered twice, or an older one arriving late, does not
-- undo a newer state.
CREATE TABLE federation_applied (
    realm_id text   NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    user_id  uuid   NOT NULL,
    seq      bigint NOT NULL,
    PRIMARY KEY (realm_id, user_id)
);

-- Hub replicas drop cached realm lists and registry snapshots when these change.
CREATE FUNCTION pek_notify_realm_members() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pek_realm_members',
                      (CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER realm_members_notify
    AFTER INSERT OR DELETE ON realm_members
    FOR EACH ROW EXECUTE FUNCTION pek_notify_realm_members();

CREATE FUNCTION pek_notify_realms() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pek_realms', '');
    RETURN NULL;
END $$;
CREATE TRIGGER realms_notify
    AFTER INSERT OR UPDATE OF endpoint, status OR DELETE ON realms
    FOR EACH STATEMENT EXECUTE FUNCTION pek_notify_realms();
