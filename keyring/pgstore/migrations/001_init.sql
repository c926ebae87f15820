CREATE TABLE tokenkms_keys (
	kid            text PRIMARY KEY,
	set_name       text NOT NULL,
	purpose        integer NOT NULL,
	alg            text NOT NULL,
	state          integer NOT NULL,
	owner          text NOT NULL,
	created_by     text NOT NULL,
	created_at     timestamptz NOT NULL,
	rotate_by      timestamptz,
	approved_by    text NOT NULL,
	approved_at    timestamptz,
	activate_at    timestamptz,
	activated_at   timestamptz,
	retiring_at    timestamptz,
	grace_until    timestamptz,
	retired_at     timestamptz,
	compromised_at timestamptz,
	destroyed_at   timestamptz,
	incident       text NOT NULL,
	backend        text NOT NULL,
	backend_ref    text NOT NULL,
	public_der     bytea,
	version        bigint NOT NULL CHECK (version >= 1)
);

-- At most one Active (state 2) key per set, whatever the replicas think.
CREATE UNIQUE INDEX tokenkms_keys_one_active ON tokenkms_keys (set_name) WHERE state = 2;

CREATE TABLE tokenkms_revoked_jti (
	jti   text PRIMARY KEY,
	until timestamptz NOT NULL
);
CREATE INDEX tokenkms_revoked_jti_until ON tokenkms_revoked_jti (until);

CREATE TABLE tokenkms_revoked_kid (
	kid           text PRIMARY KEY,
	issued_before timestamptz NOT NULL
);

-- Every committed change to keys or revocations notifies the replicas
-- listening on this schema's channel.
CREATE FUNCTION tokenkms_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('tokenkms_changes:' || TG_TABLE_SCHEMA, TG_TABLE_NAME);
	RETURN NULL;
END
$$;

CREATE TRIGGER tokenkms_keys_notify AFTER INSERT OR UPDATE OR DELETE ON tokenkms_keys
	FOR EACH STATEMENT EXECUTE FUNCTION tokenkms_notify();
CREATE TRIGGER tokenkms_revoked_jti_notify AFTER INSERT OR UPDATE ON tokenkms_revoked_jti
	FOR EACH STATEMENT EXECUTE FUNCTION tokenkms_notify();
CREATE TRIGGER tokenkms_revoked_kid_notify AFTER INSERT OR UPDATE OR DELETE ON tokenkms_revoked_kid
	FOR EACH STATEMENT EXECUTE FUNCTION tokenkms_notify();
