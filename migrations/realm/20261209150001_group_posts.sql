-- A group's own post names (pek-next's `poszttipus`): the posts its members may hold.
-- The leader's post is built in — every group has it, the policies know it by its key
-- `leader` and the pages name it in their own language — so it has no row here and no
-- group may name a post of its own `leader`. Memberships keep the names they hold
-- (`memberships.posts`); a rename renames them there too (see instance/src/post.rs).
CREATE TABLE group_posts (
    realm_id   text NOT NULL REFERENCES realms (id),
    group_id   uuid NOT NULL,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 50 AND name = btrim(name)
                                    AND name <> 'leader'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, group_id, name),
    FOREIGN KEY (realm_id, group_id) REFERENCES groups (realm_id, id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['group_posts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY realm_isolation ON %I
                 USING (realm_id = current_setting(''pek.realm_id'', true))
                 WITH CHECK (realm_id = current_setting(''pek.realm_id'', true))', t);
    END LOOP;
END $$;
