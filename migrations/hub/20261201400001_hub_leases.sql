-- Leases that make one hub replica at a time do a job (the worker health checks): the
-- holder renews its lease on every round; when it stops (it crashed, or lost the
-- database), another replica takes the lease over once it has expired. Times are the
-- database's own clock, so replicas' clocks do not matter.
CREATE TABLE hub_leases (
    name       text PRIMARY KEY,
    holder     uuid NOT NULL,
    expires_at timestamptz NOT NULL
);
