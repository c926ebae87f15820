package main

import (
	"strings"
	"testing"
)

// The quickstart is also a smoke test of the whole flow: each call must
// answer what the story says.
func TestQuickstart(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"token of the first key             -> 200",
		"no token at all                    -> 401 Bearer\n",
		"token of the active key            -> 200",
		"old token, during grace            -> 200",
		"old token, after retirement        -> 401 Bearer error=\"invalid_token\"",
		"token of the compromised key       -> 401 Bearer error=\"invalid_token\"",
		"token of the fresh key             -> 200",
		"incident.declared",
		"key.retired",
		"# key report",
		"compromised owner team-identity",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("quickstart output lacks %q:\n%s", want, out.String())
		}
	}
}
