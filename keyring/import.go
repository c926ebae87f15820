package keyring

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

// KeyImport is an existing signing key brought under management, so that
// a host migrates without invalidating the tokens it already issued.
// Exactly one of Private and Ref is set.
type KeyImport struct {
	// KID is the kid the key's tokens already carry, kept so that they
	// verify after the migration; it must be unused (ErrExists). Empty: a
	// fresh kid.
	KID string
	// Private is the private key (signer.ParsePrivateKey reads PEM and
	// JWK). The set's provider must implement signer.Importer; it seals
	// the key at once, and only the sealed form is stored.
	Private crypto.Signer
	// Ref names an existing key of the set's backend: an AWS KMS key ARN,
	// a Cloud KMS key version, a PKCS#11 object. The provider must
	// implement signer.Adopter.
	Ref string
	// CreatedAt is when the key was first made, if known: its target
	// rotation date counts from it. Zero: now.
	CreatedAt time.Time
}

// maxKIDLen bounds an imported kid (what every backend can tag a key with).
const maxKIDLen = 256

// Import brings an existing signing key into set as a Pending key, under
// the same rules as Create: it needs the issuer role, another principal
// approves it and a deployer activates it, every step audited. The key
// must suit the set's algorithm: wrong type or curve, RSA under 2048 bits
// and ROCA moduli are refused (signer.ErrWeakKey), and a probe signature
// must verify with its public key. Tokens signed with the key before the
// import verify under its kid from the moment it is imported (a Pending
// key is published).
func (r *Keyring) Import(ctx context.Context, set string, in KeyImport) (_ Key, err error) {
	defer r.trace(&ctx, "import", set, in.KID)(&err)
	p, err := r.principalFor(ctx, ActionCreate, set, in.KID)
	if err != nil {
		return Key{}, err
	}
	pol, err := r.Policy(set)
	if err != nil {
		return Key{}, err
	}
	if pol.Purpose != Signing {
		return Key{}, fmt.Errorf("%w: set %q holds %v keys; only signing keys are imported", ErrWrongPurpose, set, pol.Purpose)
	}
	if (in.Private == nil) == (in.Ref == "") {
		return Key{}, fmt.Errorf("%w: give either a private key or a backend reference", ErrImport)
	}
	kid := in.KID
	if kid == "" {
		kid = newKID()
	} else if err := checkKID(kid); err != nil {
		return Key{}, err
	}
	now := r.now().UTC()
	created := now
	if !in.CreatedAt.IsZero() {
		created = in.CreatedAt.UTC()
	}
	if created.After(now) {
		return Key{}, fmt.Errorf("%w: first created %s, after now", ErrImport, created.Format(time.RFC3339))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.store.Get(ctx, kid); err == nil {
		return Key{}, fmt.Errorf("%w: kid %q is taken", ErrExists, kid)
	} else if !errors.Is(err, ErrNotFound) {
		return Key{}, err
	}
	s, ref, origin, err := r.importInto(ctx, pol, kid, in)
	if err != nil {
		return Key{}, err
	}
	if err := checkImported(ctx, s, kid, pol.Algorithm); err != nil {
		return Key{}, err
	}
	k := Key{
		KID: kid, Set: set, Purpose: Signing, Algorithm: pol.Algorithm, State: Pending,
		Owner: pol.Owner, CreatedBy: p.ID, CreatedAt: now, RotateBy: created.Add(pol.RotationPeriod),
		Backend: pol.Backend, BackendRef: Hide(ref), Public: s.Public(),
	}
	ev := r.event(audit.KeyCreated, p, set, kid, "")
	ev.Reason = "imported"
	ev.Details = map[string]string{
		"algorithm": k.Algorithm, "backend": k.Backend, "owner": k.Owner, "state": Pending.String(),
		"rotate_by": k.RotateBy.Format(time.RFC3339), "origin": origin, "first_created": created.Format(time.RFC3339),
	}
	if err := r.emit(ctx, ev); err != nil {
		return Key{}, err
	}
	if err := r.store.Put(ctx, k); err != nil {
		return Key{}, r.failed(ctx, ev, err)
	}
	k.Version = 1
	return k, r.refreshLocked(ctx)
}

// importInto hands the key to the set's provider and names its origin for
// the audit trail.
func (r *Keyring) importInto(ctx context.Context, pol SetPolicy, kid string, in KeyImport) (signer.Signer, string, string, error) {
	prov := r.providers[pol.Backend]
	if in.Private != nil {
		imp, ok := prov.(signer.Importer)
		if !ok {
			return nil, "", "", fmt.Errorf("%w: backend %q cannot import a private key; adopt a key of the backend by reference", ErrImport, pol.Backend)
		}
		bctx, call := r.tel.backend.Begin(ctx, pol.Backend, "Import")
		s, ref, err := imp.Import(bctx, kid, pol.Algorithm, in.Private)
		call.End(bctx, err)
		if err != nil {
			return nil, "", "", fmt.Errorf("%w: %w", ErrImport, err)
		}
		return s, ref, "private-key", nil
	}
	ad, ok := prov.(signer.Adopter)
	if !ok {
		return nil, "", "", fmt.Errorf("%w: backend %q cannot adopt a key by reference", ErrImport, pol.Backend)
	}
	bctx, call := r.tel.backend.Begin(ctx, pol.Backend, "Adopt")
	s, ref, err := ad.Adopt(bctx, kid, pol.Algorithm, in.Ref)
	call.End(bctx, err)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: %w", ErrImport, err)
	}
	return s, ref, "backend-ref", nil
}

// checkImported checks what the provider returned, whatever it is: the
// kid and algorithm asked for, a public key fit for the algorithm, and a
// probe signature that verifies with it (the private and public halves
// belong together).
func checkImported(ctx context.Context, s signer.Signer, kid, alg string) error {
	if s.KID() != kid || s.Algorithm() != alg {
		return fmt.Errorf("%w: backend returned %s/%s, want %s/%s", ErrImport, s.KID(), s.Algorithm(), kid, alg)
	}
	if err := signer.CheckImportedKey(alg, s.Public()); err != nil {
		return fmt.Errorf("%w: %w", ErrImport, err)
	}
	probe := make([]byte, 32)
	rand.Read(probe)
	sig, err := s.Sign(ctx, probe)
	if err != nil {
		return fmt.Errorf("%w: %w: probe signature: %w", ErrImport, ErrBackend, err)
	}
	a, _ := jose.Lookup(alg)
	if err := a.Verify(s.Public(), probe, sig); err != nil {
		return fmt.Errorf("%w: the private key does not match its public key", ErrImport)
	}
	return nil
}

// checkKID refuses a kid that is empty, too long, or holds other than
// printable ASCII.
func checkKID(kid string) error {
	if len(kid) > maxKIDLen {
		return fmt.Errorf("%w: kid longer than %d bytes", ErrImport, maxKIDLen)
	}
	for i := 0; i < len(kid); i++ {
		if kid[i] <= ' ' || kid[i] > '~' {
			return fmt.Errorf("%w: kid holds a character other than printable ASCII", ErrImport)
		}
	}
	return nil
}
