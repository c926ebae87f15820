// Package tokenkms issues and verifies RFC 9068 JWT access tokens under a
// normative key-management standard: every signing key has a unique kid,
// an owner, a creation and a target rotation date; keys rotate on schedule
// (at most every 90 days) through pre-publication and a bounded grace
// window; a compromised key is frozen, replaced and revoked in one call;
// every action is authorised by role and audited; private keys never leave
// their home (wrapped local keys, AWS KMS, Google Cloud KMS, a PKCS#11 HSM).
//
// docs/COMPLIANCE.md in the repository restates each rule of the standard
// (R1.1 to R6.3, tests T1 to T5, the numbers the package documentation
// cites) and names the code that implements it and the tests that prove it.
//
// This root package holds only Claims, the vocabulary shared by issuance
// and verification. The work is done by its sub-packages:
//
//	keyring    the key lifecycle, rotation, emergency rotation, access control
//	signer     Signer/Provider/KeyWrapper, local keys, the Issuer
//	verifier   the Verifier and its Policy, revocation, RFC 6750 middleware
//	jwks       the JWKS handler and a JWKS client (RemoteSet)
//	audit      audit events and sinks, a hash-chained log
//	kmsadapter AWS KMS, Google Cloud KMS and PKCS#11 providers and wrappers
//
// The whole flow, on in-memory defaults:
//
//	ring, _ := keyring.New(ctx, keyring.Config{
//		Audit: auditSink, // default: in memory
//		Sets:  []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity"}},
//	})
//	k, _ := ring.Create(keyring.WithPrincipal(ctx, alice), "access-tokens") // issuer role
//	_ = ring.Approve(keyring.WithPrincipal(ctx, bob), k.KID)                 // approver role
//	_ = ring.Activate(keyring.WithPrincipal(ctx, carol), k.KID)              // deployer role
//
//	issuer, _ := signer.NewIssuer(ring, signer.IssuerConfig{
//		Set: "access-tokens", Issuer: "https://core.example", Audience: []string{"api"},
//		DefaultLifetime: 15 * time.Minute, MaxLifetime: time.Hour,
//	})
//	token, _ := issuer.Issue(ctx, tokenkms.Claims{Subject: "user-1", ClientID: "web", PrincipalType: "user", Scope: []string{"read"}})
//
//	v, _ := verifier.New(ring, verifier.Policy{Issuer: "https://core.example", Audience: []string{"api"}})
//	claims, err := v.Verify(ctx, token)
//	mux.Handle("/.well-known/jwks.json", jwks.NewHandler(ring))
//	mux.Handle("/api/", verifier.Middleware(v)(apiHandler))
//	go ring.Run(ctx) // scheduled rotation and retirement, every Config.TickInterval
//
// See examples/quickstart for the same flow as a running program.
package tokenkms
