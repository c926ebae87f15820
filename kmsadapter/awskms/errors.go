package awskms

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tokenkms/tokenkms/signer"
)

// Errors of this package. Backend answers are mapped to the signer
// package's sentinels (signer.ErrKeyNotFound, signer.ErrKeyDisabled, ...);
// these cover what is specific to AWS KMS.
var (
	// ErrRequestRejected: KMS refused the request for a reason that none of
	// signer's sentinels names (a validation error, a tag refused, an
	// unknown error code). The SDK's error stays reachable with errors.As.
	ErrRequestRejected = errors.New("awskms: request rejected by KMS")
	// ErrPlaintextSize: Wrap was given nothing, or more than KMS encrypts
	// in one call (MaxPlaintext bytes). It is refused before any call, so
	// the plaintext never reaches KMS or an error message.
	ErrPlaintextSize = errors.New("awskms: plaintext size out of range")
	// ErrDigestSize: SignDigest was given a digest whose length is not the
	// algorithm's hash size.
	ErrDigestSize = errors.New("awskms: digest has the wrong length")
	// ErrConfig: NewProvider or NewKeyWrapper was given a configuration it
	// refuses (nil client, bad RSA size, a tag in the reserved namespace).
	ErrConfig = errors.New("awskms: invalid configuration")
)

// throttleCodes are the error codes AWS uses for request-rate refusals.
var throttleCodes = map[string]bool{
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"ThrottledException":                     true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"ProvisionedThroughputExceededException": true,
	"SlowDown":                               true,
}

// deniedCodes are the error codes of refused credentials or permissions.
var deniedCodes = map[string]bool{
	"AccessDeniedException":       true,
	"AccessDenied":                true,
	"UnrecognizedClientException": true,
	"InvalidSignatureException":   true,
	"IncompleteSignature":         true,
	"ExpiredTokenException":       true,
	"InvalidClientTokenId":        true,
	"MissingAuthenticationToken":  true,
}

// mapError turns an error of the SDK into one that matches a signer
// sentinel (or ErrRequestRejected), keeping the SDK error reachable. A
// KMSInvalidStateException is refined with DescribeKey, because that one
// exception covers disabled, pending deletion, pending import and
// unavailable keys. Errors caused by ctx (deadline, cancel) are returned
// wrapped without a backend sentinel: the backend did not fail, the
// caller's budget ran out.
func mapError(ctx context.Context, c Client, op, keyARN string, err error) error {
	prefix := fmt.Sprintf("awskms: %s %s", op, keyARN)
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	if sentinel := classify(ctx, c, keyARN, err); sentinel != nil {
		return fmt.Errorf("%w: %s: %w", sentinel, prefix, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrRequestRejected, prefix, err)
}

func classify(ctx context.Context, c Client, keyARN string, err error) error {
	var (
		notFound     *types.NotFoundException
		disabled     *types.DisabledException
		invalidState *types.KMSInvalidStateException
		limit        *types.LimitExceededException
		internal     *types.KMSInternalException
		timeout      *types.DependencyTimeoutException
		unavailable  *types.KeyUnavailableException
		badCipher    *types.InvalidCiphertextException
		wrongKey     *types.IncorrectKeyException
		badArn       *types.InvalidArnException
		usage        *types.InvalidKeyUsageException
		unsupported  *types.UnsupportedOperationException
	)
	switch {
	case errors.As(err, &notFound):
		return signer.ErrKeyNotFound
	case errors.As(err, &disabled):
		return signer.ErrKeyDisabled
	case errors.As(err, &invalidState):
		return stateError(ctx, c, keyARN)
	case errors.As(err, &limit):
		return signer.ErrThrottled
	case errors.As(err, &internal), errors.As(err, &timeout), errors.As(err, &unavailable):
		return signer.ErrUnavailable
	case errors.As(err, &badCipher), errors.As(err, &wrongKey):
		return signer.ErrUnwrap
	case errors.As(err, &badArn):
		return signer.ErrBadReference
	case errors.As(err, &usage), errors.As(err, &unsupported):
		return signer.ErrUnsupportedAlgorithm
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch code := apiErr.ErrorCode(); {
		case throttleCodes[code]:
			return signer.ErrThrottled
		case deniedCodes[code]:
			return signer.ErrPermissionDenied
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch s := respErr.HTTPStatusCode(); {
		case s == 429:
			return signer.ErrThrottled
		case s == 401 || s == 403:
			return signer.ErrPermissionDenied
		case s >= 500:
			return signer.ErrUnavailable
		}
	}
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	if errors.As(err, &sendErr) || errors.As(err, &netErr) {
		return signer.ErrUnavailable
	}
	return nil
}

// stateError asks KMS which state made a key unusable. If it cannot tell,
// the key is reported disabled: unusable until an operator acts.
func stateError(ctx context.Context, c Client, keyARN string) error {
	if keyARN == "" || ctx.Err() != nil {
		return signer.ErrKeyDisabled
	}
	out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
	if err != nil || out == nil || out.KeyMetadata == nil {
		return signer.ErrKeyDisabled
	}
	switch out.KeyMetadata.KeyState {
	case types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
		return signer.ErrKeyPendingDeletion
	case types.KeyStateUnavailable, types.KeyStateCreating, types.KeyStateUpdating:
		return signer.ErrUnavailable
	}
	return signer.ErrKeyDisabled
}

func integrityError(op, keyARN, what string) error {
	return fmt.Errorf("%w: awskms: %s %s: %s", signer.ErrBackendIntegrity, op, keyARN, what)
}
