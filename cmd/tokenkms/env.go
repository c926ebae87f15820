package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
	"github.com/tokenkms/tokenkms/signer"
)

// fileConfig is the CLI's configuration file (--config): the key sets and
// secrets of the host, with the same policies, and the AWS KMS endpoint
// when a set lives there.
type fileConfig struct {
	Sets    []setConfig    `json:"sets"`
	Secrets []secretConfig `json:"secrets"`
	AWSKMS  *awsConfig     `json:"awskms"`
}

type setConfig struct {
	Name               string   `json:"name"`
	Purpose            string   `json:"purpose"`
	Algorithm          string   `json:"algorithm"`
	Backend            string   `json:"backend"`
	Owner              string   `json:"owner"`
	RotationPeriod     duration `json:"rotation_period"`
	LegalMaxRotation   duration `json:"legal_max_rotation"`
	RotateAfter        float64  `json:"rotate_after"`
	PrePublication     duration `json:"pre_publication"`
	Grace              duration `json:"grace"`
	MaxTokenLifetime   duration `json:"max_token_lifetime"`
	JWKSMaxAge         duration `json:"jwks_max_age"`
	Leeway             duration `json:"leeway"`
	UnsafeSkipApproval bool     `json:"unsafe_skip_approval"`
}

type secretConfig struct {
	Name           string   `json:"name"`
	Owner          string   `json:"owner"`
	Backend        string   `json:"backend"`
	RotationPeriod duration `json:"rotation_period"`
	PreviousWindow duration `json:"previous_window"`
}

type awsConfig struct {
	Region   string `json:"region"`
	Endpoint string `json:"endpoint"`
}

// duration is a time.Duration written as Go writes it ("2160h", "5m").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"90m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

func (c setConfig) policy() (keyring.SetPolicy, error) {
	p := keyring.SetPolicy{
		Name: c.Name, Algorithm: c.Algorithm, Backend: c.Backend, Owner: c.Owner,
		RotationPeriod: time.Duration(c.RotationPeriod), LegalMaxRotation: time.Duration(c.LegalMaxRotation),
		RotateAfter: c.RotateAfter, PrePublication: time.Duration(c.PrePublication), Grace: time.Duration(c.Grace),
		MaxTokenLifetime: time.Duration(c.MaxTokenLifetime), JWKSMaxAge: time.Duration(c.JWKSMaxAge),
		Leeway: time.Duration(c.Leeway), UnsafeSkipApproval: c.UnsafeSkipApproval,
	}
	switch c.Purpose {
	case "", "signing":
		p.Purpose = keyring.Signing
	case "encryption":
		p.Purpose = keyring.Encryption
	default:
		return p, fmt.Errorf("%w: set %q: purpose %q (want signing or encryption)", errUsage, c.Name, c.Purpose)
	}
	return p, nil
}

// settings are the global flags, each with its environment variable.
type settings struct {
	store, kekFile, auditPath, config string
	as, roles                         string
	json                              bool
	timeout                           time.Duration
}

// session is what a command works with: the keyring over the chosen
// store, as the acting principal, and what to close afterwards.
type session struct {
	ring   *keyring.Keyring
	ctx    context.Context
	pg     *pgstore.Store
	closer []func() error
}

func (s *session) close() error {
	var errs []error
	for i := len(s.closer) - 1; i >= 0; i-- {
		errs = append(errs, s.closer[i]())
	}
	return errors.Join(errs...)
}

func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// openPG connects to the store's database and brings its schema up to
// date (pgstore.Migrate is idempotent).
func openPG(ctx context.Context, dsn string) (*pgxpool.Pool, *pgstore.Store, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: PostgreSQL DSN: %w", errUsage, err)
	}
	if err := pgstore.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, pgstore.New(pool), nil
}

// principal reads the acting principal from --as and --roles.
func (st settings) principal() (keyring.Principal, error) {
	if st.as == "" {
		return keyring.Principal{}, fmt.Errorf("%w: who is acting? give --as ID (or TOKENKMS_PRINCIPAL) and --roles (or TOKENKMS_ROLES)", errUsage)
	}
	p := keyring.Principal{ID: st.as}
	for r := range strings.SplitSeq(st.roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			p.Roles = append(p.Roles, keyring.Role(r))
		}
	}
	if len(p.Roles) == 0 {
		return keyring.Principal{}, fmt.Errorf("%w: --roles (or TOKENKMS_ROLES) is empty: name the roles of %s", errUsage, st.as)
	}
	return p, nil
}

// open builds the keyring that the command acts on. It refuses a
// configuration that cannot keep what the keyring promises: no audit
// trail, or local keys without the host's key-encryption key.
func (st settings) open(ctx context.Context) (*session, error) {
	p, err := st.principal()
	if err != nil {
		return nil, err
	}
	cfg, err := st.readConfig()
	if err != nil {
		return nil, err
	}
	s := &session{ctx: keyring.WithPrincipal(ctx, p)}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	kc := keyring.Config{Providers: map[string]signer.Provider{}, Wrappers: map[string]signer.KeyWrapper{}}
	switch {
	case st.store == "":
		return nil, fmt.Errorf("%w: no store: give --store FILE or --store postgres://... (or TOKENKMS_STORE)", errUsage)
	case isPostgres(st.store):
		pool, pg, err := openPG(ctx, st.store)
		if err != nil {
			return nil, err
		}
		s.closer = append(s.closer, func() error { pool.Close(); return nil })
		s.pg = pg
		kc.Store, kc.Revocations, kc.Audit = pg, pg, pg
	default:
		fs, err := filestore.Open(strings.TrimPrefix(st.store, "file:"))
		if err != nil {
			return nil, err
		}
		s.closer = append(s.closer, fs.Close)
		kc.Store = fs
	}
	if st.auditPath != "" {
		chain, err := audit.OpenChain(st.auditPath)
		if err != nil {
			return nil, err
		}
		s.closer = append(s.closer, chain.Close)
		kc.Audit = chain
	}
	if kc.Audit == nil {
		return nil, fmt.Errorf("%w: no audit trail: with a file store give --audit FILE (or TOKENKMS_AUDIT), the host's hash-chained log", errUsage)
	}
	if err := st.backends(ctx, cfg, &kc); err != nil {
		return nil, err
	}
	for _, sc := range cfg.Sets {
		pol, err := sc.policy()
		if err != nil {
			return nil, err
		}
		kc.Sets = append(kc.Sets, pol)
	}
	for _, sc := range cfg.Secrets {
		kc.Secrets = append(kc.Secrets, keyring.SecretPolicy{Name: sc.Name, Owner: sc.Owner, Backend: sc.Backend,
			RotationPeriod: time.Duration(sc.RotationPeriod), PreviousWindow: time.Duration(sc.PreviousWindow)})
	}
	if s.ring, err = keyring.New(ctx, kc); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// backends sets up the providers and wrappers the configured sets and
// secrets use: "local" under the key-encryption key file, "awskms" over
// the configured endpoint.
func (st settings) backends(ctx context.Context, cfg fileConfig, kc *keyring.Config) error {
	used := map[string]bool{}
	for _, s := range cfg.Sets {
		used[cmp.Or(s.Backend, keyring.DefaultBackend)] = true
	}
	for _, s := range cfg.Secrets {
		used[cmp.Or(s.Backend, keyring.DefaultBackend)] = true
	}
	for b := range used {
		switch b {
		case keyring.DefaultBackend:
			w, err := st.kekWrapper()
			if err != nil {
				return err
			}
			lp, err := signer.NewLocalProvider(w)
			if err != nil {
				return err
			}
			kc.Providers[b], kc.Wrappers[b] = lp, w
		case "awskms":
			if cfg.AWSKMS == nil || cfg.AWSKMS.Region == "" {
				return fmt.Errorf("%w: a set uses backend awskms: give \"awskms\": {\"region\": ...} in the configuration", errUsage)
			}
			opts := kms.Options{Region: cfg.AWSKMS.Region, Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
				os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")))}
			if cfg.AWSKMS.Endpoint != "" {
				opts.BaseEndpoint = aws.String(cfg.AWSKMS.Endpoint)
			}
			p, err := awskms.NewProvider(kms.New(opts), nil)
			if err != nil {
				return err
			}
			kc.Providers[b] = p
		default:
			return fmt.Errorf("%w: backend %q: this CLI opens keys of the local and awskms backends only", errUsage, b)
		}
	}
	return nil
}

// kekWrapper reads the host's 32-byte key-encryption key (the file the
// host reads, mode 0600) and returns the AES-256-GCM wrapper over it.
func (st settings) kekWrapper() (signer.KeyWrapper, error) {
	if st.kekFile == "" {
		return nil, fmt.Errorf("%w: local keys need the host's key-encryption key: give --kek-file FILE (or TOKENKMS_KEK_FILE)", errUsage)
	}
	fi, err := os.Stat(st.kekFile)
	if err != nil {
		return nil, fmt.Errorf("%w: key-encryption key: %w", errUsage, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: key-encryption key %s must have mode 0600", errUsage, st.kekFile)
	}
	kek, err := os.ReadFile(st.kekFile)
	if err != nil {
		return nil, fmt.Errorf("%w: key-encryption key: %w", errUsage, err)
	}
	defer clear(kek)
	w, err := signer.NewAESWrapper(kek)
	if err != nil {
		return nil, fmt.Errorf("%w: key-encryption key %s: %w", errUsage, st.kekFile, err)
	}
	return w, nil
}

func (st settings) readConfig() (fileConfig, error) {
	var cfg fileConfig
	if st.config == "" {
		return cfg, fmt.Errorf("%w: no configuration: give --config FILE (or TOKENKMS_CONFIG) with the host's key sets", errUsage)
	}
	b, err := os.ReadFile(st.config)
	if err != nil {
		return cfg, fmt.Errorf("%w: configuration: %w", errUsage, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%w: configuration %s: %w", errUsage, st.config, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return cfg, fmt.Errorf("%w: configuration %s: more than one JSON value", errUsage, st.config)
	}
	if len(cfg.Sets) == 0 {
		return cfg, fmt.Errorf("%w: configuration %s names no key set", errUsage, st.config)
	}
	return cfg, nil
}
