-- The audit chain: one row per event, hash-chained like audit.ChainLog
-- (seq from 1, prev = the previous row's hash or audit.Genesis, hash =
-- audit.RecordHash(seq, prev, event)). event is the canonical JSON of the
-- audit.Event, kept as text so that its bytes are exactly what was hashed.
CREATE TABLE tokenkms_audit (
	seq         bigint PRIMARY KEY CHECK (seq >= 1),
	prev        text NOT NULL,
	event       text NOT NULL,
	hash        text NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The tip of the chain, one row. Every Emit locks it (SELECT ... FOR
-- UPDATE), so concurrent replicas append one after the other to a single
-- chain; VerifyAudit checks that the chain ends where the tip says, which
-- detects rows deleted from the end.
CREATE TABLE tokenkms_audit_head (
	id   boolean PRIMARY KEY DEFAULT true CHECK (id),
	seq  bigint NOT NULL CHECK (seq >= 0),
	hash text NOT NULL
);
INSERT INTO tokenkms_audit_head (id, seq, hash)
	VALUES (true, 0, '0000000000000000000000000000000000000000000000000000000000000000');
