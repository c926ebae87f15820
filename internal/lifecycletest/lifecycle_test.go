package lifecycletest_test

import (
	"context"
	"crypto"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/signer"
)

func localProvider(t *testing.T) signer.Provider {
	t.Helper()
	p, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatalf("NewLocalProvider: %v", err)
	}
	return p
}

// TestRunLocal runs the lifecycle on the local provider, the one backend
// that needs no service: every algorithm the keyring signs with.
func TestRunLocal(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			lifecycletest.Run(t, localProvider(t), alg)
		})
	}
}

// TestRunFailsOnBrokenBackend shows that Run can fail: backends that lose
// or misreport their keys make it fail, at the check that catches them.
func TestRunFailsOnBrokenBackend(t *testing.T) {
	for _, tc := range []struct {
		name string
		prov func(inner signer.Provider) signer.Provider
		want string // in the first failure message
	}{
		{
			name: "Generate reports another public key",
			prov: func(inner signer.Provider) signer.Provider { return &misreporting{Provider: inner} },
			want: "JWKS after approval",
		},
		{
			name: "Open finds another key",
			prov: func(inner signer.Provider) signer.Provider { return &forgetful{Provider: inner} },
			want: "JWKS after approval",
		},
		{
			name: "signatures made with another key",
			prov: func(inner signer.Provider) signer.Provider { return &wrongKey{Provider: inner} },
			want: "does not verify under the backend's public key",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				lifecycletest.Run(rec, tc.prov(localProvider(t)), "ES256")
			}()
			<-done
			got := rec.first()
			if got == "" {
				t.Fatalf("Run passed; want a failure containing %q", tc.want)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("first failure: got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

// misreporting returns from Generate a public key that is not the key's.
type misreporting struct{ signer.Provider }

func (p *misreporting) Generate(ctx context.Context, kid, alg string) (signer.Signer, string, error) {
	s, ref, err := p.Provider.Generate(ctx, kid, alg)
	if err != nil {
		return nil, "", err
	}
	other, _, err := p.Provider.Generate(ctx, kid, alg)
	if err != nil {
		return nil, "", err
	}
	return withPublic{Signer: s, pub: other.Public()}, ref, nil
}

type withPublic struct {
	signer.Signer
	pub crypto.PublicKey
}

func (s withPublic) Public() crypto.PublicKey { return s.pub }

// forgetful answers every Open with a new key: a backend that lost the key.
type forgetful struct{ signer.Provider }

func (p *forgetful) Open(ctx context.Context, kid, ref string) (signer.Signer, error) {
	s, _, err := p.Provider.Generate(ctx, kid, "ES256")
	return s, err
}

// wrongKey opens signers that show the key's public key but sign with
// another key.
type wrongKey struct{ signer.Provider }

func (p *wrongKey) Open(ctx context.Context, kid, ref string) (signer.Signer, error) {
	s, err := p.Provider.Open(ctx, kid, ref)
	if err != nil {
		return nil, err
	}
	other, _, err := p.Provider.Generate(ctx, kid, s.Algorithm())
	if err != nil {
		return nil, err
	}
	return withPublic{Signer: other, pub: s.Public()}, nil
}

// recordingTB records failures instead of reporting them to the real
// test; Fatal ends the goroutine as testing.T does.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *recordingTB) record(msg string) {
	r.mu.Lock()
	r.msgs = append(r.msgs, msg)
	r.mu.Unlock()
}

func (r *recordingTB) first() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.msgs) == 0 {
		return ""
	}
	return r.msgs[0]
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }
func (r *recordingTB) Error(args ...any)                 { r.record(fmt.Sprint(args...)) }

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (r *recordingTB) Fatal(args ...any) {
	r.record(fmt.Sprint(args...))
	runtime.Goexit()
}

func TestDataKeysLocal(t *testing.T) {
	lifecycletest.DataKeys(t, signer.NewEphemeralWrapper())
}
