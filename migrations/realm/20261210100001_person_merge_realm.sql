-- Merging two people (a hub administrator merges person B into person A; issue 25): the
-- realm's part. `pek_merge_person(realm, B, A)` moves everything of B in this realm to A
-- in the caller's transaction and returns what it moved. It is idempotent — a second run
-- finds nothing of B left and moves nothing — so the hub may call it again after a lost
-- answer, a restart or a realm that was down (see instance/src/person_merge.rs).
--
-- Where A and B both hold something that may exist once, one row stays:
-- - a live membership (APPLIED, INVITED, NEWBIE, ACTIVE) of both in the same group: A's
--   row stays, with the further-along status of the two (ACTIVE over NEWBIE over a
--   pending one), the union of their posts (at most 20) and the earlier start. B's point
--   requests, entry awards and cell comments on that membership move to A's row; where
--   A already has a request for the same scoreboard and guideline the larger of the two
--   stays (the same work asked twice for one person is not twice the work), and where A
--   already has an entry award on that scoreboard A's stays. B's row is then deleted.
--   FORMER and ARCHIVED memberships are history and simply become A's.
-- - a role (policy assignment) both hold: A's stays, accepted if either accepted it
--   (B and A are one person, so B's consent is A's), from the configuration if either
--   was.
-- - point history of both for the same semester and group: the larger figure stays.
-- Everything that names B as the actor (created, updated, submitted, evaluated, reviewed
-- by; comment authors; group owners; statements restricted to B) names A afterwards.
CREATE FUNCTION pek_merge_person(p_realm text, p_from uuid, p_into uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    m record;
    keep uuid;
    c bigint;
    moved_memberships bigint := 0;
    joined_memberships bigint := 0;
    moved_roles bigint := 0;
    moved_points bigint := 0;
    moved_other bigint := 0;
BEGIN
    IF p_from = p_into THEN
        RAISE EXCEPTION 'a person cannot be merged into themselves';
    END IF;
    -- One merge of B at a time in this realm: a retry racing a hub pass waits for it and
    -- then finds nothing left to move.
    PERFORM pg_advisory_xact_lock(hashtext('pek-merge:' || p_realm || ':' || p_from::text));

    FOR m IN SELECT * FROM memberships
              WHERE realm_id = p_realm AND user_id = p_from
                AND status IN ('APPLIED', 'INVITED', 'NEWBIE', 'ACTIVE')
              ORDER BY id FOR UPDATE LOOP
        keep := NULL;
        SELECT id INTO keep FROM memberships
         WHERE realm_id = p_realm AND user_id = p_into AND group_id = m.group_id
           AND status IN ('APPLIED', 'INVITED', 'NEWBIE', 'ACTIVE')
         FOR UPDATE;
        CONTINUE WHEN keep IS NULL;
        UPDATE memberships k SET
            status = CASE WHEN 'ACTIVE' IN (k.status, m.status) THEN 'ACTIVE'
                          WHEN 'NEWBIE' IN (k.status, m.status) THEN 'NEWBIE'
                          ELSE k.status END,
            posts = (ARRAY(SELECT DISTINCT p FROM unnest(k.posts || m.posts) AS p
                            ORDER BY p))[1:20],
            start_at = LEAST(k.start_at, m.start_at),
            updated_at = now()
         WHERE k.realm_id = p_realm AND k.id = keep;
        UPDATE point_requests k SET points = GREATEST(k.points, b.points), updated_at = now()
          FROM point_requests b
         WHERE k.realm_id = p_realm AND b.realm_id = p_realm
           AND k.membership_id = keep AND b.membership_id = m.id
           AND k.scoreboard_id = b.scoreboard_id AND k.guideline_id = b.guideline_id;
        DELETE FROM point_requests b
         WHERE b.realm_id = p_realm AND b.membership_id = m.id
           AND EXISTS (SELECT 1 FROM point_requests k
                        WHERE k.realm_id = p_realm AND k.membership_id = keep
                          AND k.scoreboard_id = b.scoreboard_id
                          AND k.guideline_id = b.guideline_id);
        UPDATE point_requests SET membership_id = keep
         WHERE realm_id = p_realm AND membership_id = m.id;
        GET DIAGNOSTICS c = ROW_COUNT;
        moved_points := moved_points + c;
        DELETE FROM entry_award_requests b
         WHERE b.realm_id = p_realm AND b.membership_id = m.id
           AND EXISTS (SELECT 1 FROM entry_award_requests k
                        WHERE k.realm_id = p_realm AND k.membership_id = keep
                          AND k.scoreboard_id = b.scoreboard_id);
        UPDATE entry_award_requests SET membership_id = keep
         WHERE realm_id = p_realm AND membership_id = m.id;
        GET DIAGNOSTICS c = ROW_COUNT;
        moved_points := moved_points + c;
        UPDATE point_request_comments SET membership_id = keep
         WHERE realm_id = p_realm AND membership_id = m.id;
        -- A repeated pek-next import finds A's row for the legacy membership.
        UPDATE import_keys SET id = keep WHERE realm_id = p_realm AND id = m.id;
        DELETE FROM memberships WHERE realm_id = p_realm AND id = m.id;
        joined_memberships := joined_memberships + 1;
    END LOOP;
    UPDATE memberships SET user_id = p_into, updated_at = now()
     WHERE realm_id = p_realm AND user_id = p_from;
    GET DIAGNOSTICS c = ROW_COUNT;
    moved_memberships := c;

    UPDATE policy_assignments k SET accepted_at = COALESCE(k.accepted_at, b.accepted_at),
                                    from_config = k.from_config OR b.from_config
      FROM policy_assignments b
     WHERE k.realm_id = p_realm AND b.realm_id = p_realm
       AND k.user_id = p_into AND b.user_id = p_from AND k.policy_id = b.policy_id;
    DELETE FROM policy_assignments b
     WHERE b.realm_id = p_realm AND b.user_id = p_from
       AND EXISTS (SELECT 1 FROM policy_assignments k
                    WHERE k.realm_id = p_realm AND k.user_id = p_into
                      AND k.policy_id = b.policy_id);
    GET DIAGNOSTICS c = ROW_COUNT;
    moved_roles := c;
    UPDATE policy_assignments SET user_id = p_into WHERE realm_id = p_realm AND user_id = p_from;
    GET DIAGNOSTICS c = ROW_COUNT;
    moved_roles := moved_roles + c;

    UPDATE point_history k SET points = GREATEST(k.points, b.points)
      FROM point_history b
     WHERE k.realm_id = p_realm AND b.realm_id = p_realm
       AND k.user_id = p_into AND b.user_id = p_from
       AND k.semester_id = b.semester_id AND k.group_id = b.group_id;
    DELETE FROM point_history b
     WHERE b.realm_id = p_realm AND b.user_id = p_from
       AND EXISTS (SELECT 1 FROM point_history k
                    WHERE k.realm_id = p_realm AND k.user_id = p_into
                      AND k.semester_id = b.semester_id AND k.group_id = b.group_id);
    GET DIAGNOSTICS c = ROW_COUNT;
    moved_points := moved_points + c;
    UPDATE point_history SET user_id = p_into WHERE realm_id = p_realm AND user_id = p_from;
    GET DIAGNOSTICS c = ROW_COUNT;
    moved_points := moved_points + c;

    -- Who did what: the same person, now A.
    UPDATE statements SET user_id = p_into WHERE realm_id = p_realm AND user_id = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE groups SET created_by = p_into WHERE realm_id = p_realm AND created_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE groups SET owner_id = p_into WHERE realm_id = p_realm AND owner_id = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE feature_flags SET updated_by = p_into WHERE realm_id = p_realm AND updated_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE policies SET created_by = p_into WHERE realm_id = p_realm AND created_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE policy_assignments SET assigned_by = p_into
     WHERE realm_id = p_realm AND assigned_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE evaluation_settings SET updated_by = p_into
     WHERE realm_id = p_realm AND updated_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE guideline_collections SET created_by = p_into
     WHERE realm_id = p_realm AND created_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE guidelines SET created_by = p_into WHERE realm_id = p_realm AND created_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE scoreboards SET created_by = p_into WHERE realm_id = p_realm AND created_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE scoreboards SET submitted_by = p_into
     WHERE realm_id = p_realm AND submitted_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE scoreboards SET evaluated_by = p_into
     WHERE realm_id = p_realm AND evaluated_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE scoreboard_comments SET author_id = p_into
     WHERE realm_id = p_realm AND author_id = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE point_requests SET updated_by = p_into WHERE realm_id = p_realm AND updated_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE entry_award_requests SET updated_by = p_into
     WHERE realm_id = p_realm AND updated_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE entry_award_requests SET reviewed_by = p_into
     WHERE realm_id = p_realm AND reviewed_by = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;
    UPDATE point_request_comments SET author_id = p_into
     WHERE realm_id = p_realm AND author_id = p_from;
    GET DIAGNOSTICS c = ROW_COUNT; moved_other := moved_other + c;

    RETURN jsonb_build_object(
        'memberships', moved_memberships,
        'membershipsJoined', joined_memberships,
        'roles', moved_roles,
        'points', moved_points,
        'other', moved_other);
END $$;
