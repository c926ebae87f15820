package keyring

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"

	"github.com/tokenkms/tokenkms/verifier"
)

// KeyStore keeps key records. The keyring calls only these methods;
// every implementation passes keyringtest.TestKeyStore.
//
// Put creates a record (ErrExists if the kid is taken, even by a destroyed
// key: kids are never reused). A store refuses to write a record with an
// unknown state or purpose, and reports one it reads as corrupt (both
// wrapping ErrCorruptRecord, see CheckRecord). Update replaces a record if its stored
// Version equals expectVersion, storing k with Version expectVersion+1;
// otherwise ErrConflict (ErrNotFound if there is none). An update either
// completes or leaves the record as it was. A store also keeps the
// standing approvals (ApprovalStore), as durably as the keys.
type KeyStore interface {
	Get(ctx context.Context, kid string) (Key, error)
	List(ctx context.Context, f Filter) ([]Key, error)
	Put(ctx context.Context, k Key) error
	Update(ctx context.Context, k Key, expectVersion int64) error
	ApprovalStore
}

// Durable is implemented by the parts a Keyring is built from (stores,
// revocation lists, signing providers, key wrappers) to say whether what
// they keep or wrap outlives this process. New treats a part that does not
// implement it as durable, and refuses a durable store next to a part that
// is not: a restart would lose revocations, or leave keys that no longer
// unwrap.
type Durable interface {
	Durable() bool
}

// isDurable reports whether v keeps what it holds beyond this process.
func isDurable(v any) bool {
	d, ok := v.(Durable)
	return !ok || d.Durable()
}

// RevocationStore is implemented by a durable KeyStore that also keeps a
// durable revocation list (filestore): New uses it when Config.Revocations
// is nil.
type RevocationStore interface {
	RevocationList() verifier.RevocationList
}

// Filter selects keys in List; zero fields match everything. List returns
// keys ordered by CreatedAt, then KID.
type Filter struct {
	Set    string
	States []State
}

// Match reports whether k passes the filter.
func (f Filter) Match(k Key) bool {
	if f.Set != "" && k.Set != f.Set {
		return false
	}
	if len(f.States) == 0 {
		return true
	}
	for _, s := range f.States {
		if k.State == s {
			return true
		}
	}
	return false
}

// SortKeys orders keys as List returns them.
func SortKeys(keys []Key) {
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].CreatedAt.Equal(keys[j].CreatedAt) {
			return keys[i].CreatedAt.Before(keys[j].CreatedAt)
		}
		return keys[i].KID < keys[j].KID
	})
}

// MemStore is an in-memory KeyStore, safe for concurrent use.
type MemStore struct {
	mu        sync.RWMutex
	keys      map[string]Key
	approvals map[string]Approval
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{keys: make(map[string]Key), approvals: make(map[string]Approval)}
}

// Durable reports false: a MemStore lives as long as the process.
func (m *MemStore) Durable() bool { return false }

// PutApproval stores a, replacing any approval of the same kind and
// subject.
func (m *MemStore) PutApproval(ctx context.Context, a Approval) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckApproval(a); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.approvals[ApprovalID(a.Kind, a.Subject)] = a
	return nil
}

// DeleteApproval removes the approval of kind for subject.
func (m *MemStore) DeleteApproval(ctx context.Context, kind ApprovalKind, subject string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := ApprovalID(kind, subject)
	if _, ok := m.approvals[id]; !ok {
		return fmt.Errorf("%w: no %s approval for %q", ErrNotFound, kind, subject)
	}
	delete(m.approvals, id)
	return nil
}

// Approvals lists the standing approvals.
func (m *MemStore) Approvals(ctx context.Context) ([]Approval, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return ListApprovals(m.approvals), nil
}

// Get returns the key named kid.
func (m *MemStore) Get(ctx context.Context, kid string) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	k, ok := m.keys[kid]
	if !ok {
		return Key{}, fmt.Errorf("%w: %s", ErrNotFound, kid)
	}
	return k, nil
}

// List returns the keys that match f.
func (m *MemStore) List(ctx context.Context, f Filter) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return ListMatching(m.keys, f), nil
}

// Put stores a new key with Version 1.
func (m *MemStore) Put(ctx context.Context, k Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if k.KID == "" {
		return fmt.Errorf("keyring: empty kid")
	}
	if err := CheckRecord(k); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.KID]; ok {
		return fmt.Errorf("%w: %s", ErrExists, k.KID)
	}
	k.Version = 1
	m.keys[k.KID] = k
	return nil
}

// Update replaces a key whose stored version is expectVersion.
func (m *MemStore) Update(ctx context.Context, k Key, expectVersion int64) error {
	return m.UpdateBatch(ctx, []KeyUpdate{{Key: k, ExpectVersion: expectVersion}})
}

// UpdateBatch applies every update or none (BatchUpdater).
func (m *MemStore) UpdateBatch(ctx context.Context, updates []KeyUpdate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next, err := ApplyUpdates(m.keys, updates)
	if err != nil {
		return err
	}
	m.keys = next
	return nil
}

// ListMatching returns the keys of a map-held store that match f, in
// SortKeys order: List for a KeyStore that keeps its keys in a map.
func ListMatching(keys map[string]Key, f Filter) []Key {
	out := make([]Key, 0, len(keys))
	for _, k := range keys {
		if f.Match(k) {
			out = append(out, k)
		}
	}
	SortKeys(out)
	return out
}

// ApplyUpdates applies updates to a copy of keys, in order, each against
// the state the ones before it left (as a transaction would), and returns
// the copy, or the first refusal (ErrCorruptRecord, ErrNotFound,
// ErrConflict) and nothing:
// UpdateBatch for a KeyStore that keeps its keys in a map. keys itself is
// never modified.
func ApplyUpdates(keys map[string]Key, updates []KeyUpdate) (map[string]Key, error) {
	next := maps.Clone(keys)
	for _, u := range updates {
		if err := CheckRecord(u.Key); err != nil {
			return nil, err
		}
		cur, ok := next[u.Key.KID]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, u.Key.KID)
		}
		if cur.Version != u.ExpectVersion {
			return nil, fmt.Errorf("%w: %s at version %d, expected %d", ErrConflict, u.Key.KID, cur.Version, u.ExpectVersion)
		}
		u.Key.Version = u.ExpectVersion + 1
		next[u.Key.KID] = u.Key
	}
	return next, nil
}
