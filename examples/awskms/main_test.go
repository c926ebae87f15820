package main_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/testenv"
)

// TestExample builds the command and runs it without an endpoint (a clear
// refusal, no network) and against local-kms.
func TestExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "awskms")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := func(endpoint string) []string {
		var out []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_ENDPOINT_URL_KMS=") {
				out = append(out, kv)
			}
		}
		if endpoint != "" {
			out = append(out, "AWS_ENDPOINT_URL_KMS="+endpoint)
		}
		return append(out, "AWS_EC2_METADATA_DISABLED=true")
	}

	t.Run("no endpoint", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = env("")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("exit: got %v, want exit status 1\n%s", err, out)
		}
		if want := "no KMS endpoint: set AWS_ENDPOINT_URL_KMS or pass -endpoint"; !strings.Contains(string(out), want) {
			t.Fatalf("output %q does not say %q", out, want)
		}
	})

	t.Run("local-kms", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, bin, "-timeout", "60s")
		cmd.Env = env(testenv.Require(t, testenv.LocalKMS))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		for _, want := range []string{
			"created signing key in KMS: kid=example-",
			"alg=ES256",
			"ref=arn:aws:kms:",
			"verified the signature with crypto/ecdsa",
			"reopened the key from its reference",
			"and unwrapped it",
			"unwrap with another aad was refused",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
}
