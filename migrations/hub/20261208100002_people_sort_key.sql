-- People are listed in Hungarian alphabetical order of their names as Hungarians write
-- them (family name first): the same key as groups (`pek_hu_sort_key`, from the realm
-- schema, which the hub has too), compared with COLLATE "C".
ALTER TABLE profiles
    ADD COLUMN sort_key text GENERATED ALWAYS AS (
        pek_hu_sort_key(coalesce(last_name, '') || ' ' || coalesce(first_name, '')
                        || ' ' || coalesce(nickname, ''))
    ) STORED;
