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

	"github.com/tokenkms/tokenkms/internal/telemetry"
	"github.com/tokenkms/tokenkms/keyring"
)

// FormatVersion is the version of the file format this package writes.
// Open refuses files with a higher version.
const FormatVersion = 1

// maxFileSize bounds the store file Open reads.
const maxFileSize = 64 << 20

// fileState is the JSON document.
type fileState struct {
	Format int         `json:"format"`
	Keys   []keyRecord `json:"keys"`
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
		Incident: k.Incident, Backend: k.Backend, BackendRef: k.BackendRef, Standby: k.Standby, Version: k.Version,
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
		Backend: r.Backend, BackendRef: r.BackendRef, Standby: r.Standby, Version: r.Version,
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

// Store is a keyring.KeyStore and keyring.BatchUpdater kept in one file.
type Store struct {
	path string
	lock *os.File
	log  *slog.Logger

	mu     sync.RWMutex
	keys   map[string]keyring.Key
	closed bool
}

// Option configures Open.
type Option func(*Store)

// WithLogger logs the store's operational events: a new empty store
// created, temporary files of an interrupted write removed. Nil, or
// without it: nothing is logged. Never key material.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.log = l }
}

// Open opens the store at path, creating it (mode 0600, empty) if it does
// not exist. The directory must exist.
func Open(path string, opts ...Option) (*Store, error) {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filestore: open lock file: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("filestore: lock: %w", err)
	}
	s := &Store{path: path, lock: lock, keys: make(map[string]keyring.Key)}
	for _, o := range opts {
		if o == nil {
			lock.Close()
			return nil, fmt.Errorf("%w: nil Option", ErrConfig)
		}
		o(s)
	}
	s.log = telemetry.Logger(s.log)
	s.removeTemps()
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// removeTemps deletes temporary files left by a writer that died before
// its rename; the lock is held, so no writer is running.
func (s *Store) removeTemps() {
	dir, base := filepath.Split(s.path)
	if dir == "" {
		dir = "."
	}
	left, err := filepath.Glob(filepath.Join(dir, "."+base+".tmp-*"))
	if err != nil {
		s.log.Warn("filestore: cannot look for temporary files", "path", s.path, "err", err)
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

// load reads the file into s.keys, or creates an empty one.
func (s *Store) load() error {
	f, err := os.OpenFile(s.path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		s.log.Info("filestore: no store file; creating an empty one", "path", s.path)
		return s.write(s.keys)
	}
	if err != nil {
		return fmt.Errorf("filestore: open: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("filestore: stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrPermissions, s.path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o", ErrPermissions, s.path, perm)
	}
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
	return nil
}

// write stores keys atomically: temporary file, sync, rename, directory
// sync.
func (s *Store) write(keys map[string]keyring.Key) error {
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
	b, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return fmt.Errorf("filestore: encode: %w", err)
	}
	dir, base := filepath.Split(s.path)
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
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("filestore: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("filestore: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("filestore: close: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("filestore: rename: %w", err)
	}
	done = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("filestore: open directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("filestore: sync directory: %w", err)
	}
	return nil
}

// Close releases the process lock. The store refuses further calls.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.keys[k.KID]; ok {
		return fmt.Errorf("%w: %s", keyring.ErrExists, k.KID)
	}
	k.Version = 1
	next := maps.Clone(s.keys)
	next[k.KID] = k
	return s.commit(next)
}

// Update replaces a key whose stored version is expectVersion.
func (s *Store) Update(ctx context.Context, k keyring.Key, expectVersion int64) error {
	return s.UpdateBatch(ctx, []keyring.KeyUpdate{{Key: k, ExpectVersion: expectVersion}})
}

// UpdateBatch applies every update or none, in one file write.
func (s *Store) UpdateBatch(ctx context.Context, updates []keyring.KeyUpdate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	next, err := keyring.ApplyUpdates(s.keys, updates)
	if err != nil {
		return err
	}
	return s.commit(next)
}

// commit writes next and, once it is durable, makes it the state.
func (s *Store) commit(next map[string]keyring.Key) error {
	if err := s.write(next); err != nil {
		return err
	}
	s.keys = next
	return nil
}

// String names the store without its content.
func (s *Store) String() string { return "filestore(" + s.path + ")" }
