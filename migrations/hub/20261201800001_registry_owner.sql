-- The owner of a worker realm's registration: the Kubernetes UID of the Realm object whose
-- operator registered it. A registration or deregistration of that realm id carrying another
-- owner is refused, so a second Realm with the same realmId (in a namespace another operator
-- watches, or on another cluster sharing this hub) can neither overwrite nor remove the
-- owner's entry. NULL: registered without an owner (by hand, `pek local`, or before owners
-- were recorded); the next registration that names an owner records it.
ALTER TABLE realms ADD COLUMN owner_uid text
    CHECK (owner_uid IS NULL OR length(owner_uid) BETWEEN 1 AND 100);
