package main_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring/adminhttp"
)

// TestImportAWSRef adopts an existing AWS KMS key (local-kms, which the
// test script starts) through the CLI, and refuses one that does not suit
// the set.
func TestImportAWSRef(t *testing.T) {
	endpoint := testenv.Require(t, testenv.LocalKMS)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	create := func(spec types.KeySpec) string {
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify})
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		return aws.ToString(out.KeyMetadata.Arn)
	}
	h := newHost(t, "")
	cfg := `{"sets": [{"name": "access-tokens", "owner": "team-identity", "backend": "awskms"}],
	         "awskms": {"region": "us-east-1", "endpoint": "` + endpoint + `"}}`
	if err := os.WriteFile(filepath.Join(h.dir, "tokenkms.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.env = append(h.env, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true")

	arn := create(types.KeySpecEccNistP256)
	kid := h.kid(t, "alice", "issuer", "import", "--set", "access-tokens", "--ref", arn, "--kid", "core-kms-1")
	r := h.want(t, 0, "", "bob", "approver", "keys", "show", kid, "--json")
	var v adminhttp.KeyView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Backend != "awskms" || v.State != "pending" || v.CreatedBy != "alice" {
		t.Fatalf("adopted key %s (%v), want pending in awskms, created by alice", r.stdout, err)
	}
	if len(v.PublicJWK) == 0 {
		t.Fatal("adopted key shows no public key")
	}
	h.want(t, 6, "", "alice", "issuer", "import", "--set", "access-tokens", "--ref", create(types.KeySpecRsa2048))
	h.want(t, 6, "", "alice", "issuer", "import", "--set", "access-tokens", "--ref", "alias/core")
}
