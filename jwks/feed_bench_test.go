package jwks_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/jwks"
)

// BenchmarkFeedFirstSync: a verifier's first sync of a feed of a million
// revoked jtis over loopback HTTP, reported with the document's bytes.
//
//	go test -run '^$' -bench BenchmarkFeedFirstSync -benchtime 3x ./jwks/
func BenchmarkFeedFirstSync(b *testing.B) {
	t := &testing.T{}
	is := newFeedIssuer(t)
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	var id [8]byte
	for i := range 1_000_000 {
		binary.BigEndian.PutUint64(id[:], uint64(i))
		is.list.RevokeJTI(ctx, string(id[:]), until)
	}
	ts := httptest.NewServer(is)
	defer ts.Close()
	hc := &http.Client{}
	rs, err := jwks.NewRemoteSet(ctx, ts.URL+"/jwks.json", jwks.AllowInsecureLoopback(), jwks.WithHTTPClient(hc))
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	var bytes int64
	for b.Loop() {
		f, err := jwks.NewRevocationFeed(ctx, jwks.RevocationFeedConfig{URL: ts.URL + "/revocations", Keys: rs, AllowInsecureLoopback: true, HTTPClient: hc})
		if err != nil {
			b.Fatal(err)
		}
		bytes = f.Stats().Bytes
		f.Close()
	}
	b.ReportMetric(float64(bytes), "bytes/sync")
}
