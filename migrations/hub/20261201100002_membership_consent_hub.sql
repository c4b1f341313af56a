-- The hub's own federation table follows the same rule as a worker's outbox: a user is in
-- a realm while they hold a consented membership that is not archived (NEWBIE, ACTIVE,
-- FORMER), or a policy there. Pending applications and invitations do not count.
CREATE OR REPLACE FUNCTION pek_sync_realm_member(p_user uuid, p_realm text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM memberships
                WHERE realm_id = p_realm AND user_id = p_user
                  AND status IN ('NEWBIE', 'ACTIVE', 'FORMER'))
       OR EXISTS (SELECT 1 FROM policy_assignments
                   WHERE realm_id = p_realm AND user_id = p_user) THEN
        INSERT INTO realm_members (user_id, realm_id) VALUES (p_user, p_realm)
        ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM realm_members WHERE user_id = p_user AND realm_id = p_realm;
    END IF;
END $$;
