package jwks_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/verifier"
)

// BenchmarkFeedFirstSync: a verifier's first sync of a feed of a million
// revoked jtis over loopback HTTP, reported with the document's bytes.
//
//	go test -run '^$' -bench BenchmarkFeedFirstSync -benchtime 3x ./jwks/
func BenchmarkFeedFirstSync(b *testing.B) {
	_, newFeed := largeFeed(b)
	var bytes int64
	for b.Loop() {
		f := newFeed()
		bytes = f.Stats().Bytes
		f.Close()
	}
	b.ReportMetric(float64(bytes), "bytes/sync")
}

// BenchmarkFeedRevoked: a lookup in a RevocationFeed that holds a million
// jtis, against the same lookups in the issuer's MemoryRevocationList (the
// feed adds a SHA-256 of the jti and a freshness check).
//
//	go test -run '^$' -bench BenchmarkFeedRevoked ./jwks/
func BenchmarkFeedRevoked(b *testing.B) {
	is, newFeed := largeFeed(b)
	f := newFeed()
	defer f.Close()
	ctx := context.Background()
	iat := time.Now()
	for _, tc := range []struct {
		name string
		list verifier.RevocationList
		from int
	}{
		{"feed/hit", f, 0},
		{"feed/miss", f, 1_000_000},
		{"issuer/hit", is.list, 0},
		{"issuer/miss", is.list, 1_000_000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			jtis := make([]string, 1<<16)
			for i := range jtis {
				jtis[i] = benchJTI(tc.from + i*15)
			}
			i := 0
			for b.Loop() {
				if _, err := tc.list.Revoked(ctx, "k1", jtis[i&(len(jtis)-1)], iat); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func benchJTI(i int) string {
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], uint64(i))
	return string(id[:])
}

// largeFeed starts an issuer with a million revoked jtis on loopback and
// returns a function that makes a RevocationFeed of it (its first sync).
func largeFeed(b *testing.B) (*feedIssuer, func() *jwks.RevocationFeed) {
	b.Helper()
	is := newFeedIssuer(b)
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for i := range 1_000_000 {
		is.list.RevokeJTI(ctx, benchJTI(i), until)
	}
	ts := httptest.NewServer(is)
	b.Cleanup(ts.Close)
	hc := &http.Client{}
	rs, err := jwks.NewRemoteSet(ctx, ts.URL+"/jwks.json", jwks.AllowInsecureLoopback(), jwks.WithHTTPClient(hc))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rs.Close() })
	return is, func() *jwks.RevocationFeed {
		f, err := jwks.NewRevocationFeed(ctx, jwks.RevocationFeedConfig{URL: ts.URL + "/revocations", Keys: rs, AllowInsecureLoopback: true, HTTPClient: hc})
		if err != nil {
			b.Fatal(err)
		}
		return f
	}
}
