package awskms_test

import (
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// coreSigner is Core's own signing through the SDK before the migration:
// the KMS key under the kid its tokens carry, outside any keyring.
type coreSigner struct{ s signer.Signer }

func (c coreSigner) Signer(context.Context, string) (signer.Signer, error) { return c.s, nil }

func preMigrationSigner(t *testing.T, c *kms.Client, kid, arn string) signer.Signer {
	t.Helper()
	out, err := c.GetPublicKey(testCtx(t), &kms.GetPublicKeyInput{KeyId: aws.String(arn)})
	if err != nil {
		t.Fatalf("GetPublicKey: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.NewRemoteSigner(signer.RemoteKey{
		KID: kid, Algorithm: "ES256", Backend: "core", Ref: arn, Public: pub,
		SignDigest: func(ctx context.Context, digest []byte) ([]byte, error) {
			out, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: digest,
				MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			if err != nil {
				return nil, err
			}
			return out.Signature, nil
		},
	})
	if err != nil {
		t.Fatalf("NewRemoteSigner: %v", err)
	}
	return s
}

func principal(id string, r keyring.Role) keyring.Principal {
	return keyring.Principal{ID: id, Roles: []keyring.Role{r}}
}

// TestAdoptMigration: a KMS key Core signed with before the migration is
// adopted under the kid its tokens carry; those tokens verify while it is
// Pending, once Active, and after a restart, when the keyring reopens the
// key from the store; new tokens carry the same kid.
func TestAdoptMigration(t *testing.T) {
	c := localKMS(t)
	arn := createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	const kid = "core-kms-2025"
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	issue := func(keys signer.ActiveKeys) string {
		t.Helper()
		iss, err := signer.NewIssuer(keys, signer.IssuerConfig{Set: "access-tokens", Issuer: "https://core.test",
			Audience: []string{"api"}, DefaultLifetime: 30 * time.Minute, MaxLifetime: time.Hour, Now: now})
		if err != nil {
			t.Fatalf("NewIssuer: %v", err)
		}
		tok, err := iss.Issue(testCtx(t), tokenkms.Claims{Subject: "s", ClientID: "c"})
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		return tok
	}
	oldToken := issue(coreSigner{preMigrationSigner(t, c, kid, arn)})

	path := filepath.Join(t.TempDir(), "keys.json")
	open := func() (*keyring.Keyring, *filestore.Store) {
		t.Helper()
		store, err := filestore.Open(path)
		if err != nil {
			t.Fatalf("filestore.Open: %v", err)
		}
		ring, err := keyring.New(testCtx(t), keyring.Config{
			Store: store, Providers: map[string]signer.Provider{"awskms": newProvider(t, c, nil)}, Audit: audit.NewRecorder(), Now: now,
			Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity", Backend: "awskms"}},
		})
		if err != nil {
			t.Fatalf("keyring.New: %v", err)
		}
		return ring, store
	}
	verify := func(stage string, ring *keyring.Keyring, tok string) {
		t.Helper()
		v, err := verifier.New(ring, verifier.Policy{Issuer: "https://core.test", Audience: []string{"api"}}, verifier.WithNow(now))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(testCtx(t), tok); err != nil {
			t.Fatalf("%s: token rejected: %v", stage, err)
		}
	}

	ring, store := open()
	as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(testCtx(t), p) }
	k, err := ring.Import(as(principal("alice", keyring.RoleIssuer)), "access-tokens", keyring.KeyImport{KID: kid, Ref: arn})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if k.State != keyring.Pending || k.Backend != "awskms" {
		t.Fatalf("adopted key = %v in %s, want pending in awskms", k, k.Backend)
	}
	verify("pending", ring, oldToken)
	if err := ring.Approve(as(principal("bob", keyring.RoleApprover)), kid); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if err := ring.Activate(as(principal("carol", keyring.RoleDeployer)), kid); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	verify("active", ring, oldToken)
	store.Close()

	ring, store = open()
	defer store.Close()
	verify("after restart", ring, oldToken)
	newToken := issue(ring)
	verify("new token", ring, newToken)
	s, err := ring.Signer(testCtx(t), "access-tokens")
	if err != nil || s.KID() != kid {
		t.Fatalf("Signer after restart: %v, %v; want kid %s", s, err, kid)
	}
}

// TestAdoptRefused: keys that cannot serve the set, or are bound to
// another kid, are refused and left untagged.
func TestAdoptRefused(t *testing.T) {
	c := localKMS(t)
	tests := []struct {
		name   string
		arn    func(t *testing.T) string
		client func() awskms.Client
		want   error
	}{
		{name: "P-384 key for ES256", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecEccNistP384, types.KeyUsageTypeSignVerify)
		}, want: signer.ErrUnsupportedAlgorithm},
		{name: "RSA key for ES256", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify)
		}, want: signer.ErrUnsupportedAlgorithm},
		{name: "encryption key", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt)
		}, want: signer.ErrUnsupportedAlgorithm},
		{name: "bound to another kid", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify, tag(awskms.TagKID, "other"))
		}, want: signer.ErrBadReference},
		{name: "alias instead of ARN", arn: func(*testing.T) string { return "alias/core" }, want: signer.ErrBadReference},
		{name: "client without TagResource", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
		}, client: func() awskms.Client { return &fakeClient{inner: c} }, want: awskms.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var client awskms.Client = c
			if tc.client != nil {
				client = tc.client()
			}
			arn := tc.arn(t)
			_, _, err := newProvider(t, client, nil).Adopt(testCtx(t), "kid-1", "ES256", arn)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Adopt: got %v, want %v", err, tc.want)
			}
			if len(arn) < 4 || arn[:4] != "arn:" {
				return
			}
			out, err := c.ListResourceTags(testCtx(t), &kms.ListResourceTagsInput{KeyId: aws.String(arn)})
			if err != nil {
				t.Fatalf("ListResourceTags: %v", err)
			}
			for _, tg := range out.Tags {
				if aws.ToString(tg.TagKey) == awskms.TagKID && aws.ToString(tg.TagValue) == "kid-1" {
					t.Fatal("refused key was tagged with the kid")
				}
			}
		})
	}
}
