//go:build cgo

package pkcs11_test

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ThalesGroup/crypto11"

	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
)

// The tokens TestMain initialises in a token directory private to this
// test process.
const (
	tokenLabel = "tokenkms-test"
	otherLabel = "tokenkms-other"
	userPIN    = "user-pin-48271"
	soPIN      = "so-pin-90513"
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run gives SoftHSM2 a configuration and a token directory of this process
// alone before the module is loaded. Without TOKENKMS_SOFTHSM2_MODULE it
// does nothing: each test then calls testenv.Require, which skips or fails.
func run(m *testing.M) int {
	if os.Getenv(testenv.SoftHSMModule) == "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "tokenkms-softhsm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "softhsm setup:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := setupSoftHSM(dir); err != nil {
		fmt.Fprintln(os.Stderr, "softhsm setup:", err)
		return 1
	}
	return m.Run()
}

func setupSoftHSM(dir string) error {
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
		return err
	}
	for _, label := range []string{tokenLabel, otherLabel} {
		out, err := exec.Command("softhsm2-util", "--init-token", "--free",
			"--label", label, "--pin", userPIN, "--so-pin", soPIN).CombinedOutput()
		if err != nil {
			return fmt.Errorf("softhsm2-util --init-token %s: %w: %s", label, err, out)
		}
	}
	return nil
}

// newProvider opens the test token; the test fails (or skips outside
// ./scripts/test) without SoftHSM2.
func newProvider(t testing.TB, opts pkcs11.Options) *pkcs11.Provider {
	t.Helper()
	module := testenv.Require(t, testenv.SoftHSMModule)
	p, err := pkcs11.New(pkcs11.Config{Module: module, TokenLabel: tokenLabel, PIN: userPIN, Options: opts})
	if err != nil {
		t.Fatalf("pkcs11.New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// rawToken opens the test token directly with crypto11, to look at the
// objects the Provider created and to measure the SDK without the adapter.
func rawToken(t testing.TB) *crypto11.Context {
	t.Helper()
	module := testenv.Require(t, testenv.SoftHSMModule)
	c, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: tokenLabel, Pin: userPIN, GCMIVLength: 12})
	if err != nil {
		t.Fatalf("crypto11.Configure: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refID returns the CKA_ID a reference names.
func refID(t testing.TB, ref string) []byte {
	t.Helper()
	parts := strings.SplitN(ref, ":", 5)
	if len(parts) != 5 {
		t.Fatalf("reference %q has %d fields, want 5", ref, len(parts))
	}
	id, err := hex.DecodeString(parts[3])
	if err != nil {
		t.Fatalf("reference %q: id: %v", ref, err)
	}
	return id
}
