-- At most one scheduled successor (a Pending key with an activation time)
-- per set: two replicas that start the same rotation cannot both publish a
-- successor; the second gets keyring.ErrConflict.
CREATE UNIQUE INDEX tokenkms_keys_one_successor ON tokenkms_keys (set_name) WHERE state = 1 AND activate_at IS NOT NULL;
