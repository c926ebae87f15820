package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenkms/tokenkms/audit"
)

func ExampleVerify() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.log")

	l, err := audit.OpenChain(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, kid := range []string{"k1", "k2"} {
		l.Emit(context.Background(), audit.Event{
			ID: "ev-" + kid, Time: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
			Type: audit.KeyCreated, KID: kid, Actor: "alice", Outcome: audit.Success,
		})
	}
	l.Close()

	f, _ := os.Open(path)
	defer f.Close()
	n, err := audit.Verify(f)
	var ce *audit.ChainError
	switch {
	case errors.As(err, &ce):
		fmt.Printf("broken at line %d: %s\n", ce.Line, ce.Reason)
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Printf("ok: %d records\n", n)
	}
	// Output: ok: 2 records
}
