-- Standing approvals (keyring.Approval): an approver's approval of a set's
-- scheduled rotation, or of the retirement of a rewrapped data key. Kept
-- with the keys so that they hold across restarts and for every replica.
CREATE TABLE tokenkms_approvals (
	kind        text NOT NULL,
	subject     text NOT NULL,
	approved_by text NOT NULL,
	approved_at timestamptz NOT NULL,
	terms       text NOT NULL DEFAULT '',
	PRIMARY KEY (kind, subject)
);
