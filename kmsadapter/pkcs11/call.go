//go:build cgo

package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	p11 "github.com/miekg/pkcs11"

	"github.com/tokenkms/tokenkms/signer"
)

// call runs f, a blocking PKCS#11 operation, bounded by ctx. A PKCS#11 call
// cannot be interrupted: if ctx ends first, call returns ctx's error at once
// and f goes on in the background; its result, if it arrives without error,
// is handed to discard (nil: dropped), which undoes what the caller no longer
// knows about.
func call[T any](ctx context.Context, op string, f func() (T, error), discard func(T)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("pkcs11: %s: %w", op, err)
	}
	if ctx.Done() == nil { // never ends: no need for a goroutine
		return f()
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		if discard != nil {
			go func() {
				if r := <-ch; r.err == nil {
					discard(r.v)
				}
			}()
		}
		return zero, fmt.Errorf("pkcs11: %s: %w", op, ctx.Err())
	}
}

// ckr finds the PKCS#11 return value in err: as a typed p11.Error, or, where
// crypto11 flattened it with %v (its AEAD does), from the text
// "pkcs11: 0x<hex>:" that p11.Error prints.
func ckr(err error) (p11.Error, bool) {
	var pe p11.Error
	if errors.As(err, &pe) {
		return pe, true
	}
	msg := err.Error()
	i := strings.Index(msg, "pkcs11: 0x")
	if i < 0 {
		return 0, false
	}
	hex, _, ok := strings.Cut(msg[i+len("pkcs11: 0x"):], ":")
	if !ok {
		return 0, false
	}
	v, perr := strconv.ParseUint(hex, 16, 64)
	if perr != nil {
		return 0, false
	}
	return p11.Error(v), true
}

// sentinel maps a PKCS#11 return value to the signer package's vocabulary.
func sentinel(code p11.Error) error {
	switch code {
	case p11.CKR_OBJECT_HANDLE_INVALID, p11.CKR_KEY_HANDLE_INVALID:
		return signer.ErrKeyNotFound
	case p11.CKR_KEY_FUNCTION_NOT_PERMITTED:
		return signer.ErrKeyDisabled
	case p11.CKR_PIN_INCORRECT, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE,
		p11.CKR_PIN_LOCKED, p11.CKR_PIN_EXPIRED, p11.CKR_USER_NOT_LOGGED_IN,
		p11.CKR_USER_PIN_NOT_INITIALIZED, p11.CKR_USER_TYPE_INVALID,
		p11.CKR_ATTRIBUTE_SENSITIVE:
		return signer.ErrPermissionDenied
	case p11.CKR_MECHANISM_INVALID, p11.CKR_MECHANISM_PARAM_INVALID,
		p11.CKR_KEY_SIZE_RANGE, p11.CKR_KEY_TYPE_INCONSISTENT,
		p11.CKR_CURVE_NOT_SUPPORTED, p11.CKR_DOMAIN_PARAMS_INVALID:
		return signer.ErrUnsupportedAlgorithm
	}
	return signer.ErrUnavailable
}

// classified are the errors that mapErr passes through unchanged: they
// already say what went wrong.
var classified = []error{
	context.Canceled, context.DeadlineExceeded,
	signer.ErrKeyNotFound, signer.ErrKeyDisabled, signer.ErrKeyPendingDeletion,
	signer.ErrThrottled, signer.ErrUnavailable, signer.ErrPermissionDenied,
	signer.ErrBackendIntegrity, signer.ErrUnsupportedAlgorithm, signer.ErrUnwrap,
	signer.ErrBadReference, ErrKeyPolicy, ErrInvalidArgument, ErrConfig,
}

// mapErr wraps err, from a crypto11 or PKCS#11 call, with the signer
// sentinel that fits; the original error stays reachable with errors.As (a
// p11.Error rebuilt from the text when crypto11 had flattened it). Errors
// that already carry a sentinel or a context error pass through.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, known := range classified {
		if errors.Is(err, known) {
			return err
		}
	}
	code, ok := ckr(err)
	if !ok {
		return fmt.Errorf("%w: pkcs11: %s: %w", signer.ErrUnavailable, op, err)
	}
	var pe p11.Error
	if !errors.As(err, &pe) {
		err = code
	}
	return fmt.Errorf("%w: pkcs11: %s: %w", sentinel(code), op, err)
}

// mapUnwrapErr is mapErr for an AES-GCM decryption: a failure that says the
// data or the tag is wrong means the blob does not authenticate. SoftHSM2
// reports a bad tag as CKR_GENERAL_ERROR (and crypto11 flattens the code
// into text); other tokens use CKR_ENCRYPTED_DATA_INVALID.
func mapUnwrapErr(err error) error {
	code, ok := ckr(err)
	if ok {
		switch code {
		case p11.CKR_ENCRYPTED_DATA_INVALID, p11.CKR_ENCRYPTED_DATA_LEN_RANGE,
			p11.CKR_DATA_INVALID, p11.CKR_DATA_LEN_RANGE, p11.CKR_GENERAL_ERROR,
			p11.CKR_FUNCTION_FAILED:
			return fmt.Errorf("%w: pkcs11: unwrap: authentication failed: %w", signer.ErrUnwrap, code)
		}
	}
	return mapErr("unwrap", err)
}
