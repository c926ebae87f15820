package main_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
)

// TestAuditVerify builds the command once and runs it on an intact, a
// tampered and a truncated log.
func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "auditverify")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	good := filepath.Join(dir, "good.log")
	l, err := audit.OpenChain(good)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e := audit.Event{ID: strconv.Itoa(i), Type: audit.KeyCreated, Actor: "alice", Outcome: audit.Success}
		if err := l.Emit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	seq, head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.log")
	if err := os.WriteFile(tampered, bytes.Replace(content, []byte(`"actor":"alice"`), []byte(`"actor":"eve"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.log")
	lines := bytes.SplitAfter(content, []byte("\n"))
	if err := os.WriteFile(truncated, bytes.Join(lines[:2], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	seqArg := strconv.FormatUint(seq, 10)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"intact", []string{good}, 0, "ok: 3 records\n"},
		{"intact with head", []string{"-seq", seqArg, "-hash", head, good}, 0, "ok: 3 records\n"},
		{"tampered", []string{tampered}, 1, "broken: line 1 (seq 1): hash does not match the record's content; 0 good records before it\n"},
		{"truncated, file alone", []string{truncated}, 0, "ok: 2 records\n"},
		{"truncated, with head", []string{"-seq", seqArg, "-hash", head, truncated}, 1, "broken: line 3 (seq 3)"},
		{"missing file", []string{filepath.Join(dir, "none.log")}, 2, ""},
		{"no argument", nil, 2, ""},
		{"-hash without -seq", []string{"-hash", head, good}, 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, tc.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("run: %v", err)
			}
			if code != tc.wantCode {
				t.Errorf("exit code: got %d, want %d (stderr %q)", code, tc.wantCode, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), tc.wantOut) {
				t.Errorf("stdout: got %q, want prefix %q", stdout.String(), tc.wantOut)
			}
			if tc.wantOut == "" && stdout.Len() != 0 {
				t.Errorf("stdout: got %q, want nothing", stdout.String())
			}
		})
	}
}
