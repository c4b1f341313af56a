-- A membership holds only posts its group has: the built-in leader post or one of the
-- group's own names (`group_posts`). The rule lives here, where every path that writes
-- a membership passes — the API, the pek-next import, a person merge — rather than in
-- each of them.
--
-- Names already held stay valid: every name members hold today becomes one of their
-- group's names (those a post name cannot be — longer than 50 characters or with
-- surrounding spaces, which only an old import could have written — are kept where they
-- are held, and may be held by other members of that group, but are never listed).

-- FORCE'd row-level security hides rows from the owner too while no realm is set, so
-- the data migration below lifts it for this transaction and restores it at the end.
ALTER TABLE memberships NO FORCE ROW LEVEL SECURITY;
ALTER TABLE group_posts NO FORCE ROW LEVEL SECURITY;

INSERT INTO group_posts (realm_id, group_id, name)
SELECT DISTINCT m.realm_id, m.group_id, p
  FROM memberships m, unnest(m.posts) AS p
 WHERE p <> 'leader' AND length(p) BETWEEN 1 AND 50 AND p = btrim(p)
ON CONFLICT DO NOTHING;

ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
ALTER TABLE group_posts FORCE ROW LEVEL SECURITY;

CREATE FUNCTION pek_membership_posts_of_group() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p text;
BEGIN
    FOREACH p IN ARRAY coalesce(NEW.posts, '{}') LOOP
        CONTINUE WHEN p = 'leader';
        CONTINUE WHEN TG_OP = 'UPDATE' AND OLD.group_id = NEW.group_id AND p = ANY (OLD.posts);
        CONTINUE WHEN EXISTS (SELECT 1 FROM group_posts g
                               WHERE g.realm_id = NEW.realm_id AND g.group_id = NEW.group_id
                                 AND g.name = p);
        -- A name from before the rule that no post name can be (see above).
        CONTINUE WHEN EXISTS (SELECT 1 FROM memberships m
                               WHERE m.realm_id = NEW.realm_id AND m.group_id = NEW.group_id
                                 AND m.id <> NEW.id AND p = ANY (m.posts));
        RAISE EXCEPTION 'the group has no post named %', p
            USING ERRCODE = 'check_violation', CONSTRAINT = 'memberships_posts_of_group';
    END LOOP;
    RETURN NEW;
END $$;

CREATE TRIGGER memberships_posts_of_group
    BEFORE INSERT OR UPDATE OF posts, group_id ON memberships
    FOR EACH ROW EXECUTE FUNCTION pek_membership_posts_of_group();
