package main_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenkms/tokenkms/audit"
)

// TestAuditVerifyChainFile runs audit verify on an intact, a tampered and
// a truncated chain log, with and without a head kept elsewhere (what
// examples/auditverify did).
func TestAuditVerifyChainFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.log")
	l, err := audit.OpenChain(good)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e := audit.Event{ID: strconv.Itoa(i), Type: audit.KeyCreated, Actor: "alice", Outcome: audit.Success}
		if err := l.Emit(context.Background(), e); err != nil {
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
		{name: "intact", args: []string{"--audit", good}, wantCode: 0, wantOut: "ok: 3 records\n"},
		{name: "intact with head", args: []string{"--audit", good, "--seq", seqArg, "--hash", head}, wantCode: 0, wantOut: "ok: 3 records\n"},
		{name: "tampered", args: []string{"--audit", tampered}, wantCode: 8,
			wantOut: "broken: line 1 (seq 1): hash does not match the record's content; 0 good records before it\n"},
		{name: "truncated, file alone", args: []string{"--audit", truncated}, wantCode: 0, wantOut: "ok: 2 records\n"},
		{name: "truncated, with head", args: []string{"--audit", truncated, "--seq", seqArg, "--hash", head}, wantCode: 8, wantOut: "line 3 (seq 3)"},
		{name: "missing file", args: []string{"--audit", filepath.Join(dir, "none.log")}, wantCode: 2},
		{name: "no chain named", args: nil, wantCode: 2},
		{name: "hash without seq", args: []string{"--audit", good, "--hash", head}, wantCode: 2},
	}
	h := &host{dir: dir}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.want(t, tc.wantCode, "", "", "", append([]string{"audit", "verify"}, tc.args...)...)
			if !strings.Contains(r.stdout, tc.wantOut) {
				t.Fatalf("stdout %q, want %q", r.stdout, tc.wantOut)
			}
		})
	}
}
