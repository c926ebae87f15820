package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenkms/tokenkms/audit"
)

// writeChain writes n events to a new chained log and returns its path and
// the log's head.
func writeChain(t *testing.T, n int, opts ...audit.ChainOption) (path string, seq uint64, head string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.OpenChain(path, opts...)
	if err != nil {
		t.Fatalf("OpenChain: %v", err)
	}
	for i := 1; i <= n; i++ {
		if err := l.Emit(context.Background(), event(i)); err != nil {
			t.Fatalf("Emit %d: %v", i, err)
		}
	}
	seq, head = l.Head()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return path, seq, head
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")[:bytes.Count(b, []byte("\n"))]
}

// forge builds a record line as the documented format says, independently
// of the package: what an attacker who knows the format can write.
func forge(t *testing.T, seq uint64, prev string, e audit.Event) (line, hash string) {
	t.Helper()
	canon, err := json.Marshal(struct {
		Seq   uint64      `json:"seq"`
		Prev  string      `json:"prev"`
		Event audit.Event `json:"event"`
	}{seq, prev, e})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	hash = hex.EncodeToString(sum[:])
	b, err := json.Marshal(struct {
		Seq   uint64      `json:"seq"`
		Prev  string      `json:"prev"`
		Event audit.Event `json:"event"`
		Hash  string      `json:"hash"`
	}{seq, prev, e, hash})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n", hash
}

func hashOf(t *testing.T, line string) string {
	t.Helper()
	var r struct{ Hash string }
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	return r.Hash
}

func TestChainRoundTrip(t *testing.T) {
	path, seq, head := writeChain(t, 5)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := audit.Verify(f)
	if err != nil || n != 5 {
		t.Fatalf("Verify: got (%d, %v), want (5, nil)", n, err)
	}
	lines := readLines(t, path)
	wantFirst, _ := forge(t, 1, audit.Genesis, event(1))
	if lines[0] != wantFirst {
		t.Errorf("first record is not the documented format:\ngot  %swant %s", lines[0], wantFirst)
	}
	if seq != 5 || head != hashOf(t, lines[4]) {
		t.Errorf("Head: got (%d, %s), want (5, %s)", seq, head, hashOf(t, lines[4]))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode: got %v, want 0600", got)
	}
}

func TestChainTamperingDetected(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(t *testing.T, lines []string) []string
		wantN     int
		wantLine  int
		wantSeq   uint64
		wantWords string // in Reason
	}{
		{
			name: "field modified",
			edit: func(t *testing.T, l []string) []string {
				l[2] = strings.Replace(l[2], `"actor":"alice"`, `"actor":"mallory"`, 1)
				return l
			},
			wantN: 2, wantLine: 3, wantSeq: 3, wantWords: "hash",
		},
		{
			name: "detail added",
			edit: func(t *testing.T, l []string) []string {
				l[1] = strings.Replace(l[1], `"details":{`, `"details":{"approved_by":"mallory",`, 1)
				return l
			},
			wantN: 1, wantLine: 2, wantSeq: 2, wantWords: "hash",
		},
		{
			name:  "record deleted",
			edit:  func(t *testing.T, l []string) []string { return append(l[:2], l[3:]...) },
			wantN: 2, wantLine: 3, wantSeq: 3, wantWords: "sequence number 4",
		},
		{
			name: "two records reordered",
			edit: func(t *testing.T, l []string) []string {
				l[1], l[2] = l[2], l[1]
				return l
			},
			wantN: 1, wantLine: 2, wantSeq: 2, wantWords: "sequence number 3",
		},
		{
			name: "copy of a record inserted",
			edit: func(t *testing.T, l []string) []string {
				return append(l[:3], append([]string{l[1]}, l[3:]...)...)
			},
			wantN: 3, wantLine: 4, wantSeq: 4, wantWords: "sequence number 2",
		},
		{
			name: "forged record with a valid hash inserted",
			edit: func(t *testing.T, l []string) []string {
				e := event(99)
				e.Type = audit.KeyDestroyed
				forged, _ := forge(t, 3, hashOf(t, l[1]), e)
				return append(l[:2], append([]string{forged}, l[2:]...)...)
			},
			wantN: 3, wantLine: 4, wantSeq: 4, wantWords: "sequence number 3",
		},
		{
			name: "seq and prev forged, tail left",
			edit: func(t *testing.T, l []string) []string {
				e := event(3)
				e.Actor = "mallory"
				l[2], _ = forge(t, 3, hashOf(t, l[1]), e)
				return l
			},
			wantN: 3, wantLine: 4, wantSeq: 4, wantWords: "prev",
		},
		{
			name: "white space added",
			edit: func(t *testing.T, l []string) []string {
				l[0] = strings.Replace(l[0], `"seq":1`, `"seq": 1`, 1)
				return l
			},
			wantN: 0, wantLine: 1, wantSeq: 1, wantWords: "canonical",
		},
		{
			name: "unknown member added",
			edit: func(t *testing.T, l []string) []string {
				l[3] = strings.Replace(l[3], `{"seq"`, `{"note":"x","seq"`, 1)
				return l
			},
			wantN: 3, wantLine: 4, wantSeq: 4, wantWords: "malformed",
		},
		{
			name: "last record cut mid-line",
			edit: func(t *testing.T, l []string) []string {
				l[4] = l[4][:len(l[4])/2]
				return l
			},
			wantN: 4, wantLine: 5, wantSeq: 5, wantWords: "incomplete",
		},
		{
			name:  "garbage line",
			edit:  func(t *testing.T, l []string) []string { return append(l, "not json\n") },
			wantN: 5, wantLine: 6, wantSeq: 6, wantWords: "malformed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, _, _ := writeChain(t, 5)
			lines := tc.edit(t, readLines(t, path))
			n, err := audit.Verify(strings.NewReader(strings.Join(lines, "")))
			if !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("Verify: got (%d, %v), want ErrChainBroken", n, err)
			}
			var ce *audit.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify: %T is not a *ChainError", err)
			}
			if n != tc.wantN || ce.Line != tc.wantLine || ce.Seq != tc.wantSeq {
				t.Errorf("got n=%d line=%d seq=%d, want n=%d line=%d seq=%d (%v)",
					n, ce.Line, ce.Seq, tc.wantN, tc.wantLine, tc.wantSeq, err)
			}
			if !strings.Contains(ce.Reason, tc.wantWords) {
				t.Errorf("Reason: got %q, want it to contain %q", ce.Reason, tc.wantWords)
			}
			if strings.Contains(err.Error(), "alice") || strings.Contains(err.Error(), "mallory") {
				t.Errorf("error repeats record content: %v", err)
			}
			if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := audit.OpenChain(path); !errors.Is(err, audit.ErrChainBroken) {
				t.Errorf("OpenChain of the tampered file: got %v, want ErrChainBroken", err)
			}
		})
	}
}

func TestChainTruncationNeedsTheHead(t *testing.T) {
	path, seq, head := writeChain(t, 5)
	lines := readLines(t, path)
	whole := strings.Join(lines, "")
	truncated := strings.Join(lines[:4], "")
	rewrittenTail, _ := forge(t, 5, hashOf(t, lines[3]), event(42))

	tests := []struct {
		name     string
		log      string
		wantSeq  uint64
		wantHash string
		wantN    int
		wantLine int // 0: no error
	}{
		{"intact log, current head", whole, seq, head, 5, 0},
		{"intact log, older head", whole, 3, hashOf(t, lines[2]), 5, 0},
		{"empty log, genesis head", "", 0, audit.Genesis, 0, 0},
		{"last record lost", truncated, seq, head, 4, 5},
		{"tail rewritten", strings.Join(lines[:4], "") + rewrittenTail, seq, head, 5, 5},
		{"everything lost", "", seq, head, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := audit.VerifyHead(strings.NewReader(tc.log), tc.wantSeq, tc.wantHash)
			if n != tc.wantN {
				t.Errorf("n: got %d, want %d", n, tc.wantN)
			}
			if tc.wantLine == 0 {
				if err != nil {
					t.Fatalf("VerifyHead: %v", err)
				}
				return
			}
			var ce *audit.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("VerifyHead: got %v, want a *ChainError wrapping ErrChainBroken", err)
			}
			if ce.Line != tc.wantLine {
				t.Errorf("Line: got %d, want %d (%v)", ce.Line, tc.wantLine, err)
			}
		})
	}

	n, err := audit.Verify(strings.NewReader(truncated))
	if err != nil || n != 4 {
		t.Errorf("Verify of a log truncated at a record boundary: got (%d, %v), want (4, nil): the file alone cannot tell", n, err)
	}
}

func TestChainReopenContinues(t *testing.T) {
	path, _, head := writeChain(t, 3)
	l, err := audit.OpenChain(path, audit.WithBatchSync())
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if seq, h := l.Head(); seq != 3 || h != head {
		t.Errorf("Head after reopen: got (%d, %s), want (3, %s)", seq, h, head)
	}
	for i := 4; i <= 6; i++ {
		if err := l.Emit(context.Background(), event(i)); err != nil {
			t.Fatalf("Emit %d: %v", i, err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	seq, head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := audit.VerifyHead(f, seq, head)
	if err != nil || n != 6 {
		t.Fatalf("VerifyHead: got (%d, %v), want (6, nil)", n, err)
	}
}

func TestChainLogErrors(t *testing.T) {
	path, _, _ := writeChain(t, 1)
	l, err := audit.OpenChain(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Emit(context.Background(), audit.Event{Type: audit.KeyCreated, Actor: "a"}); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Errorf("invalid event: got %v, want ErrInvalidEvent", err)
	}
	big := event(2)
	big.Reason = strings.Repeat("x", audit.MaxRecordSize)
	if err := l.Emit(context.Background(), big); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Errorf("oversized event: got %v, want ErrInvalidEvent", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Emit(context.Background(), event(2)); !errors.Is(err, audit.ErrSinkClosed) {
		t.Errorf("Emit after Close: got %v, want ErrSinkClosed", err)
	}
	if err := l.Flush(); !errors.Is(err, audit.ErrSinkClosed) {
		t.Errorf("Flush after Close: got %v, want ErrSinkClosed", err)
	}
	if err := l.Close(); !errors.Is(err, audit.ErrSinkClosed) {
		t.Errorf("second Close: got %v, want ErrSinkClosed", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := audit.Verify(f); err != nil || n != 1 {
		t.Errorf("Verify after refused events: got (%d, %v), want (1, nil)", n, err)
	}
}

func TestOpenChainRefusesSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := audit.OpenChain(path)
	if !errors.Is(err, audit.ErrFilePermissions) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("OpenChain of a 0644 file: got %v, want ErrFilePermissions", err)
	}
}
