// Command tokenkms is the operator's tool for a tokenkms keyring: list and
// report keys, create, approve, activate, rotate, retire and import them,
// approve a rotated data key's retirement, handle an incident (emergency
// rotation, review of its break-glass key, revocation), approve and
// withdraw rotation schedules, rotate secrets, and verify the audit trail. It works on the
// host's own store (a filestore file or PostgreSQL), as a named principal
// whose every action the keyring authorises and audits.
//
//	go install github.com/tokenkms/tokenkms/cmd/tokenkms@latest
//
//	export TOKENKMS_STORE=postgres://keys@db/core TOKENKMS_CONFIG=/etc/core/tokenkms.json
//	export TOKENKMS_KEK_FILE=/etc/core/kek TOKENKMS_PRINCIPAL=sec-bob TOKENKMS_ROLES=approver
//	tokenkms report
//	tokenkms approve KID
//	tokenkms emergency KID --incident INC-42 --reason "key in a public repo"
//
// Run tokenkms help for the commands, the flags and the exit codes.
//
// # Security
//
// The CLI acts as the principal it is told (--as, --roles): it does not
// authenticate the operator. What guards the keys is access to the store's
// credentials, the key-encryption key and the audit log; the name is what
// the audit trail records and what separation of duties (an approver is
// not the creator, a deployer not the approver) is checked against. Where
// operators must be authenticated, serve keyring/adminhttp from the host
// behind its own authentication instead. Private keys read by import are
// sealed at once and never printed; secret values are read from stdin and
// never printed.
//
// It is pure Go (go install works with CGO_ENABLED=0): it opens keys of
// the local and awskms backends. A host whose sets live in Cloud KMS or a
// PKCS#11 HSM administers them through keyring/adminhttp.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring/adminhttp"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1 // anything else: a corrupt store, an unexpected error
	exitUsage       = 2 // bad command line, flags or configuration
	exitDenied      = 3 // the principal may not do this (or would approve its own change)
	exitNotFound    = 4 // no such key, set or secret
	exitConflict    = 5 // the key's state refuses the action
	exitRefused     = 6 // the input is refused: weak or unsuitable key, unreadable key, policy
	exitUnavailable = 7 // store, audit sink or key backend unavailable, or the store locked by the host
	exitBroken      = 8 // audit verify: the chain is broken
)

// errUsage marks errors of the command line and configuration.
var errUsage = errors.New("usage")

const usage = `usage: tokenkms [FLAGS] COMMAND [ARGS] [FLAGS]

Keys
  keys list [--set S] [--state STATE]...   list key records
  keys show KID                            one key record
  report                                   owner, rotation date, days overdue, approvals, standby keys,
                                           break-glass keys awaiting review, data keys to rewrap, and each
                                           set's standing schedule approval
  create --set S                           generate a Pending key (role issuer)
  import --set S (--key FILE | --ref REF) [--kid KID] [--created-at RFC3339]
                                           bring an existing signing key in as a Pending key (role issuer):
                                           FILE holds a PEM or JWK private key ("-": stdin), REF an AWS KMS key ARN
  approve KID                              approve a Pending key (role approver; not its creator)
  activate KID                             activate an approved key (role deployer)
  rotate --set S                           publish the successor of the set's Active key (role issuer)
  retire KID                               retire a Pending or Retiring key now (role security-officer)
  approve-retire KID                       approve retiring a rotated data key whose data was rewrapped (role
                                           approver); a security officer then retires it
  schedule approve --set S                 standing approval of the set's scheduled rotations (role approver)
  schedule withdraw --set S                withdraw it: the set's rotations need an operator again (role approver)

Incidents
  emergency KID --incident ID [--reason TEXT] [--severity S]
                                           compromise KID: freeze, revoke, activate a fresh key (role security-officer)
  review KID                               a second person reviews a break-glass key (role approver or
                                           security-officer; not who ran the emergency rotation)
  revoke jti JTI [--until RFC3339]         revoke one token, by default for 24 h (PostgreSQL store only)
  revoke kid KID [--issued-before RFC3339] revoke a kid's tokens issued before a time, default now (PostgreSQL only)
  secrets rotate NAME [--leak]             new value read from stdin; --leak revokes the old one at once

Audit
  audit verify [--audit FILE | --store postgres://...] [--seq N --hash HEX]
                                           verify the hash-chained audit trail

Flags (each also from its environment variable)
  --store FILE|postgres://...   TOKENKMS_STORE     the host's key store: a filestore file (the host must be
                                                   stopped: it holds the file's lock) or PostgreSQL
  --config FILE                 TOKENKMS_CONFIG    the host's key sets and secrets (JSON, see the README)
  --kek-file FILE               TOKENKMS_KEK_FILE  the host's 32-byte key-encryption key (mode 0600), for
                                                   local keys and secrets
  --audit FILE                  TOKENKMS_AUDIT     the host's hash-chained audit log (required with a file
                                                   store; with PostgreSQL events go to its audit table)
  --as ID                       TOKENKMS_PRINCIPAL the acting principal, recorded in the audit trail
  --roles R1,R2                 TOKENKMS_ROLES     its roles: issuer, approver, deployer, security-officer, core
  --json                                           JSON output (the admin API's shapes)
  --timeout D                                      bound on the whole command (default 30s)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
                                                   credentials for sets on the awskms backend (the
                                                   configuration's "awskms": {"region", "endpoint"})

Exit codes
  0 done   1 failure   2 usage   3 denied   4 not found   5 refused by the key's state
  6 input refused (weak key, policy)   7 store, audit or backend unavailable (or store locked)
  8 audit chain broken
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// cli is one invocation: its streams and the global settings.
type cli struct {
	st             settings
	stdin          io.Reader
	stdout, stderr io.Writer
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("tokenkms", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.st.store, "store", getenv("TOKENKMS_STORE"), "")
	fs.StringVar(&c.st.config, "config", getenv("TOKENKMS_CONFIG"), "")
	fs.StringVar(&c.st.kekFile, "kek-file", getenv("TOKENKMS_KEK_FILE"), "")
	fs.StringVar(&c.st.auditPath, "audit", getenv("TOKENKMS_AUDIT"), "")
	fs.StringVar(&c.st.as, "as", getenv("TOKENKMS_PRINCIPAL"), "")
	fs.StringVar(&c.st.roles, "roles", getenv("TOKENKMS_ROLES"), "")
	fs.BoolVar(&c.st.json, "json", false, "")
	fs.DurationVar(&c.st.timeout, "timeout", 30*time.Second, "")
	// The global flags may also come before the command.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return c.fail(fmt.Errorf("%w: %w", errUsage, err))
	}
	args = fs.Args()
	if len(args) == 0 || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	rest := args[1:]
	if sub, isGroup := groups[args[0]]; isGroup {
		if len(rest) == 0 {
			return c.fail(fmt.Errorf("%w: %s needs a subcommand: %s", errUsage, args[0], strings.Join(sub.names, ", ")))
		}
		cmd, ok = sub.cmds[rest[0]]
		rest = rest[1:]
	}
	if !ok {
		return c.fail(fmt.Errorf("%w: unknown command %q; run tokenkms help", errUsage, strings.Join(args[:min(2, len(args))], " ")))
	}
	exec := cmd(fs)
	pos, err := parse(fs, rest)
	if err != nil {
		return c.fail(fmt.Errorf("%w: %w", errUsage, err))
	}
	ctx, cancel := context.WithTimeout(ctx, c.st.timeout)
	defer cancel()
	if err := exec(ctx, c, pos); err != nil {
		return c.fail(err)
	}
	return exitOK
}

// parse parses flags wherever they stand among the positional arguments
// ("approve KID --json" as well as "approve --json KID"). An argument is a
// flag only if it names one of fs: a kid may start with '-' (base64url),
// and "--" ends the flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		f := fs.Lookup(name)
		if !strings.HasPrefix(a, "-") || f == nil {
			pos = append(pos, a)
			continue
		}
		one := []string{a}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
			if i+1 == len(args) {
				return nil, fmt.Errorf("flag %s needs a value", a)
			}
			i++
			one = append(one, args[i])
		}
		if err := fs.Parse(one); err != nil {
			return nil, err
		}
	}
	return pos, nil
}

// fail reports err and returns its exit code.
func (c *cli) fail(err error) int {
	code := exitCode(err)
	if c.st.json {
		body := adminhttp.ErrorBody{Error: err.Error(), Code: adminhttp.Code(err)}
		if errors.Is(err, errUsage) {
			body.Code = "usage"
		}
		json.NewEncoder(c.stderr).Encode(body)
	} else {
		fmt.Fprintln(c.stderr, "tokenkms:", err)
	}
	return code
}

// exitCode maps an error to the exit codes above, through the status the
// admin API gives it.
func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return exitUsage
	}
	if errors.Is(err, audit.ErrChainBroken) {
		return exitBroken
	}
	switch s := adminhttp.Status(err); {
	case s == http.StatusBadRequest:
		return exitUsage
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return exitDenied
	case s == http.StatusNotFound:
		return exitNotFound
	case s == http.StatusConflict:
		return exitConflict
	case s == http.StatusUnprocessableEntity:
		return exitRefused
	case s == http.StatusTooManyRequests || s >= 502:
		return exitUnavailable
	}
	return exitFailure
}
