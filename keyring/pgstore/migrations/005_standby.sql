-- A set's standby key (keyring.Key.Standby), and at most one Pending
-- standby per set: two replicas that both create one cannot both keep it;
-- the second gets keyring.ErrConflict.
ALTER TABLE tokenkms_keys ADD COLUMN standby boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX tokenkms_keys_one_standby ON tokenkms_keys (set_name) WHERE state = 1 AND standby;
