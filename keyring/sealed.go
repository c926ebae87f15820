package keyring

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

// boundAAD is the additional data a sealed BackendRef is wrapped with:
// label, then each part length-prefixed, so that a blob moved to another
// record (another kid, set, name or version) does not unwrap.
func boundAAD(label string, parts ...string) []byte {
	b := []byte(label)
	for _, s := range parts {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// sealRef wraps clear with backend's KeyWrapper under aad and returns it
// as a BackendRef (base64). what names the material in errors.
func (r *Keyring) sealRef(ctx context.Context, backend, what string, clear, aad []byte) (Hidden, error) {
	w := r.wrappers[backend]
	if w == nil {
		return Hidden{}, fmt.Errorf("%w: no key wrapper for backend %q", ErrBackend, backend)
	}
	wrapped, err := w.Wrap(ctx, clear, aad)
	if err != nil {
		return Hidden{}, fmt.Errorf("%w: wrap %s in %q: %w", ErrBackend, what, backend, err)
	}
	return Hide(base64.StdEncoding.EncodeToString(wrapped)), nil
}

// openRef unwraps k's BackendRef under aad with k's backend's KeyWrapper.
// what names the material in errors. The caller clears the result.
func (r *Keyring) openRef(ctx context.Context, k *Key, what string, aad []byte) ([]byte, error) {
	w := r.wrappers[k.Backend]
	if w == nil {
		return nil, fmt.Errorf("%w: no key wrapper for backend %q", ErrBackend, k.Backend)
	}
	wrapped, err := base64.StdEncoding.DecodeString(k.BackendRef.Reveal())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: malformed reference", ErrBackend, what)
	}
	clear, err := w.Unwrap(ctx, wrapped, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: unwrap %s: %w", ErrBackend, what, err)
	}
	return clear, nil
}
