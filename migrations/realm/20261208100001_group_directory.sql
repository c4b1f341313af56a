-- The group directory: every signed-in person may find a group unless the realm (its
-- feature flag `directory.unlisted`) or the group (`listed = false`) stays out of it; a
-- group may stop taking applications (`users_can_apply`).
--
-- Names are listed in Hungarian alphabetical order. ICU's `hu-HU-x-icu` collation gives
-- that order but no sort key, and a list merged from several realms (each with its own
-- database) needs one key that every realm and the hub order alike, byte by byte. So
-- the order is a key: `pek_hu_sort_key(name)`, compared with COLLATE "C" (and as Rust
-- strings). It is the Hungarian alphabet at the letter level: case and the length of a
-- vowel do not count (a = á, o = ó, ö = ő, u = ú, ü = ű), ö and ü come after o and u,
-- and the digraphs cs, dz, dzs, gy, ly, ny, sz, ty, zs are letters of their own after
-- c, d, g, l, n, s, t, z (a doubled one, "ssz", is two). It needs no ICU.
CREATE FUNCTION pek_hu_sort_key(s text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
        lower(translate(s, 'ÁÉÍÓÚÖŐÜŰáéíóúőű', 'AEIOUööüüaeiouöü')),
        'ö', 'o~'),
        'ü', 'u~'),
        'ddzs', 'd~~d~~'),
        'dzs', 'd~~'),
        'ddz', 'd~d~'),
        'ccs', 'c~c~'),
        'ggy', 'g~g~'),
        'lly', 'l~l~'),
        'nny', 'n~n~'),
        'ssz', 's~s~'),
        'tty', 't~t~'),
        'zzs', 'z~z~'),
        'cs', 'c~'),
        'dz', 'd~'),
        'gy', 'g~'),
        'ly', 'l~'),
        'ny', 'n~'),
        'sz', 's~'),
        'ty', 't~'),
        'zs', 'z~')
$$;

ALTER TABLE groups
    ADD COLUMN listed          boolean NOT NULL DEFAULT true,
    ADD COLUMN users_can_apply boolean NOT NULL DEFAULT true,
    ADD COLUMN sort_key        text GENERATED ALWAYS AS (pek_hu_sort_key(name)) STORED;
CREATE INDEX groups_directory ON groups (realm_id, sort_key COLLATE "C", id)
    WHERE listed AND NOT archived;
