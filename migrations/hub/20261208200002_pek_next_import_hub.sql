-- Identity and contact data the PéK in production (pek-next) keeps and services ask for:
-- e-mail, Neptun code and BME id are full-profile fields; the directory can find a person
-- by Neptun code. `hidden_fields` is the person's own choice of full-profile fields not
-- shown to others (pek-next's `privacies`); a field not listed is shown to whoever may see
-- the full profile.
ALTER TABLE profiles
    ADD COLUMN email text CHECK (email IS NULL OR (length(email) BETWEEN 3 AND 254
                                                   AND email LIKE '%_@_%')),
    ADD COLUMN neptun text CHECK (neptun IS NULL OR neptun ~ '^[A-Z0-9]{6}$'),
    ADD COLUMN bme_id text CHECK (bme_id IS NULL OR length(btrim(bme_id)) BETWEEN 1 AND 50),
    ADD COLUMN hidden_fields text[] NOT NULL DEFAULT '{}'
        CHECK (hidden_fields <@ ARRAY['email', 'neptun', 'bmeId', 'cellPhone', 'room',
                                      'dormitory', 'externalAccounts']::text[]);
CREATE UNIQUE INDEX profiles_neptun ON profiles (neptun) WHERE neptun IS NOT NULL;

-- The id a person had in pek-next / korok: old profile links redirect by it, AuthSCH knew
-- people by it (schacPersonalUniqueId), and a repeated import finds the person again.
ALTER TABLE users ADD COLUMN legacy_id bigint UNIQUE CHECK (legacy_id IS NULL OR legacy_id > 0);

-- `pek import pek-next` writes tens of thousands of memberships in one transaction: per
-- row, the federation table would be recomputed tens of thousands of times. The import
-- sets `pek.bulk_import` for its own transaction only and brings the federation table in
-- step once at its end, with the same rule (pek_person_of_realm, pek_pending_in_realm).
CREATE OR REPLACE FUNCTION pek_realm_member_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('pek.bulk_import', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pek_sync_realm_member(OLD.user_id, OLD.realm_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pek_sync_realm_member(NEW.user_id, NEW.realm_id);
    END IF;
    RETURN NULL;
END $$;
