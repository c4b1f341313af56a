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
