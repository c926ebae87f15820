package awskms_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
	"github.com/tokenkms/tokenkms/signer"
)

// TestErrorMapping injects each kind of SDK error and checks the sentinel
// it maps to, and that the SDK's own error stays reachable.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		state types.KeyState // DescribeKey's answer, for KMSInvalidStateException
		want  error
	}{
		{name: "not found", err: &types.NotFoundException{Message: aws.String("no key")}, want: signer.ErrKeyNotFound},
		{name: "disabled", err: &types.DisabledException{}, want: signer.ErrKeyDisabled},
		{name: "invalid state pending deletion", err: &types.KMSInvalidStateException{}, state: types.KeyStatePendingDeletion, want: signer.ErrKeyPendingDeletion},
		{name: "invalid state pending replica deletion", err: &types.KMSInvalidStateException{}, state: types.KeyStatePendingReplicaDeletion, want: signer.ErrKeyPendingDeletion},
		{name: "invalid state disabled", err: &types.KMSInvalidStateException{}, state: types.KeyStateDisabled, want: signer.ErrKeyDisabled},
		{name: "invalid state pending import", err: &types.KMSInvalidStateException{}, state: types.KeyStatePendingImport, want: signer.ErrKeyDisabled},
		{name: "invalid state unavailable", err: &types.KMSInvalidStateException{}, state: types.KeyStateUnavailable, want: signer.ErrUnavailable},
		{name: "invalid state, state unknown", err: &types.KMSInvalidStateException{}, want: signer.ErrKeyDisabled},
		{name: "limit exceeded", err: &types.LimitExceededException{}, want: signer.ErrThrottled},
		{name: "throttling code", err: &smithy.GenericAPIError{Code: "ThrottlingException"}, want: signer.ErrThrottled},
		{name: "access denied code", err: &smithy.GenericAPIError{Code: "AccessDeniedException"}, want: signer.ErrPermissionDenied},
		{name: "bad credentials", err: &smithy.GenericAPIError{Code: "UnrecognizedClientException"}, want: signer.ErrPermissionDenied},
		{name: "internal", err: &types.KMSInternalException{}, want: signer.ErrUnavailable},
		{name: "dependency timeout", err: &types.DependencyTimeoutException{}, want: signer.ErrUnavailable},
		{name: "key unavailable", err: &types.KeyUnavailableException{}, want: signer.ErrUnavailable},
		{name: "network", err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}, want: signer.ErrUnavailable},
		{name: "invalid arn", err: &types.InvalidArnException{}, want: signer.ErrBadReference},
		{name: "key usage", err: &types.InvalidKeyUsageException{}, want: signer.ErrUnsupportedAlgorithm},
		{name: "validation", err: &smithy.GenericAPIError{Code: "ValidationException"}, want: awskms.ErrRequestRejected},
		{name: "unknown", err: errors.New("something else"), want: awskms.ErrRequestRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeClient{fail: func(string) error { return tc.err }, state: tc.state}
			_, err := newProvider(t, f, nil).Open(testCtx(t), "kid", fakeARN)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: got %v, want %v", err, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("Open: the SDK error %v is not reachable from %v", tc.err, err)
			}
		})
	}
}

// TestErrorsFromBackend drives local-kms into each key state.
func TestErrorsFromBackend(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	p := newProvider(t, c, nil)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, arn string)
		want  error
	}{
		{name: "disabled", want: signer.ErrKeyDisabled, setup: func(t *testing.T, arn string) {
			if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "pending deletion", want: signer.ErrKeyPendingDeletion, setup: func(t *testing.T, arn string) {
			if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(7)}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kid := "kid-state-" + tc.name
			s, ref, err := p.Generate(ctx, kid, "ES256")
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			tc.setup(t, ref)
			if _, err := s.Sign(ctx, []byte(input)); !errors.Is(err, tc.want) {
				t.Fatalf("Sign: got %v, want %v", err, tc.want)
			}
			if _, err := p.Open(ctx, kid, ref); !errors.Is(err, tc.want) {
				t.Fatalf("Open: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestUnreachableBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	p := newProvider(t, clientFor("http://"+addr, 1), nil)
	if _, err := p.Open(testCtx(t), "kid", fakeARN); !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("Open: got %v, want %v", err, signer.ErrUnavailable)
	}
}

func TestHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   error
	}{
		{status: http.StatusInternalServerError, want: signer.ErrUnavailable},
		{status: http.StatusServiceUnavailable, want: signer.ErrUnavailable},
		{status: http.StatusNotImplemented, want: signer.ErrUnavailable},
		{status: http.StatusTooManyRequests, want: signer.ErrThrottled},
		{status: http.StatusForbidden, want: signer.ErrPermissionDenied},
		{status: http.StatusBadRequest, code: "ThrottlingException", want: signer.ErrThrottled},
		{status: http.StatusBadRequest, code: "AccessDeniedException", want: signer.ErrPermissionDenied},
		{status: http.StatusBadRequest, code: "NotFoundException", want: signer.ErrKeyNotFound},
		{status: http.StatusBadRequest, code: "DisabledException", want: signer.ErrKeyDisabled},
	} {
		t.Run(http.StatusText(tc.status)+"/"+tc.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.code != "" {
					w.Header().Set("X-Amzn-Errortype", tc.code)
				}
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(tc.status)
				w.Write([]byte(`{"message":"injected"}`))
			}))
			defer srv.Close()
			p := newProvider(t, clientFor(srv.URL, 1), nil)
			if _, err := p.Open(testCtx(t), "kid", fakeARN); !errors.Is(err, tc.want) {
				t.Fatalf("Open: got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestContextDeadline: a backend that never answers is abandoned when the
// caller's deadline passes.
func TestContextDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	p := newProvider(t, clientFor(srv.URL, 1), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Open(ctx, "kid", fakeARN)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open: got %v, want %v", err, context.DeadlineExceeded)
	}
	if errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("Open: %v blames the backend for the caller's deadline", err)
	}
}

func TestSignHonoursContext(t *testing.T) {
	c := localKMS(t)
	f := &fakeClient{inner: c}
	s, _, err := newProvider(t, f, nil).Generate(testCtx(t), "kid-ctx", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	before := f.calls.Load()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Sign(ctx, []byte(input)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sign: got %v, want %v", err, context.Canceled)
	}
	if n := f.calls.Load() - before; n != 0 {
		t.Fatalf("Sign with a cancelled context made %d calls, want 0", n)
	}
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()
	if _, err := s.Sign(expired, []byte(input)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sign: got %v, want %v", err, context.DeadlineExceeded)
	}
}
