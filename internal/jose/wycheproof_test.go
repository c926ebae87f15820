package jose_test

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/testenv"
)

type wycheFile struct {
	TestGroups []struct {
		PublicKeyDer string `json:"publicKeyDer"`
		Tests        []struct {
			TcID    int    `json:"tcId"`
			Comment string `json:"comment"`
			Msg     string `json:"msg"`
			Sig     string `json:"sig"`
			Result  string `json:"result"` // valid, invalid, acceptable
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproof runs the raw signature vectors through Alg.Verify: every
// "valid" case must verify and every "invalid" one must not. "acceptable"
// cases (legacy encodings a library may take or refuse) are only run for
// panics. A key that the algorithm refuses (none here: every file holds
// keys of the right type and size) would count as a refusal. The vectors
// come from the pinned Go module github.com/C2SP/wycheproof
// (testenv.Wycheproof).
func TestWycheproof(t *testing.T) {
	files := []struct {
		file string
		alg  string
	}{
		{"ecdsa_secp256r1_sha256_p1363_test.json", "ES256"},
		{"ecdsa_secp384r1_sha384_p1363_test.json", "ES384"},
		{"ecdsa_secp521r1_sha512_p1363_test.json", "ES512"},
		{"ed25519_test.json", "EdDSA"},
		{"rsa_signature_2048_sha256_test.json", "RS256"},
		{"rsa_pss_2048_sha256_mgf1_32_test.json", "PS256"},
	}
	dir := testenv.Wycheproof(t)
	for _, f := range files {
		t.Run(f.alg, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, f.file))
			if err != nil {
				t.Fatal(err)
			}
			var wf wycheFile
			if err := json.Unmarshal(raw, &wf); err != nil {
				t.Fatal(err)
			}
			alg, ok := jose.Lookup(f.alg)
			if !ok {
				t.Fatalf("Lookup(%s) failed", f.alg)
			}
			n := 0
			for _, g := range wf.TestGroups {
				der, err := hex.DecodeString(g.PublicKeyDer)
				if err != nil {
					t.Fatal(err)
				}
				pub, err := x509.ParsePKIXPublicKey(der)
				if err != nil {
					t.Fatalf("public key: %v", err)
				}
				for _, tc := range g.Tests {
					msg, err1 := hex.DecodeString(tc.Msg)
					sig, err2 := hex.DecodeString(tc.Sig)
					if err1 != nil || err2 != nil {
						t.Fatalf("tcId %d: bad hex", tc.TcID)
					}
					err := alg.Verify(pub, msg, sig)
					switch tc.Result {
					case "valid":
						if err != nil {
							t.Errorf("tcId %d (%s): valid signature refused: %v", tc.TcID, tc.Comment, err)
						}
					case "invalid":
						if err == nil {
							t.Errorf("tcId %d (%s): invalid signature accepted", tc.TcID, tc.Comment)
						}
					}
					n++
				}
			}
			t.Logf("%s: %d vectors", f.file, n)
			if n == 0 {
				t.Fatalf("no test case in %s", f.file)
			}
		})
	}
}
