package awskms_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"

	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/seal/awskms"
	"github.com/multijuego/multijuego/internal/seal/awskms/kmstest"
	"github.com/multijuego/multijuego/internal/seal/sealtest"
)

const alias = "alias/multijuego"

func options(f *kmstest.StandIn) awskms.Options {
	return awskms.Options{KeyID: alias, Region: f.Region, Endpoint: f.URL(), MaxBackoff: 5 * time.Millisecond,
		Credentials: credentials.NewStaticCredentialsProvider(f.Creds.AccessKeyID, f.Creds.SecretAccessKey, "")}
}

func open(t *testing.T, opts awskms.Options) *awskms.Provider {
	t.Helper()
	p, err := awskms.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Rotation here is what an operator does in KMS to move to a new key:
// point the alias at it.
func TestConformance(t *testing.T) {
	sealtest.Provider(t, func(t *testing.T) (seal.Provider, func()) {
		f := kmstest.New(t)
		f.NewKey(alias)
		t.Cleanup(func() {
			if n := f.BadSignatures(); n != 0 {
				t.Errorf("%d requests with a bad signature", n)
			}
		})
		return open(t, options(f)), func() { f.NewKey(alias) }
	})
}

func apiCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// The stand-in really checks signatures: a wrong secret is refused.
func TestWrongSecretRefused(t *testing.T) {
	f := kmstest.New(t)
	f.NewKey(alias)
	opts := options(f)
	opts.Credentials = credentials.NewStaticCredentialsProvider(f.Creds.AccessKeyID, "not-the-secret", "")
	_, err := awskms.Open(context.Background(), opts)
	if apiCode(err) != "InvalidSignatureException" {
		t.Fatalf("Open with a wrong secret: %v, want InvalidSignatureException", err)
	}
	if f.BadSignatures() == 0 || f.Count("DescribeKey") != 0 {
		t.Errorf("bad signatures %d, DescribeKey served %d times; want >0 and 0", f.BadSignatures(), f.Count("DescribeKey"))
	}
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	f := kmstest.New(t)
	f.NewKey(alias)
	p := open(t, options(f))
	plain := bytes.Repeat([]byte{9}, seal.KeySize)

	// Throttling and KMS's internal errors are retried...
	f.FailNext(400, "ThrottlingException", 1)
	f.FailNext(500, "KMSInternalException", 1)
	w, err := p.Wrap(ctx, plain, nil)
	if err != nil {
		t.Fatalf("Wrap after a throttle and an internal error: %v", err)
	}
	if n := f.Count("Encrypt"); n != 3 {
		t.Errorf("Encrypt tried %d times, want 3", n)
	}
	// ...up to MaxAttempts (3), then the error says why.
	f.FailNext(400, "ThrottlingException", 3)
	_, err = p.Unwrap(ctx, w, nil)
	if apiCode(err) != "ThrottlingException" || errors.Is(err, seal.ErrOpen) {
		t.Errorf("Unwrap throttled 3 times: %v, want ThrottlingException (not ErrOpen)", err)
	}
	if n := f.Count("Decrypt"); n != 3 {
		t.Errorf("Decrypt tried %d times, want 3", n)
	}
	// A refusal is not retried.
	f.FailNext(400, "AccessDeniedException", 1)
	_, err = p.Unwrap(ctx, w, nil)
	if apiCode(err) != "AccessDeniedException" || errors.Is(err, seal.ErrOpen) {
		t.Errorf("Unwrap denied: %v, want AccessDeniedException (not ErrOpen)", err)
	}
	if n := f.Count("Decrypt"); n != 4 {
		t.Errorf("Decrypt tried %d times in all, want 4 (no retry of a denial)", n)
	}
	if got, err := p.Unwrap(ctx, w, nil); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Unwrap once KMS answers = %x, %v", got, err)
	}
}

// A key that is disabled or pending deletion is a refusal, said as KMS
// says it, not a ciphertext that does not open; enabled again, it works.
func TestKeyStates(t *testing.T) {
	ctx := context.Background()
	f := kmstest.New(t)
	arn := f.NewKey(alias)
	p := open(t, options(f))
	w, err := p.Wrap(ctx, make([]byte, seal.KeySize), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	for state, code := range map[string]string{"Disabled": "DisabledException", "PendingDeletion": "KMSInvalidStateException"} {
		f.SetState(arn, state)
		if _, err := p.Unwrap(ctx, w, []byte("a")); apiCode(err) != code || errors.Is(err, seal.ErrOpen) {
			t.Errorf("Unwrap under a %s key: %v, want %s", state, err, code)
		}
		if _, err := p.Wrap(ctx, make([]byte, seal.KeySize), nil); apiCode(err) != code {
			t.Errorf("Wrap under a %s key: %v, want %s", state, err, code)
		}
		if _, err := awskms.Open(ctx, options(f)); err == nil || !strings.Contains(err.Error(), state) {
			t.Errorf("Open on a %s key: %v, want it refused", state, err)
		}
	}
	f.SetState(arn, "Enabled")
	if _, err := p.Unwrap(ctx, w, []byte("a")); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	f := kmstest.New(t)
	f.NewKey(alias)
	for name, tc := range map[string]struct {
		change func(*awskms.Options)
		want   string
	}{
		"no key id":     {func(o *awskms.Options) { o.KeyID = "" }, "key id"},
		"unknown alias": {func(o *awskms.Options) { o.KeyID = "alias/nope" }, "NotFoundException"},
	} {
		o := options(f)
		tc.change(&o)
		if _, err := awskms.Open(context.Background(), o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}

// A context that ends stops the retries.
func TestContextBoundsRetries(t *testing.T) {
	f := kmstest.New(t)
	f.NewKey(alias)
	opts := options(f)
	opts.MaxBackoff, opts.MaxAttempts = time.Second, 10
	p := open(t, opts)
	f.FailNext(400, "ThrottlingException", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Wrap(ctx, make([]byte, seal.KeySize), nil)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("Wrap = %v after %v; want an error within the context's bound", err, time.Since(start))
	}
}
