-- Logins in progress (OAuth2 authorization code + PKCE). Kept in the hub database so any
-- hub replica can finish a login another one started. A row is deleted when its callback
-- arrives (single use) and is only valid until expires_at.
CREATE TABLE login_states (
    -- SHA-256 of the `state` parameter (the state itself is never stored)
    state_hash    text PRIMARY KEY,
    pkce_verifier text NOT NULL,
    nonce         text,
    return_to     text NOT NULL DEFAULT '/' CHECK (length(return_to) <= 1000),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX login_states_expires ON login_states (expires_at);
