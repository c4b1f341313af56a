-- Hub schema: global identity, no realm_id (DESIGN §3). Only the hub runs it.

CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    auth_sch_id text NOT NULL UNIQUE CHECK (length(auth_sch_id) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_login  timestamptz
);

CREATE TABLE usernames (
    username   text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,39}$'),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usernames_user ON usernames (user_id);

CREATE TYPE dormitory AS ENUM ('KARMAN', 'TETENY', 'SCH', 'BAROSS', 'BERCSENYI',
                               'VASARHELYI', 'EXTERNAL', 'UNKNOWN');
CREATE TYPE gender AS ENUM ('MALE', 'FEMALE', 'OTHER', 'UNKNOWN');
CREATE TYPE student_status AS ENUM ('ACTIVE', 'GRADUATED', 'OTHER', 'UNKNOWN');
-- Stored values as in the original PéK schema (seed 003).
CREATE TYPE external_account_protocol AS ENUM ('twitter', 'skype', 'call_sign', 'irc',
    'gtalk', 'jabber', 'facebook', 'Telegram', 'sch_mail', 'Hímzek', 'gmail', '🏆');

CREATE TABLE profiles (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    first_name     text CHECK (length(first_name) <= 100),
    last_name      text CHECK (length(last_name) <= 100),
    nickname       text CHECK (length(nickname) <= 100),
    cell_phone     text CHECK (length(cell_phone) <= 50),
    room           text CHECK (length(room) <= 50),
    dormitory      dormitory NOT NULL DEFAULT 'UNKNOWN',
    gender         gender NOT NULL DEFAULT 'UNKNOWN',
    student_status student_status NOT NULL DEFAULT 'UNKNOWN',
    -- lower-cased, accent-free "first last nickname", maintained by the service
    search_folded  text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE external_account_links (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id     uuid NOT NULL REFERENCES profiles (user_id) ON DELETE CASCADE,
    protocol     external_account_protocol NOT NULL,
    account_name text NOT NULL CHECK (length(btrim(account_name)) BETWEEN 1 AND 200),
    UNIQUE (owner_id, protocol, account_name)
);

-- Registry columns: a realm with an endpoint is served by a worker, one without is local.
ALTER TABLE realms
    ADD COLUMN endpoint      text,
    ADD COLUMN version       text,
    ADD COLUMN status        text NOT NULL DEFAULT 'active'
                             CHECK (status IN ('active', 'maintenance', 'down')),
    ADD COLUMN registered_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_seen_at  timestamptz;

-- Federation table: which user is in which realm.
CREATE TABLE realm_members (
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    realm_id       text NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    joined_at      timestamptz NOT NULL DEFAULT now(),
    last_access_at timestamptz,
    PRIMARY KEY (user_id, realm_id)
);
CREATE INDEX realm_members_realm ON realm_members (realm_id);

-- For realms stored in the hub's own database the federation table follows memberships
-- and policy assignments in the same transaction: a user is in a realm while they hold a
-- membership that is not archived, or a policy there.
CREATE FUNCTION pek_sync_realm_member(p_user uuid, p_realm text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM memberships
                WHERE realm_id = p_realm AND user_id = p_user AND status <> 'ARCHIVED')
       OR EXISTS (SELECT 1 FROM policy_assignments
                   WHERE realm_id = p_realm AND user_id = p_user) THEN
        INSERT INTO realm_members (user_id, realm_id) VALUES (p_user, p_realm)
        ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM realm_members WHERE user_id = p_user AND realm_id = p_realm;
    END IF;
END $$;

CREATE FUNCTION pek_realm_member_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pek_sync_realm_member(OLD.user_id, OLD.realm_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pek_sync_realm_member(NEW.user_id, NEW.realm_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER memberships_realm_members
    AFTER INSERT OR UPDATE OF status, user_id OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION pek_realm_member_trigger();
CREATE TRIGGER policy_assignments_realm_members
    AFTER INSERT OR DELETE ON policy_assignments
    FOR EACH ROW EXECUTE FUNCTION pek_realm_member_trigger();
