-- Server-side sessions: a login token names its session (claim `sid`), and the hub
-- accepts the token only while the session is not revoked, so signing out (or a hub
-- administrator) ends a session before its token expires.
CREATE TABLE sessions (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    -- Who ended it: the person (sign-out) or a hub administrator.
    revoked_by uuid REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
