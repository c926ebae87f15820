package jwks

import (
	"crypto/ecdh"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/verifier"
)

// SkipReason says why a RemoteSet does not use one key of a fetched set.
// The list is fixed; SkipPrivate and SkipSymmetric never leave a set in
// use: they refuse the whole document (ErrPrivateMaterial).
type SkipReason string

// The reasons a key is skipped, in the order they are checked.
const (
	SkipPrivate      SkipReason = "private key member"        // d, p, q, dp, dq, qi or oth
	SkipSymmetric    SkipReason = "symmetric key"             // kty "oct" or a "k" member
	SkipInvalid      SkipReason = "malformed key"             // not a JWK object, a member of the wrong type or encoding
	SkipNoKID        SkipReason = "no kid"                    // kid absent or empty
	SkipKeyType      SkipReason = "unsupported kty or crv"    // not EC P-256/384/521, RSA or OKP Ed25519
	SkipUse          SkipReason = "use not sig"               // "use" present and not "sig"
	SkipKeyOps       SkipReason = "key_ops without verify"    // "key_ops" present without "verify"
	SkipAlgorithm    SkipReason = "alg not allowed"           // "alg" outside the allowed list (HS*, none, encryption algorithms), or no allowed alg fits the key
	SkipInvalidPoint SkipReason = "EC point not on its curve" // x, y not a point of crv
	SkipWeakRSA      SkipReason = "RSA modulus under 2048 bits"
	SkipROCA         SkipReason = "RSA modulus with the ROCA fingerprint" // CVE-2017-15361
	SkipKeyMismatch  SkipReason = "key does not fit its alg"              // e.g. a P-384 key with "alg":"ES256"
	SkipDuplicateKID SkipReason = "duplicate kid"                         // two usable keys with one kid: neither is used
)

// level is the log level of a skipped key: Info for a key that is simply
// not a signature key RemoteSet reads (an encryption key, a type it does
// not implement), Warn for a key that is broken or dangerous.
func (r SkipReason) level() slog.Level {
	switch r {
	case SkipUse, SkipKeyOps, SkipKeyType:
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// SkippedKey is one key of the current set that RemoteSet does not use.
type SkippedKey struct {
	Index  int        `json:"index"`  // position in the document's "keys" array
	KID    string     `json:"kid"`    // clipped to 64 bytes; empty when the key has none
	Reason SkipReason `json:"reason"` // why
}

// secretMembers are the JWK members of private key material (RFC 7518
// §6.2.2, §6.3.2; RFC 8037 §2).
var secretMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth"}

// parsed is what a document gives: the usable keys, the skipped ones, and
// the reason of each skipped kid (unclipped) for VerificationKey.
type parsed struct {
	keys     map[string]verifier.Key
	skipped  []SkippedKey
	unusable map[string]SkipReason
}

// parse reads a JWK set. A document that is not a JWK set is ErrMalformed;
// one that holds any private or symmetric key material is
// ErrPrivateMaterial as a whole (its publisher leaks secrets: none of its
// keys is trusted); one without a usable key is ErrNoUsableKeys. Otherwise
// every key is kept or skipped with its reason.
func (s *RemoteSet) parse(body []byte) (*parsed, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("%w: no \"keys\" array", ErrMalformed)
	}
	members := make([]map[string]json.RawMessage, len(doc.Keys))
	kids := make([]string, len(doc.Keys))
	for i, raw := range doc.Keys {
		if json.Unmarshal(raw, &members[i]) != nil {
			continue
		}
		kids[i], _ = member[string](members[i], "kid")
		if r := secretReason(members[i]); r != "" {
			return nil, fmt.Errorf("%w: key %d (kid %q): %s", ErrPrivateMaterial, i, jose.Clip(kids[i]), r)
		}
	}
	p := &parsed{keys: make(map[string]verifier.Key, len(doc.Keys)), unusable: make(map[string]SkipReason)}
	dup := make(map[string]bool)
	var kept []int
	for i, raw := range doc.Keys {
		k, r := s.usable(raw, members[i], kids[i])
		if r != "" {
			p.skip(i, kids[i], r)
			continue
		}
		if _, ok := p.keys[k.KID]; ok {
			dup[k.KID] = true
		}
		p.keys[k.KID] = k
		kept = append(kept, i)
	}
	for _, i := range kept {
		if kid := kids[i]; dup[kid] {
			delete(p.keys, kid)
			p.skip(i, kid, SkipDuplicateKID)
			p.unusable[kid] = SkipDuplicateKID // whatever else the kid's other keys are
		}
	}
	slices.SortStableFunc(p.skipped, func(a, b SkippedKey) int { return a.Index - b.Index })
	if len(p.keys) == 0 {
		return nil, fmt.Errorf("%w: %d keys, all skipped%s", ErrNoUsableKeys, len(doc.Keys), summary(p.skipped))
	}
	return p, nil
}

// skip records key i as skipped; its kid keeps its first reason.
func (p *parsed) skip(i int, kid string, r SkipReason) {
	p.skipped = append(p.skipped, SkippedKey{Index: i, KID: jose.Clip(kid), Reason: r})
	if _, ok := p.unusable[kid]; kid != "" && !ok {
		p.unusable[kid] = r
	}
}

// summary quotes the first few skipped keys, for an error.
func summary(skipped []SkippedKey) string {
	const most = 4
	var b strings.Builder
	for i, k := range skipped {
		if i == most {
			fmt.Fprintf(&b, "; %d more", len(skipped)-most)
			break
		}
		fmt.Fprintf(&b, "; key %d (kid %q): %s", k.Index, k.KID, k.Reason)
	}
	return b.String()
}

// member reads the JSON member name of m as a T; ok is false when it is
// absent or of another type.
func member[T any](m map[string]json.RawMessage, name string) (v T, ok bool) {
	raw, ok := m[name]
	if !ok || json.Unmarshal(raw, &v) != nil {
		return v, false
	}
	return v, true
}

// secretReason reports private or symmetric key material in a JWK.
func secretReason(m map[string]json.RawMessage) SkipReason {
	if kty, _ := member[string](m, "kty"); kty == "oct" {
		return SkipSymmetric
	}
	if _, ok := m["k"]; ok {
		return SkipSymmetric
	}
	for _, name := range secretMembers {
		if _, ok := m[name]; ok {
			return SkipPrivate
		}
	}
	return ""
}

// curve is an EC curve RemoteSet reads and the byte size of a coordinate.
type curve struct {
	c    ecdh.Curve
	size int
}

// curves are the EC curves RemoteSet reads, by JWK crv name.
var curves = map[string]curve{"P-256": {ecdh.P256(), 32}, "P-384": {ecdh.P384(), 48}, "P-521": {ecdh.P521(), 66}}

// usable returns the verification key of one JWK, or why it is skipped.
// Without "alg", the key verifies every allowed algorithm its type fits:
// EC P-256 ES256, P-384 ES384, P-521 ES512, Ed25519 EdDSA, RSA the allowed
// RS* and PS* (the verifier's Policy narrows them further).
func (s *RemoteSet) usable(raw []byte, m map[string]json.RawMessage, kid string) (verifier.Key, SkipReason) {
	if m == nil {
		return verifier.Key{}, SkipInvalid
	}
	if kid == "" {
		return verifier.Key{}, SkipNoKID
	}
	kty, _ := member[string](m, "kty")
	crv, _ := member[string](m, "crv")
	switch {
	case kty == "RSA":
	case kty == "EC" && curves[crv].c != nil:
	case kty == "OKP" && crv == "Ed25519":
	default:
		return verifier.Key{}, SkipKeyType
	}
	if _, ok := m["use"]; ok {
		if use, _ := member[string](m, "use"); use != "sig" {
			return verifier.Key{}, SkipUse
		}
	}
	if _, ok := m["key_ops"]; ok {
		if ops, _ := member[[]string](m, "key_ops"); !slices.Contains(ops, "verify") {
			return verifier.Key{}, SkipKeyOps
		}
	}
	alg, hasAlg := member[string](m, "alg")
	if _, ok := m["alg"]; ok && (!hasAlg || !slices.Contains(s.algs, alg)) {
		return verifier.Key{}, SkipAlgorithm
	}
	jk, err := jwk.ParseKey(raw)
	if err != nil {
		return verifier.Key{}, parseFailure(kty, crv, m)
	}
	var pub any
	if err := jwk.Export(jk, &pub); err != nil {
		return verifier.Key{}, SkipInvalid
	}
	if k, ok := pub.(*rsa.PublicKey); ok {
		// jwx refuses short moduli too, but its minimum is a process-wide
		// setting the host may lower (jwk.WithMinRSAModulusBits).
		if k.N.BitLen() < jose.MinRSABits {
			return verifier.Key{}, SkipWeakRSA
		}
		if jose.CheckImportedRSA(k) != nil {
			return verifier.Key{}, SkipROCA
		}
	}
	var names []string
	for _, n := range s.algs {
		if a, _ := jose.Lookup(n); a.CheckKey(pub) == nil && (!hasAlg || n == alg) {
			names = append(names, n)
		}
	}
	switch {
	case len(names) == 0 && hasAlg:
		return verifier.Key{}, SkipKeyMismatch
	case len(names) == 0:
		return verifier.Key{}, SkipAlgorithm
	case len(names) == 1:
		return verifier.Key{KID: kid, Algorithm: names[0], Public: pub}, ""
	}
	return verifier.Key{KID: kid, Algorithms: names, Public: pub}, ""
}

// parseFailure names what is wrong with a JWK that jwx does not parse: an
// EC point off its curve, an RSA modulus too short, or else malformed.
func parseFailure(kty, crv string, m map[string]json.RawMessage) SkipReason {
	switch kty {
	case "EC":
		if offCurve(curves[crv], m) {
			return SkipInvalidPoint
		}
	case "RSA":
		n, _ := member[string](m, "n")
		if b, err := base64.RawURLEncoding.DecodeString(n); err == nil && len(b) > 0 && new(big.Int).SetBytes(b).BitLen() < jose.MinRSABits {
			return SkipWeakRSA
		}
	}
	return SkipInvalid
}

// offCurve reports whether the x and y of an EC JWK decode to coordinates
// of the curve's size that are not a point of it.
func offCurve(c curve, m map[string]json.RawMessage) bool {
	x, okx := member[string](m, "x")
	y, oky := member[string](m, "y")
	bx, errx := base64.RawURLEncoding.DecodeString(x)
	by, erry := base64.RawURLEncoding.DecodeString(y)
	if !okx || !oky || errx != nil || erry != nil || len(bx) != c.size || len(by) != c.size {
		return false
	}
	_, err := c.c.NewPublicKey(append(append([]byte{4}, bx...), by...))
	return err != nil
}
