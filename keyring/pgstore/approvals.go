package pgstore

import (
	"context"
	"fmt"

	"github.com/tokenkms/tokenkms/keyring"
)

// PutApproval stores a standing approval, replacing any of the same kind
// and subject.
func (s *Store) PutApproval(ctx context.Context, a keyring.Approval) error {
	if err := keyring.CheckApproval(a); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO tokenkms_approvals (kind, subject, approved_by, approved_at, terms)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (kind, subject) DO UPDATE SET approved_by = excluded.approved_by,
			approved_at = excluded.approved_at, terms = excluded.terms`,
		string(a.Kind), a.Subject, a.By, a.At.UTC(), a.Terms); err != nil {
		return fmt.Errorf("pgstore: put approval: %w", err)
	}
	return nil
}

// DeleteApproval removes the approval of kind for subject.
func (s *Store) DeleteApproval(ctx context.Context, kind keyring.ApprovalKind, subject string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM tokenkms_approvals WHERE kind = $1 AND subject = $2`, string(kind), subject)
	if err != nil {
		return fmt.Errorf("pgstore: delete approval: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: no %s approval for %q", keyring.ErrNotFound, kind, subject)
	}
	return nil
}

// Approvals lists the standing approvals by kind, then subject.
func (s *Store) Approvals(ctx context.Context) ([]keyring.Approval, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, subject, approved_by, approved_at, terms FROM tokenkms_approvals`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: approvals: %w", err)
	}
	defer rows.Close()
	var out []keyring.Approval
	for rows.Next() {
		var a keyring.Approval
		var kind string
		if err := rows.Scan(&kind, &a.Subject, &a.By, &a.At, &a.Terms); err != nil {
			return nil, fmt.Errorf("pgstore: approvals: %w", err)
		}
		a.Kind, a.At = keyring.ApprovalKind(kind), a.At.UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: approvals: %w", err)
	}
	keyring.SortApprovals(out)
	return out, nil
}
