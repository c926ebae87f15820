package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/adminhttp"
)

// A command declares its flags on fs and returns what runs it with the
// positional arguments.
type command func(fs *flag.FlagSet) func(ctx context.Context, c *cli, args []string) error

type group struct {
	names []string
	cmds  map[string]command
}

var commands = map[string]command{
	"report":         cmdReport,
	"create":         cmdCreate,
	"import":         cmdImport,
	"approve":        keyAction("approve", (*keyring.Keyring).Approve),
	"activate":       keyAction("activate", (*keyring.Keyring).Activate),
	"retire":         keyAction("retire", (*keyring.Keyring).Retire),
	"review":         keyAction("review", (*keyring.Keyring).Review),
	"approve-retire": keyAction("retirement approval", (*keyring.Keyring).ApproveRetire),
	"rotate":         cmdRotate,
	"emergency":      cmdEmergency,
}

var groups = map[string]group{
	"keys":     {[]string{"list", "show"}, map[string]command{"list": cmdKeysList, "show": cmdKeysShow}},
	"revoke":   {[]string{"jti", "kid"}, map[string]command{"jti": cmdRevokeJTI, "kid": cmdRevokeKID}},
	"schedule": {[]string{"approve", "withdraw"}, map[string]command{"approve": cmdScheduleApprove, "withdraw": cmdScheduleWithdraw}},
	"secrets":  {[]string{"rotate"}, map[string]command{"rotate": cmdSecretsRotate}},
	"audit":    {[]string{"verify"}, map[string]command{"verify": cmdAuditVerify}},
}

// withRing opens the keyring, runs f on it as the acting principal, and
// closes what it opened.
func (c *cli) withRing(ctx context.Context, f func(s *session) error) (err error) {
	s, err := c.st.open(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	return f(s)
}

// print writes v as JSON with --json, else what human writes.
func (c *cli) print(v any, human func(w io.Writer)) error {
	if c.st.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(c.stdout)
	return nil
}

func args(args []string, names ...string) error {
	if len(args) != len(names) {
		return fmt.Errorf("%w: want %s, got %d arguments", errUsage, strings.Join(names, " "), len(args))
	}
	return nil
}

func required(flags map[string]string) error {
	for name, v := range flags {
		if v == "" {
			return fmt.Errorf("%w: --%s is required", errUsage, name)
		}
	}
	return nil
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func keyTable(w io.Writer, keys []adminhttp.KeyView) {
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, []string{k.KID, k.Set, k.Purpose, k.Algorithm, k.State, k.Owner, when(k.CreatedAt), when(k.RotateBy), dash(k.ApprovedBy)})
	}
	table(w, "KID\tSET\tPURPOSE\tALG\tSTATE\tOWNER\tCREATED\tROTATE-BY\tAPPROVED-BY", rows)
}

func keyDetail(w io.Writer, k adminhttp.KeyView) {
	rows := [][]string{
		{"kid", k.KID}, {"set", k.Set}, {"purpose", k.Purpose}, {"algorithm", k.Algorithm}, {"state", k.State},
		{"owner", k.Owner}, {"created by", dash(k.CreatedBy)}, {"created", when(k.CreatedAt)}, {"rotate by", when(k.RotateBy)},
		{"approved by", dash(k.ApprovedBy)}, {"approved", when(k.ApprovedAt)}, {"activate at", when(k.ActivateAt)},
		{"activated", when(k.ActivatedAt)}, {"retiring since", when(k.RetiringAt)}, {"grace until", when(k.GraceUntil)},
		{"retired", when(k.RetiredAt)}, {"compromised", when(k.CompromisedAt)}, {"destroyed", when(k.DestroyedAt)},
		{"incident", dash(k.Incident)}, {"backend", k.Backend}, {"version", fmt.Sprint(k.Version)},
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	tw.Flush()
}

// stateList collects repeated --state flags.
type stateList []keyring.State

func (l *stateList) String() string { return fmt.Sprint(*l) }
func (l *stateList) Set(s string) error {
	st, err := adminhttp.ParseState(s)
	if err != nil {
		return err
	}
	*l = append(*l, st)
	return nil
}

func cmdKeysList(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	set := fs.String("set", "", "")
	var states stateList
	fs.Var(&states, "state", "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := args(a); err != nil {
			return err
		}
		return c.withRing(ctx, func(s *session) error {
			keys, err := s.ring.Keys(s.ctx, keyring.Filter{Set: *set, States: states})
			if err != nil {
				return err
			}
			out := adminhttp.NewKeyList(keys)
			return c.print(out, func(w io.Writer) { keyTable(w, out.Keys) })
		})
	}
}

// showKey prints the current record of kid.
func (c *cli) showKey(s *session, kid string) error {
	k, err := s.ring.Key(s.ctx, kid)
	if err != nil {
		return err
	}
	v := adminhttp.NewKeyView(k)
	return c.print(v, func(w io.Writer) { keyDetail(w, v) })
}

func cmdKeysShow(*flag.FlagSet) func(context.Context, *cli, []string) error {
	return func(ctx context.Context, c *cli, a []string) error {
		if err := args(a, "KID"); err != nil {
			return err
		}
		return c.withRing(ctx, func(s *session) error { return c.showKey(s, a[0]) })
	}
}

func cmdReport(*flag.FlagSet) func(context.Context, *cli, []string) error {
	return func(ctx context.Context, c *cli, a []string) error {
		if err := args(a); err != nil {
			return err
		}
		return c.withRing(ctx, func(s *session) error {
			rep, err := adminhttp.BuildReport(s.ctx, s.ring)
			if err != nil {
				return err
			}
			return c.print(rep, func(w io.Writer) { reportText(w, rep) })
		})
	}
}

// reportText prints the report: a line per key with what is left to do
// for it, then each set's standing schedule approval, then the totals.
func reportText(w io.Writer, rep adminhttp.Report) {
	rows := make([][]string, 0, len(rep.Keys))
	for _, l := range rep.Keys {
		rows = append(rows, []string{l.KID, l.Set, l.Purpose, l.State, l.Owner, when(l.CreatedAt), when(l.RotateBy),
			fmt.Sprint(l.DaysOverdue), dash(l.ApprovedBy), dash(strings.Join(reportNotes(l), "; "))})
	}
	table(w, "KID\tSET\tPURPOSE\tSTATE\tOWNER\tCREATED\tROTATE-BY\tDAYS-OVERDUE\tAPPROVED-BY\tNOTES", rows)
	fmt.Fprintln(w)
	rows = rows[:0]
	for _, s := range rep.Schedules {
		by := "none: rotations need an operator"
		if s.ApprovedBy != "" {
			by = s.ApprovedBy
		}
		rows = append(rows, []string{s.Set, by, when(s.ApprovedAt)})
	}
	table(w, "SET\tSCHEDULE-APPROVED-BY\tSINCE", rows)
	fmt.Fprintf(w, "%d keys, %d overdue, %d break-glass awaiting review, %d data keys to rewrap\n",
		len(rep.Keys), rep.Overdue, rep.ReviewPending, rep.NeedsRewrap)
}

// reportNotes says what marks a key and what is left to do for it.
func reportNotes(l adminhttp.ReportLine) []string {
	var notes []string
	if l.Standby {
		notes = append(notes, "standby")
	}
	if l.ReviewPending {
		notes = append(notes, "break-glass awaiting review ("+l.Incident+")")
	} else if l.Incident != "" {
		notes = append(notes, "incident "+l.Incident)
	}
	switch {
	case !l.RewrapPendingSince.IsZero():
		notes = append(notes, "rewrap pending since "+when(l.RewrapPendingSince))
	case l.NeedsRewrap:
		notes = append(notes, "rewrap pending")
	}
	if l.RetireApprovedBy != "" {
		notes = append(notes, "retirement approved by "+l.RetireApprovedBy)
	}
	if l.UnsafeAllowOverdue && l.DaysOverdue > 0 {
		notes = append(notes, "still in use past rotate-by (UnsafeAllowOverdue)")
	}
	return notes
}

// printCreated prints a key that a command created.
func (c *cli) printCreated(verb string, k keyring.Key) error {
	v := adminhttp.NewKeyView(k)
	return c.print(v, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s in set %s: %s, approval by another principal needed before activation\n", verb, k.KID, k.Set, k.State)
	})
}

func cmdCreate(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	set := fs.String("set", "", "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := errors.Join(args(a), required(map[string]string{"set": *set})); err != nil {
			return err
		}
		return c.withRing(ctx, func(s *session) error {
			k, err := s.ring.Create(s.ctx, *set)
			if err != nil {
				return err
			}
			return c.printCreated("created", k)
		})
	}
}

func cmdRotate(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	set := fs.String("set", "", "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := errors.Join(args(a), required(map[string]string{"set": *set})); err != nil {
			return err
		}
		return c.withRing(ctx, func(s *session) error {
			k, err := s.ring.Rotate(s.ctx, *set)
			if err != nil {
				return err
			}
			v := adminhttp.NewKeyView(k)
			return c.print(v, func(w io.Writer) {
				fmt.Fprintf(w, "rotation of %s started: successor %s published, may activate from %s\n", k.Set, k.KID, when(k.ActivateAt))
			})
		})
	}
}

func cmdImport(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	set := fs.String("set", "", "")
	keyFile := fs.String("key", "", "")
	ref := fs.String("ref", "", "")
	kid := fs.String("kid", "", "")
	created := fs.String("created-at", "", "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := errors.Join(args(a), required(map[string]string{"set": *set})); err != nil {
			return err
		}
		if (*keyFile == "") == (*ref == "") {
			return fmt.Errorf("%w: give either --key FILE or --ref REF", errUsage)
		}
		req := adminhttp.ImportRequest{KID: *kid, Ref: *ref}
		if *created != "" {
			t, err := time.Parse(time.RFC3339, *created)
			if err != nil {
				return fmt.Errorf("%w: --created-at: want RFC 3339, such as 2025-06-01T00:00:00Z", errUsage)
			}
			req.CreatedAt = t
		}
		if *keyFile != "" {
			pem, err := c.readInput(*keyFile)
			if err != nil {
				return err
			}
			req.PrivateKey = string(pem)
			clear(pem)
		}
		in, err := req.KeyImport()
		if err != nil {
			return err
		}
		return c.withRing(ctx, func(s *session) error {
			k, err := s.ring.Import(s.ctx, *set, in)
			if err != nil {
				return err
			}
			return c.printCreated("imported", k)
		})
	}
}

// readInput reads a file, or stdin for "-".
func (c *cli) readInput(name string) ([]byte, error) {
	if name == "-" {
		if err := c.stdinNotTerminal("the private key"); err != nil {
			return nil, err
		}
		return io.ReadAll(io.LimitReader(c.stdin, 1<<20))
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return b, nil
}

// keyAction is a command that acts on one kid and prints its new record.
func keyAction(verb string, act func(*keyring.Keyring, context.Context, string) error) command {
	return func(*flag.FlagSet) func(context.Context, *cli, []string) error {
		return func(ctx context.Context, c *cli, a []string) error {
			if err := args(a, "KID"); err != nil {
				return err
			}
			return c.withRing(ctx, func(s *session) error {
				if err := act(s.ring, s.ctx, a[0]); err != nil {
					return err
				}
				if !c.st.json {
					fmt.Fprintf(c.stdout, "%s: %s done\n", a[0], verb)
				}
				return c.showKey(s, a[0])
			})
		}
	}
}

func cmdEmergency(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	incident := fs.String("incident", "", "")
	reason := fs.String("reason", "", "")
	severity := fs.String("severity", "", "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := errors.Join(args(a, "KID"), required(map[string]string{"incident": *incident})); err != nil {
			return err
		}
		return c.withRing(ctx, func(s *session) error {
			fresh, err := s.ring.EmergencyRotate(s.ctx, a[0], keyring.Incident{ID: *incident, Reason: *reason, Severity: *severity})
			res := adminhttp.NewEmergencyResult(a[0], fresh)
			if err != nil && res.Fresh == nil {
				return err
			}
			perr := c.print(res, func(w io.Writer) {
				fmt.Fprintf(w, "%s compromised under incident %s: frozen, revoked\n", a[0], *incident)
				if res.Fresh != nil {
					fmt.Fprintf(w, "fresh key %s active in set %s (break-glass: a second person reviews it)\n", fresh.KID, fresh.Set)
				}
			})
			return errors.Join(err, perr)
		})
	}
}

func cmdRevokeJTI(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	until := fs.String("until", "", "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := args(a, "JTI"); err != nil {
			return err
		}
		end := time.Now().Add(adminhttp.DefaultJTIRevocation)
		if *until != "" {
			t, err := time.Parse(time.RFC3339, *until)
			if err != nil {
				return fmt.Errorf("%w: --until: want RFC 3339", errUsage)
			}
			end = t
		}
		return c.withRing(ctx, func(s *session) error {
			if err := s.ring.RevokeJTI(s.ctx, a[0], end); err != nil {
				return err
			}
			return c.print(adminhttp.RevokeJTIRequest{JTI: a[0], Until: end.UTC()}, func(w io.Writer) {
				fmt.Fprintf(w, "jti %s revoked until %s\n", a[0], when(end))
			})
		})
	}
}

func cmdRevokeKID(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	before := fs.String("issued-before", "", "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := args(a, "KID"); err != nil {
			return err
		}
		cut := time.Now()
		if *before != "" {
			t, err := time.Parse(time.RFC3339, *before)
			if err != nil {
				return fmt.Errorf("%w: --issued-before: want RFC 3339", errUsage)
			}
			cut = t
		}
		return c.withRing(ctx, func(s *session) error {
			if err := s.ring.RevokeKID(s.ctx, a[0], cut); err != nil {
				return err
			}
			return c.print(adminhttp.RevokeKIDRequest{KID: a[0], IssuedBefore: cut.UTC()}, func(w io.Writer) {
				fmt.Fprintf(w, "tokens of kid %s issued before %s revoked\n", a[0], when(cut))
			})
		})
	}
}

// scheduleAnswer is what schedule approve and schedule withdraw print.
type scheduleAnswer struct {
	Set         string `json:"set"`
	ApprovedBy  string `json:"approved_by,omitempty"`
	WithdrawnBy string `json:"withdrawn_by,omitempty"`
}

func cmdScheduleApprove(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	return scheduleAction(fs, (*keyring.Keyring).ApproveSchedule, func(c *cli, set string) (scheduleAnswer, string) {
		return scheduleAnswer{Set: set, ApprovedBy: c.st.as}, fmt.Sprintf("scheduled rotation of %s approved by %s", set, c.st.as)
	})
}

func cmdScheduleWithdraw(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	return scheduleAction(fs, (*keyring.Keyring).WithdrawSchedule, func(c *cli, set string) (scheduleAnswer, string) {
		return scheduleAnswer{Set: set, WithdrawnBy: c.st.as},
			fmt.Sprintf("standing approval of %s withdrawn by %s: its rotations need an operator again", set, c.st.as)
	})
}

// scheduleAction runs act on the set given by --set and prints what
// answer says.
func scheduleAction(fs *flag.FlagSet, act func(*keyring.Keyring, context.Context, string) error,
	answer func(c *cli, set string) (scheduleAnswer, string)) func(context.Context, *cli, []string) error {
	set := fs.String("set", "", "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := errors.Join(args(a), required(map[string]string{"set": *set})); err != nil {
			return err
		}
		return c.withRing(ctx, func(s *session) error {
			if err := act(s.ring, s.ctx, *set); err != nil {
				return err
			}
			v, line := answer(c, *set)
			return c.print(v, func(w io.Writer) { fmt.Fprintln(w, line) })
		})
	}
}

// stdinNotTerminal refuses to read what (secret material) from a
// terminal, which would show it on the screen as it is typed.
func (c *cli) stdinNotTerminal(what string) error {
	f, ok := c.stdin.(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return fmt.Errorf("%w: %s is read from standard input, which is a terminal or device here: typing it would show it on the screen; pipe it in (from a file or a secret manager)", errUsage, what)
	}
	return nil
}

func cmdSecretsRotate(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	leak := fs.Bool("leak", false, "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := args(a, "NAME"); err != nil {
			return err
		}
		if err := c.stdinNotTerminal("the new value"); err != nil {
			return err
		}
		value, err := io.ReadAll(io.LimitReader(c.stdin, keyring.MaxSecretSize+2))
		if err != nil {
			return fmt.Errorf("%w: read the new value from stdin: %w", errUsage, err)
		}
		defer clear(value)
		value = bytes.TrimSuffix(bytes.TrimSuffix(value, []byte("\n")), []byte("\r"))
		reason := ""
		if *leak {
			reason = keyring.ReasonLeak
		}
		return c.withRing(ctx, func(s *session) error {
			v, err := s.ring.RotateSecret(s.ctx, a[0], value, reason)
			if err != nil {
				return err
			}
			sv := adminhttp.NewSecretView(v)
			return c.print(sv, func(w io.Writer) {
				fmt.Fprintf(w, "secret %s now at version %d", sv.Name, sv.Version)
				if *leak {
					fmt.Fprint(w, "; previous versions revoked")
				}
				fmt.Fprintln(w)
			})
		})
	}
}

func cmdAuditVerify(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	seq := fs.Uint64("seq", 0, "")
	hash := fs.String("hash", "", "")
	return func(ctx context.Context, c *cli, a []string) error {
		if err := args(a); err != nil {
			return err
		}
		if (*hash == "") != (*seq == 0) {
			return fmt.Errorf("%w: --seq and --hash go together", errUsage)
		}
		n, err := c.verifyAudit(ctx, *seq, *hash)
		if err != nil && !errors.Is(err, audit.ErrChainBroken) {
			return err
		}
		res := adminhttp.AuditResult{OK: err == nil, Records: n}
		var ce *audit.ChainError
		switch {
		case errors.As(err, &ce):
			res.Broken = fmt.Sprintf("line %d (seq %d): %s", ce.Line, ce.Seq, ce.Reason)
		case err != nil:
			res.Broken = err.Error()
		}
		perr := c.print(res, func(w io.Writer) {
			if res.OK {
				fmt.Fprintf(w, "ok: %d records\n", n)
			} else {
				fmt.Fprintf(w, "broken: %s; %d good records before it\n", res.Broken, n)
			}
		})
		return errors.Join(err, perr)
	}
}

// verifyAudit checks the chain file given by --audit, else the audit
// table of the PostgreSQL store.
func (c *cli) verifyAudit(ctx context.Context, seq uint64, hash string) (int, error) {
	switch {
	case c.st.auditPath != "":
		f, err := os.Open(c.st.auditPath)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errUsage, err)
		}
		defer f.Close()
		if hash != "" {
			return audit.VerifyHead(f, seq, hash)
		}
		return audit.Verify(f)
	case isPostgres(c.st.store):
		if hash != "" {
			return 0, fmt.Errorf("%w: --seq and --hash check a chain file (--audit); PostgreSQL keeps its own head", errUsage)
		}
		pool, pg, err := openPG(ctx, c.st.store)
		if err != nil {
			return 0, err
		}
		defer pool.Close()
		return pg.VerifyAudit(ctx)
	}
	return 0, fmt.Errorf("%w: give --audit FILE (a chain log) or --store postgres://...", errUsage)
}
