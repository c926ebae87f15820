// Command auditverify checks a hash-chained audit log written by
// audit.ChainLog.
//
//	go run ./examples/auditverify FILE
//	go run ./examples/auditverify -seq N -hash HEX FILE
//
// It prints "ok: N records" and exits 0 when every link holds, or names the
// first broken link and exits 1. With -seq and -hash (a head stored
// elsewhere, from ChainLog.Head) it also detects lost or rewritten final
// records. Usage and I/O errors exit 2.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tokenkms/tokenkms/audit"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("auditverify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seq := fs.Uint64("seq", 0, "sequence number of a head stored elsewhere (with -hash)")
	hash := fs.String("hash", "", "hash of the record -seq, as ChainLog.Head gave it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: auditverify [-seq N -hash HEX] FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || (*hash == "") != (*seq == 0) {
		fs.Usage()
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "auditverify:", err)
		return 2
	}
	defer f.Close()
	var n int
	if *hash != "" {
		n, err = audit.VerifyHead(f, *seq, *hash)
	} else {
		n, err = audit.Verify(f)
	}
	var ce *audit.ChainError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(stdout, "broken: line %d (seq %d): %s; %d good records before it\n", ce.Line, ce.Seq, ce.Reason, n)
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "auditverify:", err)
		return 2
	}
	fmt.Fprintf(stdout, "ok: %d records\n", n)
	return 0
}
