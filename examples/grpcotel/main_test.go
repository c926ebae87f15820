package main

import (
	"strings"
	"testing"
)

// The example is also a smoke test of the wiring: the calls answer as the
// story says, the rotation's spans reach the exporter, and the metrics
// carry what an operator watches.
func TestGRPCOTel(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"== Check with a token           -> SERVING",
		"== Check again, same token      -> SERVING",
		"== Check without a token        -> Unauthenticated",
		"== Check with a forged token    -> Unauthenticated",
		"== Check after the rotation     -> SERVING",
		`{"Name":"tokenkms.keyring.rotate"`,
		`{"Name":"tokenkms.keyring.approve"`,
		`{"Name":"tokenkms.keyring.tick"`,
		`{"Name":"tokenkms.backend.Generate"`,
		`{"Name":"example.rotation"`,
		`"Name":"audit.key.activated"`,
		"tokenkms.keys.active{tokenkms.key.set=access-tokens} 1",
		"tokenkms.keys.overdue{tokenkms.key.set=access-tokens} 0",
		"tokenkms.verify.rejections{tokenkms.reason=malformed} 1",
		"tokenkms.verify.cache.hits{} 1",
		"tokenkms.revocation.jtis{} 0",
		"tokenkms.backend.duration{tokenkms.backend=local,tokenkms.operation=Sign,tokenkms.outcome=ok} count=",
		`msg="grpc call refused" method=/grpc.health.v1.Health/Check reason="grpcauth: no bearer token"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// A compact JWS starts with the base64url of `{"`: no token, minted or
	// forged, reaches a span, a log line or a metric.
	for _, token := range []string{"eyJ", "not.a.token"} {
		if strings.Contains(out.String(), token) {
			t.Errorf("output holds a token (%q)", token)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}
