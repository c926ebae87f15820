package awskms

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/signer"
)

var _ signer.Adopter = (*Provider)(nil)

// Adopt takes an existing asymmetric KMS signing key (migration, through
// keyring.Keyring.Import): ref must be its key ARN. It refuses a key
// already bound to another kid or algorithm (its TagKID and TagAlg tags),
// a key whose spec, usage or public key does not suit alg, and a weak
// public key (signer.ErrWeakKey); then it tags the key with kid and alg,
// so that Open reopens it as it reopens a key Generate made. The client
// must implement TagClient.
func (p *Provider) Adopt(ctx context.Context, kid, alg, ref string) (signer.Signer, string, error) {
	tc, ok := p.client.(TagClient)
	if !ok {
		return nil, "", fmt.Errorf("%w: the client cannot tag keys (TagResource), which Adopt needs", ErrConfig)
	}
	spec, err := lookup(alg)
	if err != nil {
		return nil, "", err
	}
	if err := checkKID(kid); err != nil {
		return nil, "", err
	}
	if err := parseKeyARN(ref); err != nil {
		return nil, "", err
	}
	tags, err := p.listTags(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	for name, want := range map[string]string{TagKID: kid, TagAlg: alg} {
		if got, ok := tags[name]; ok && got != want {
			return nil, "", fmt.Errorf("%w: awskms: key %s is already tagged %s=%s", signer.ErrBadReference, ref, name, got)
		}
	}
	s, err := p.open(ctx, kid, alg, spec, ref)
	if err != nil {
		return nil, "", err
	}
	if err := signer.CheckImportedKey(alg, s.Public()); err != nil {
		return nil, "", err
	}
	_, err = tc.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(ref), Tags: []types.Tag{
		{TagKey: aws.String(TagKID), TagValue: aws.String(kid)},
		{TagKey: aws.String(TagAlg), TagValue: aws.String(alg)},
	}})
	if err != nil {
		return nil, "", mapError(ctx, p.client, "tag key", ref, err)
	}
	return s, ref, nil
}
