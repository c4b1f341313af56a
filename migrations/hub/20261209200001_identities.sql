-- Identity brokering: a person has one or more identities `(issuer, subject)`.
--
-- The AuthSCH identity stays where it always was, `users.auth_sch_id` (issuer `authsch`;
-- its UNIQUE is the uniqueness of that issuer's subjects): the pek-next import's set-based
-- SQL, the placeholder claims and every naming by bare AuthSCH id read and write it, and
-- keeping it means every existing person keeps their identity without a data move. It
-- becomes optional: a person who arrived through another provider has none. Identities
-- from every other provider live in `user_identities`; the view `identities` is the one
-- list of both.
ALTER TABLE users ALTER COLUMN auth_sch_id DROP NOT NULL;

CREATE TABLE user_identities (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The provider's issuer (its OIDC issuer URL); `authsch` is users.auth_sch_id's.
    issuer     text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 500 AND issuer <> 'authsch'),
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    -- The configured provider it was linked through (for display; the key is the issuer).
    provider   text NOT NULL CHECK (length(provider) BETWEEN 1 AND 64),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login timestamptz,
    UNIQUE (issuer, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);

CREATE VIEW identities AS
    SELECT u.id AS user_id, 'authsch'::text AS issuer, u.auth_sch_id AS subject,
           'authsch'::text AS provider, u.created_at, u.last_login
      FROM users u WHERE u.auth_sch_id IS NOT NULL
    UNION ALL
    SELECT i.user_id, i.issuer, i.subject, i.provider, i.created_at, i.last_login
      FROM user_identities i;

-- Every link and unlink (and, later, merge): who did it, when, which identity. Shown to
-- the person on their own page.
CREATE TABLE identity_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    uuid REFERENCES users (id) ON DELETE SET NULL,
    action   text NOT NULL CHECK (action IN ('link', 'unlink', 'merge')),
    issuer   text NOT NULL,
    subject  text NOT NULL,
    provider text NOT NULL
);
CREATE INDEX identity_events_user ON identity_events (user_id, at);

-- The provider a session signed in with: realms that accept only some providers get a
-- realm token only for sessions of those.
ALTER TABLE sessions ADD COLUMN provider text;

-- A login in progress names its provider; a link in progress also the session and the
-- person that started it (the callback must come back to that same session).
ALTER TABLE login_states
    ADD COLUMN provider     text,
    ADD COLUMN link_user    uuid REFERENCES users (id) ON DELETE CASCADE,
    ADD COLUMN link_session uuid;

-- Which sign-in providers a worker realm accepts; NULL: every global provider.
ALTER TABLE realms ADD COLUMN providers text[];
