-- The realm data tests/tests/e2e.rs seeds before a confirmed delete and expects back after a
-- restore from the dump (realm id 'rx' is replaced by the test's).
INSERT INTO realms (id, display_name) VALUES ('rx', 'Restore realm');
INSERT INTO groups (realm_id, id, parent_id, name, name_folded, created_by, owner_id) VALUES
  ('rx', '00000000-0000-0000-0000-0000000000a1', NULL, 'Kör', 'kor', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
  ('rx', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000a1', 'Projekt', 'projekt', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001');
INSERT INTO memberships (realm_id, group_id, user_id, status) VALUES
  ('rx', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001', 'ACTIVE'),
  ('rx', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-000000000001', 'ACTIVE'),
  ('rx', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-000000000002', 'NEWBIE');
INSERT INTO semesters (realm_id, id, name, starts_on, ends_on, is_current) VALUES
  ('rx', '00000000-0000-0000-0000-0000000000b1', '2026/27/1', '2026-09-01', '2027-01-31', true);
INSERT INTO scoreboards (realm_id, id, group_id, semester_id, status, created_by, submitted_by, submitted_at, evaluated_by, evaluated_at) VALUES
  ('rx', '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000b1', 'ACCEPTED',
   '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', now(), '00000000-0000-0000-0000-000000000001', now());
INSERT INTO point_history (realm_id, semester_id, user_id, group_id, scoreboard_id, points) VALUES
  ('rx', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000c1', 30),
  ('rx', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000c1', 12);
