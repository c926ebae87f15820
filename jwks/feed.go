package jwks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// FeedMediaType is the Content-Type of a revocation feed document.
const FeedMediaType = "application/vnd.tokenkms.revocations"

// FeedType is the "typ" of a feed document's JWS header. It keeps a feed
// document from ever passing for an access token (at+jwt), and the
// reverse.
const FeedType = "tokenkms-revocations+jws"

// A feed document is a compact JWS, a line feed, then the binary payload.
// The JWS signs the manifest, which binds the payload by its SHA-256; the
// payload is, big-endian: for each kid policy, a uint16 length, the kid,
// the cutoff as int64 Unix seconds and uint32 nanoseconds; then for each
// jti, its 8-byte digest and its until as uint32 seconds after Base.
const (
	kidEntryFixed = 2 + 8 + 4
	jtiEntrySize  = 8 + 4
	maxKIDLen     = math.MaxUint16
)

// manifest is the signed part of a feed document.
type manifest struct {
	Issuer string `json:"iss,omitempty"`
	Epoch  string `json:"epoch"` // hex
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	Full   bool   `json:"full"`
	TS     int64  `json:"ts"`   // Unix milliseconds when signed: the document's freshness
	Base   int64  `json:"base"` // Unix seconds the jti untils count from
	KIDs   int    `json:"kids"`
	JTIs   int    `json:"jtis"`
	Size   int    `json:"size"`   // payload bytes
	Digest string `json:"sha256"` // base64url SHA-256 of the payload
}

// cursor is a client's position in the feed: the epoch of the issuer's
// list and the last change applied.
type cursor struct {
	epoch, seq uint64
}

func (c cursor) String() string {
	return strconv.FormatUint(c.epoch, 16) + "." + strconv.FormatUint(c.seq, 10)
}

// parseCursor reads "EPOCH.SEQ" (epoch in hex); "" is the zero cursor.
func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	e, q, ok := strings.Cut(s, ".")
	epoch, err1 := strconv.ParseUint(e, 16, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return cursor{}, fmt.Errorf("%w: bad cursor", ErrFeedRequest)
	}
	return cursor{epoch, seq}, nil
}

// payload is an encoded change set and the counts its manifest states.
type payload struct {
	body       []byte
	base       int64
	kids, jtis int
	digest     string
}

// encodePayload encodes c; jti entries that expired before base are left
// out.
func encodePayload(c verifier.RevocationChanges, base int64) (*payload, error) {
	p := &payload{base: base}
	n := 0
	for _, k := range c.KIDs {
		n += kidEntryFixed + len(k.KID)
	}
	b := make([]byte, 0, n+len(c.JTIs)*jtiEntrySize)
	for _, k := range c.KIDs {
		if len(k.KID) > maxKIDLen {
			return nil, fmt.Errorf("%w: kid of %d bytes", ErrKey, len(k.KID))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(k.KID)))
		b = append(b, k.KID...)
		b = binary.BigEndian.AppendUint64(b, uint64(k.IssuedBefore.Unix()))
		b = binary.BigEndian.AppendUint32(b, uint32(k.IssuedBefore.Nanosecond()))
		p.kids++
	}
	for _, j := range c.JTIs {
		off := j.Until - base
		if off <= 0 {
			continue
		}
		b = append(b, j.Digest[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(min(off, math.MaxUint32)))
		p.jtis++
	}
	p.body = b
	sum := sha256.Sum256(b)
	p.digest = string(jose.AppendEncode(nil, sum[:]))
	return p, nil
}

// sign returns the JWS of the manifest of p for changes c, signed at now
// with the Active key of set.
func sign(ctx context.Context, keys signer.ActiveKeys, set, issuer string, c verifier.RevocationChanges, p *payload, now time.Time) ([]byte, error) {
	s, err := keys.Signer(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("jwks: no signing key for set %q: %w", set, err)
	}
	alg, ok := jose.Lookup(s.Algorithm())
	if !ok {
		return nil, fmt.Errorf("%w: signing key %s has algorithm %q", ErrKey, s.KID(), s.Algorithm())
	}
	m, err := json.Marshal(manifest{
		Issuer: issuer, Epoch: strconv.FormatUint(c.Epoch, 16), From: c.From, To: c.To, Full: c.Full,
		TS: now.UnixMilli(), Base: p.base, KIDs: p.kids, JTIs: p.jtis, Size: len(p.body), Digest: p.digest,
	})
	if err != nil {
		return nil, fmt.Errorf("jwks: encode manifest: %w", err)
	}
	h, err := jose.AppendHeader(nil, alg.Name, s.KID(), FeedType)
	if err != nil {
		return nil, fmt.Errorf("%w: signing key id: %w", ErrKey, err)
	}
	jws := jose.AppendEncode(nil, h)
	jws = append(jws, '.')
	jws = jose.AppendEncode(jws, m)
	sig, err := s.Sign(ctx, jws)
	if err != nil {
		return nil, fmt.Errorf("jwks: sign revocation document: %w", err)
	}
	jws = append(jws, '.')
	return jose.AppendEncode(jws, sig), nil
}

// document is a feed document whose signature checked out, and its
// decoded content.
type document struct {
	kid   string // the key that signed it
	m     manifest
	epoch uint64
	kids  []verifier.KIDRevocation
	jtis  []verifier.JTIRevocation
}

// keyRefresher is a KeySource that can refetch its keys (*RemoteSet), for
// a document signed by a key it does not know yet (a fresh key after an
// emergency rotation).
type keyRefresher interface {
	Refresh(ctx context.Context) error
}

// verifyDocument checks body's signature with a key from keys (refresh,
// when not nil, is called once if the kid is unknown), then its manifest
// and payload, and decodes it. Nothing in the document is trusted before
// the signature verifies, except the header's alg and kid that select the
// key.
func verifyDocument(ctx context.Context, body []byte, keys verifier.KeySource, refresh func(context.Context) error, refused func(kid string) bool) (*document, error) {
	jws, pl, ok := bytes.Cut(body, []byte{'\n'})
	if !ok {
		return nil, fmt.Errorf("%w: no payload", ErrFeedDocument)
	}
	parts, err := jose.SplitCompact(jws)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFeedDocument, err)
	}
	hjson, err := jose.AppendDecode(nil, parts.Header)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrFeedDocument, err)
	}
	h, err := jose.ParseHeader(string(hjson))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrFeedDocument, err)
	}
	switch {
	case h.Refused != 0:
		return nil, fmt.Errorf("%w: header parameter %q", ErrFeedDocument, h.Refused.First())
	case h.Typ != FeedType:
		return nil, fmt.Errorf("%w: typ %q", ErrFeedDocument, jose.Clip(h.Typ))
	case h.KID == "":
		return nil, fmt.Errorf("%w: no kid", ErrFeedDocument)
	case refused(h.KID):
		return nil, fmt.Errorf("%w: kid %q is revoked", ErrFeedSignature, jose.Clip(h.KID))
	}
	alg, ok := jose.Lookup(h.Alg)
	if !ok {
		return nil, fmt.Errorf("%w: algorithm %q", ErrFeedSignature, jose.Clip(h.Alg))
	}
	key, err := keys.VerificationKey(ctx, h.KID)
	if err != nil && refresh != nil && errors.Is(err, verifier.ErrUnknownKID) {
		if rerr := refresh(ctx); rerr == nil {
			key, err = keys.VerificationKey(ctx, h.KID)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: kid %q: %w", ErrFeedSignature, jose.Clip(h.KID), err)
	}
	if !key.Allows(alg.Name) {
		return nil, fmt.Errorf("%w: document alg %s is not one of key %q's", ErrFeedSignature, alg.Name, jose.Clip(h.KID))
	}
	sig, err := jose.AppendDecode(nil, parts.Signature)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrFeedDocument, err)
	}
	if err := alg.Verify(key.Public, parts.SigningInput, sig); err != nil {
		return nil, fmt.Errorf("%w: kid %q", ErrFeedSignature, jose.Clip(h.KID))
	}

	// Signed from here on.
	mjson, err := jose.AppendDecode(nil, parts.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrFeedDocument, err)
	}
	d := &document{kid: h.KID}
	if err := json.Unmarshal(mjson, &d.m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrFeedDocument, err)
	}
	if d.epoch, err = strconv.ParseUint(d.m.Epoch, 16, 64); err != nil || d.epoch == 0 {
		return nil, fmt.Errorf("%w: manifest epoch", ErrFeedDocument)
	}
	sum := sha256.Sum256(pl)
	switch {
	case d.m.To < d.m.From || d.m.Full != (d.m.From == 0):
		return nil, fmt.Errorf("%w: manifest range %d..%d", ErrFeedDocument, d.m.From, d.m.To)
	case d.m.Size != len(pl):
		return nil, fmt.Errorf("%w: payload of %d bytes, manifest says %d", ErrFeedDocument, len(pl), d.m.Size)
	case d.m.Digest != string(jose.AppendEncode(nil, sum[:])):
		return nil, fmt.Errorf("%w: payload digest mismatch", ErrFeedDocument)
	case d.m.KIDs < 0 || d.m.JTIs < 0 || d.m.JTIs > len(pl)/jtiEntrySize || d.m.KIDs > len(pl)/kidEntryFixed:
		return nil, fmt.Errorf("%w: manifest counts", ErrFeedDocument)
	}
	d.kids = make([]verifier.KIDRevocation, 0, d.m.KIDs)
	for range d.m.KIDs {
		if len(pl) < 2 {
			return nil, fmt.Errorf("%w: payload truncated", ErrFeedDocument)
		}
		n := int(binary.BigEndian.Uint16(pl))
		if n == 0 || len(pl) < kidEntryFixed+n {
			return nil, fmt.Errorf("%w: payload truncated", ErrFeedDocument)
		}
		kid := string(pl[2 : 2+n])
		sec := int64(binary.BigEndian.Uint64(pl[2+n:]))
		nsec := binary.BigEndian.Uint32(pl[10+n:])
		if nsec >= 1e9 {
			return nil, fmt.Errorf("%w: kid cutoff", ErrFeedDocument)
		}
		d.kids = append(d.kids, verifier.KIDRevocation{KID: kid, IssuedBefore: time.Unix(sec, int64(nsec)).UTC()})
		pl = pl[kidEntryFixed+n:]
	}
	if len(pl) != d.m.JTIs*jtiEntrySize {
		return nil, fmt.Errorf("%w: payload has %d bytes of jti entries, manifest says %d entries", ErrFeedDocument, len(pl), d.m.JTIs)
	}
	d.jtis = make([]verifier.JTIRevocation, d.m.JTIs)
	for i := range d.jtis {
		e := pl[i*jtiEntrySize:]
		d.jtis[i] = verifier.JTIRevocation{Digest: verifier.JTIDigest(e[:8]), Until: d.m.Base + int64(binary.BigEndian.Uint32(e[8:]))}
	}
	return d, nil
}
