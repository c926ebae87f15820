package filestore

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tokenkms/tokenkms/internal/safefile"
	"github.com/tokenkms/tokenkms/internal/telemetry"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/verifier"
)

// FormatVersion is the version of the file format this package writes.
// Open refuses files with a higher version. Version 2 added the standing
// approvals; version 1 files are read as having none.
const FormatVersion = 2

// maxFileSize bounds the store file Open reads.
const maxFileSize = 64 << 20

// fileState is the JSON document.
type fileState struct {
	Format    int              `json:"format"`
	Keys      []keyRecord      `json:"keys"`
	Approvals []approvalRecord `json:"approvals,omitempty"`
}

// approvalRecord is the JSON form of a keyring.Approval.
type approvalRecord struct {
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Terms   string    `json:"terms,omitempty"`
}

// keyRecord is the JSON form of a keyring.Key.
type keyRecord struct {
	KID           string    `json:"kid"`
	Set           string    `json:"set"`
	Purpose       int       `json:"purpose"`
	Algorithm     string    `json:"alg"`
	State         int       `json:"state"`
	Owner         string    `json:"owner"`
	CreatedBy     string    `json:"created_by"`
	CreatedAt     time.Time `json:"created_at"`
	RotateBy      time.Time `json:"rotate_by"`
	ApprovedBy    string    `json:"approved_by,omitempty"`
	ApprovedAt    time.Time `json:"approved_at"`
	ActivateAt    time.Time `json:"activate_at"`
	ActivatedAt   time.Time `json:"activated_at"`
	RetiringAt    time.Time `json:"retiring_at"`
	GraceUntil    time.Time `json:"grace_until"`
	RetiredAt     time.Time `json:"retired_at"`
	CompromisedAt time.Time `json:"compromised_at"`
	DestroyedAt   time.Time `json:"destroyed_at"`
	Incident      string    `json:"incident,omitempty"`
	Backend       string    `json:"backend"`
	BackendRef    string    `json:"backend_ref"`
	Public        []byte    `json:"public,omitempty"` // PKIX DER
	Standby       bool      `json:"standby,omitempty"`
	Version       int64     `json:"version"`
}

func toRecord(k keyring.Key) (keyRecord, error) {
	r := keyRecord{
		KID: k.KID, Set: k.Set, Purpose: int(k.Purpose), Algorithm: k.Algorithm, State: int(k.State),
		Owner: k.Owner, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt.UTC(), RotateBy: k.RotateBy.UTC(),
		ApprovedBy: k.ApprovedBy, ApprovedAt: k.ApprovedAt.UTC(), ActivateAt: k.ActivateAt.UTC(),
		ActivatedAt: k.ActivatedAt.UTC(), RetiringAt: k.RetiringAt.UTC(), GraceUntil: k.GraceUntil.UTC(),
		RetiredAt: k.RetiredAt.UTC(), CompromisedAt: k.CompromisedAt.UTC(), DestroyedAt: k.DestroyedAt.UTC(),
		Incident: k.Incident, Backend: k.Backend, BackendRef: k.BackendRef.Reveal(), Standby: k.Standby, Version: k.Version,
	}
	if k.KID == "" {
		return keyRecord{}, fmt.Errorf("%w: empty kid", ErrInvalidKey)
	}
	if err := keyring.CheckRecord(k); err != nil {
		return keyRecord{}, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if k.Public != nil {
		der, err := x509.MarshalPKIXPublicKey(k.Public)
		if err != nil {
			return keyRecord{}, fmt.Errorf("%w: %s: public key: %v", ErrInvalidKey, k.KID, err)
		}
		r.Public = der
	}
	return r, nil
}

func (r keyRecord) key() (keyring.Key, error) {
	k := keyring.Key{
		KID: r.KID, Set: r.Set, Purpose: keyring.Purpose(r.Purpose), Algorithm: r.Algorithm, State: keyring.State(r.State),
		Owner: r.Owner, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, RotateBy: r.RotateBy,
		ApprovedBy: r.ApprovedBy, ApprovedAt: r.ApprovedAt, ActivateAt: r.ActivateAt, ActivatedAt: r.ActivatedAt,
		RetiringAt: r.RetiringAt, GraceUntil: r.GraceUntil, RetiredAt: r.RetiredAt,
		CompromisedAt: r.CompromisedAt, DestroyedAt: r.DestroyedAt, Incident: r.Incident,
		Backend: r.Backend, BackendRef: keyring.Hide(r.BackendRef), Standby: r.Standby, Version: r.Version,
	}
	if r.KID == "" || r.Version < 1 {
		return keyring.Key{}, fmt.Errorf("%w: record without kid or version", ErrCorrupt)
	}
	if err := keyring.CheckRecord(k); err != nil {
		return keyring.Key{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if r.Public != nil {
		pub, err := x509.ParsePKIXPublicKey(r.Public)
		if err != nil {
			return keyring.Key{}, fmt.Errorf("%w: %s: public key does not parse", ErrCorrupt, r.KID)
		}
		k.Public = pub
	}
	return k, nil
}

// Store is a keyring.KeyStore and keyring.BatchUpdater kept in one file,
// with its durable revocation list (Revocations) beside it.
type Store struct {
	path string
	lock *os.File
	now  func() time.Time
	revs *Revocations
	log  *slog.Logger

	mu        sync.RWMutex
	keys      map[string]keyring.Key
	approvals map[string]keyring.Approval
	closed    bool
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock of the revocation list (default time.Now): a
// jti is revoked while now is before its until plus verifier.MaxLeeway.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithLogger logs the store's operational events: a new empty store
// created, temporary files of an interrupted write removed. Nil, or
// without it: nothing is logged. Never key material.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.log = l }
}

// Open opens the store at path, creating it (mode 0600, empty) if it does
// not exist, and its revocation journal path+".revoked" (Revocations).
// The directory must exist.
func Open(path string, opts ...Option) (*Store, error) {
	lock, _, err := openFile(path+".lock", os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("filestore: lock: %w", err)
	}
	s := &Store{path: path, lock: lock, now: time.Now, keys: make(map[string]keyring.Key), approvals: make(map[string]keyring.Approval)}
	for _, o := range opts {
		if o == nil {
			lock.Close()
			return nil, fmt.Errorf("%w: nil Option", ErrConfig)
		}
		o(s)
	}
	s.log = telemetry.Logger(s.log)
	s.removeTemps(path)
	s.removeTemps(path + revocationSuffix)
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	revs, err := openRevocations(path+revocationSuffix, s.now)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.revs = revs
	return s, nil
}

// openFile opens a file of the store: every file the store opens goes
// through it, so that none is reached through a symbolic link, owned by
// another user, or open to group or others, nor lies in a directory they
// may write (ErrPermissions). With os.O_CREATE it creates a missing file
// with mode 0600.
func openFile(path string, flag int) (*os.File, bool, error) {
	f, created, err := safefile.Open(path, flag)
	switch {
	case errors.Is(err, safefile.ErrUnsafe):
		return nil, false, fmt.Errorf("%w: %w", ErrPermissions, err)
	case err != nil:
		return nil, false, fmt.Errorf("filestore: open %s: %w", filepath.Base(path), err)
	}
	return f, created, nil
}

// removeTemps deletes temporary files of path left by a writer that died
// before its rename; the lock is held, so no writer is running.
func (s *Store) removeTemps(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	left, err := filepath.Glob(filepath.Join(dir, "."+base+".tmp-*"))
	if err != nil {
		s.log.Warn("filestore: cannot look for temporary files", "path", path, "err", err)
		return
	}
	for _, name := range left {
		if err := os.Remove(name); err != nil {
			s.log.Warn("filestore: cannot remove a temporary file left by an interrupted write", "file", name, "err", err)
			continue
		}
		s.log.Info("filestore: removed a temporary file left by an interrupted write", "file", name)
	}
}

// load reads the file into s.keys and s.approvals, or creates an empty
// one.
func (s *Store) load() error {
	f, _, err := openFile(s.path, os.O_RDONLY)
	if errors.Is(err, fs.ErrNotExist) {
		s.log.Info("filestore: no store file; creating an empty one", "path", s.path)
		return s.write(s.keys, s.approvals)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return fmt.Errorf("filestore: read: %w", err)
	}
	if len(b) > maxFileSize {
		return fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxFileSize)
	}
	var head struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("%w: not a JSON document", ErrCorrupt)
	}
	if head.Format > FormatVersion {
		return fmt.Errorf("%w: file has format %d, this build reads up to %d", ErrFormatVersion, head.Format, FormatVersion)
	}
	if head.Format < 1 {
		return fmt.Errorf("%w: format version %d", ErrCorrupt, head.Format)
	}
	var st fileState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("%w: malformed state", ErrCorrupt)
	}
	for _, r := range st.Keys {
		k, err := r.key()
		if err != nil {
			return err
		}
		if _, dup := s.keys[k.KID]; dup {
			return fmt.Errorf("%w: kid %s appears twice", ErrCorrupt, k.KID)
		}
		s.keys[k.KID] = k
	}
	for _, r := range st.Approvals {
		a := keyring.Approval{Kind: keyring.ApprovalKind(r.Kind), Subject: r.Subject, By: r.By, At: r.At, Terms: r.Terms}
		if err := keyring.CheckApproval(a); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		s.approvals[keyring.ApprovalID(a.Kind, a.Subject)] = a
	}
	return nil
}

// write stores keys and approvals atomically (writeAtomic).
func (s *Store) write(keys map[string]keyring.Key, approvals map[string]keyring.Approval) error {
	list := make([]keyring.Key, 0, len(keys))
	for _, k := range keys {
		list = append(list, k)
	}
	keyring.SortKeys(list)
	st := fileState{Format: FormatVersion, Keys: make([]keyRecord, len(list))}
	for i, k := range list {
		r, err := toRecord(k)
		if err != nil {
			return err
		}
		st.Keys[i] = r
	}
	for _, a := range keyring.ListApprovals(approvals) {
		st.Approvals = append(st.Approvals, approvalRecord{Kind: string(a.Kind), Subject: a.Subject, By: a.By, At: a.At.UTC(), Terms: a.Terms})
	}
	b, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return fmt.Errorf("filestore: encode: %w", err)
	}
	return writeAtomic(s.path, append(b, '\n'))
}

// writeAtomic replaces the file at path with b: temporary file (mode
// 0600), sync, rename, directory sync. A crash leaves the old content or
// the new, never a mix.
func writeAtomic(path string, b []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("filestore: create temporary file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("filestore: chmod: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("filestore: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("filestore: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("filestore: close: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("filestore: rename: %w", err)
	}
	done = true
	if err := safefile.SyncDir(dir); err != nil {
		return fmt.Errorf("filestore: sync directory: %w", err)
	}
	return nil
}

// Close closes the revocation journal and releases the process lock. The
// store refuses further calls; its revocation list refuses further
// revocations and still answers lookups from memory.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return errors.Join(s.revs.close(), s.lock.Close())
}

// Durable reports true: the store keeps its keys, approvals and
// revocations in files.
func (s *Store) Durable() bool { return true }

// Revocations returns the store's durable revocation list.
func (s *Store) Revocations() *Revocations { return s.revs }

// RevocationList returns Revocations as a verifier.RevocationList: the
// list keyring.New uses with this store when Config.Revocations is nil
// (keyring.RevocationStore).
func (s *Store) RevocationList() verifier.RevocationList { return s.revs }

// Get returns the key named kid.
func (s *Store) Get(ctx context.Context, kid string) (keyring.Key, error) {
	if err := ctx.Err(); err != nil {
		return keyring.Key{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return keyring.Key{}, ErrClosed
	}
	k, ok := s.keys[kid]
	if !ok {
		return keyring.Key{}, fmt.Errorf("%w: %s", keyring.ErrNotFound, kid)
	}
	return k, nil
}

// List returns the keys that match f, ordered by CreatedAt then KID.
func (s *Store) List(ctx context.Context, f keyring.Filter) ([]keyring.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return keyring.ListMatching(s.keys, f), nil
}

// Put stores a new key with Version 1.
func (s *Store) Put(ctx context.Context, k keyring.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if k.KID == "" {
		return fmt.Errorf("%w: empty kid", ErrInvalidKey)
	}
	if err := keyring.CheckRecord(k); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return s.change(ctx, func() error {
		if _, ok := s.keys[k.KID]; ok {
			return fmt.Errorf("%w: %s", keyring.ErrExists, k.KID)
		}
		k.Version = 1
		next := maps.Clone(s.keys)
		next[k.KID] = k
		return s.commit(next, s.approvals)
	})
}

// Update replaces a key whose stored version is expectVersion.
func (s *Store) Update(ctx context.Context, k keyring.Key, expectVersion int64) error {
	return s.UpdateBatch(ctx, []keyring.KeyUpdate{{Key: k, ExpectVersion: expectVersion}})
}

// UpdateBatch applies every update or none, in one file write.
func (s *Store) UpdateBatch(ctx context.Context, updates []keyring.KeyUpdate) error {
	return s.change(ctx, func() error {
		next, err := keyring.ApplyUpdates(s.keys, updates)
		if err != nil {
			return err
		}
		return s.commit(next, s.approvals)
	})
}

// change runs f under the write lock of an open store, once ctx is
// checked: every change of the key file goes through it.
func (s *Store) change(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return f()
}

// commit writes keys and approvals and, once they are durable, makes
// them the state. s.mu is held for writing.
func (s *Store) commit(keys map[string]keyring.Key, approvals map[string]keyring.Approval) error {
	if err := s.write(keys, approvals); err != nil {
		return err
	}
	s.keys, s.approvals = keys, approvals
	return nil
}

// PutApproval stores a standing approval, replacing any of the same kind
// and subject.
func (s *Store) PutApproval(ctx context.Context, a keyring.Approval) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := keyring.CheckApproval(a); err != nil {
		return err
	}
	return s.change(ctx, func() error {
		next := maps.Clone(s.approvals)
		next[keyring.ApprovalID(a.Kind, a.Subject)] = a
		return s.commit(s.keys, next)
	})
}

// DeleteApproval removes the approval of kind for subject.
func (s *Store) DeleteApproval(ctx context.Context, kind keyring.ApprovalKind, subject string) error {
	return s.change(ctx, func() error {
		id := keyring.ApprovalID(kind, subject)
		if _, ok := s.approvals[id]; !ok {
			return fmt.Errorf("%w: no %s approval for %q", keyring.ErrNotFound, kind, subject)
		}
		next := maps.Clone(s.approvals)
		delete(next, id)
		return s.commit(s.keys, next)
	})
}

// Approvals lists the standing approvals by kind, then subject.
func (s *Store) Approvals(ctx context.Context) ([]keyring.Approval, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return keyring.ListApprovals(s.approvals), nil
}

// String names the store without its content.
func (s *Store) String() string { return "filestore(" + s.path + ")" }
