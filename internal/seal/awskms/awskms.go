// Package awskms is the seal.Provider on AWS Key Management Service: the
// key-encryption key is a symmetric KMS key that never leaves KMS, and
// data keys are wrapped and unwrapped by KMS's Encrypt and Decrypt. (The
// Sealer makes each data key itself and asks the provider to wrap it, so
// GenerateDataKey, which would make it in KMS, is not used.) The aad is
// bound as the encryption context, which KMS authenticates.
//
// Rotation happens in KMS. Automatic key rotation changes the key's
// backing material under the same ARN: nothing to do here, old ciphertexts
// keep decrypting. To move to another key, point the alias Options.KeyID
// names at it: Wrap then uses the new key, Current names it, and `keys
// rewrap` re-wraps what is under the old one (which must stay enabled
// until then).
//
// Wrapped key format: 'K' | 0x01 | length of the key ARN (uint16) | the
// ARN of the key that wrapped it | KMS's ciphertext blob.
package awskms

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/multijuego/multijuego/internal/seal"
)

// Options configures Open.
type Options struct {
	// KeyID names the KMS key: key id, key ARN, alias name
	// ("alias/multijuego") or alias ARN. An alias lets the key change.
	KeyID string
	// Region (empty: the environment's).
	Region string
	// Endpoint overrides KMS's endpoint (a VPC endpoint, a test server).
	Endpoint string
	// Credentials (nil: the SDK's default chain: environment, shared
	// files, the instance's or task's role).
	Credentials aws.CredentialsProvider
	// MaxAttempts bounds the tries of one call, throttling and KMS's
	// internal errors being retried (0: 3).
	MaxAttempts int
	// MaxBackoff bounds the wait between tries (0: the SDK's 20s).
	MaxBackoff time.Duration
}

// Provider is the seal.Provider on a KMS key. It is safe for concurrent
// use.
type Provider struct {
	c     *kms.Client
	keyID string
}

var _ seal.Provider = (*Provider)(nil)

const (
	magic    = 'K'
	formatV1 = 0x01
	// aadContextKey is the encryption-context entry carrying the aad
	// (base64, after a prefix so that an empty aad is not an empty value).
	aadContextKey = "multijuego-aad"
)

// Open makes the KMS client and checks that the key exists, is enabled
// and is a symmetric encryption key. ctx bounds that check.
func Open(ctx context.Context, opts Options) (*Provider, error) {
	if opts.KeyID == "" {
		return nil, errors.New("awskms: a key id, ARN or alias is required")
	}
	load := []func(*config.LoadOptions) error{config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			if opts.MaxAttempts > 0 {
				o.MaxAttempts = opts.MaxAttempts
			}
			if opts.MaxBackoff > 0 {
				o.MaxBackoff = opts.MaxBackoff
			}
		})
	})}
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("awskms: config: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("awskms: no region: set seal.awskms.region or AWS_REGION")
	}
	p := &Provider{keyID: opts.KeyID, c: kms.NewFromConfig(cfg, func(o *kms.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
	})}
	meta, err := p.describe(ctx)
	if err != nil {
		return nil, err
	}
	if meta.KeyState != types.KeyStateEnabled {
		return nil, fmt.Errorf("awskms: key %s is %s, not Enabled", aws.ToString(meta.Arn), meta.KeyState)
	}
	if meta.KeyUsage != types.KeyUsageTypeEncryptDecrypt || meta.KeySpec != types.KeySpecSymmetricDefault {
		return nil, fmt.Errorf("awskms: key %s is %s %s, want a SYMMETRIC_DEFAULT key for ENCRYPT_DECRYPT", aws.ToString(meta.Arn), meta.KeySpec, meta.KeyUsage)
	}
	return p, nil
}

func (p *Provider) describe(ctx context.Context) (*types.KeyMetadata, error) {
	out, err := p.c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &p.keyID})
	if err != nil {
		return nil, fmt.Errorf("awskms: describe key %s: %w", p.keyID, err)
	}
	if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.Arn) == "" {
		return nil, fmt.Errorf("awskms: describe key %s: no key ARN in the answer", p.keyID)
	}
	return out.KeyMetadata, nil
}

func encryptionContext(aad []byte) map[string]string {
	return map[string]string{aadContextKey: "v1:" + base64.StdEncoding.EncodeToString(aad)}
}

// Wrap implements seal.Provider.
func (p *Provider) Wrap(ctx context.Context, plain, aad []byte) ([]byte, error) {
	out, err := p.c.Encrypt(ctx, &kms.EncryptInput{KeyId: &p.keyID, Plaintext: plain, EncryptionContext: encryptionContext(aad)})
	if err != nil {
		return nil, fmt.Errorf("awskms: encrypt under %s: %w", p.keyID, err)
	}
	arn := aws.ToString(out.KeyId)
	if arn == "" || len(arn) > 0xffff || len(out.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("awskms: encrypt under %s: an answer without key ARN or ciphertext", p.keyID)
	}
	w := make([]byte, 0, 4+len(arn)+len(out.CiphertextBlob))
	w = append(w, magic, formatV1)
	w = binary.BigEndian.AppendUint16(w, uint16(len(arn)))
	w = append(w, arn...)
	return append(w, out.CiphertextBlob...), nil
}

func parse(wrapped []byte) (arn string, blob []byte, err error) {
	if len(wrapped) < 4 || wrapped[0] != magic || wrapped[1] != formatV1 {
		return "", nil, seal.ErrFormat
	}
	n := int(binary.BigEndian.Uint16(wrapped[2:4]))
	if n == 0 || len(wrapped) <= 4+n {
		return "", nil, seal.ErrFormat
	}
	return string(wrapped[4 : 4+n]), wrapped[4+n:], nil
}

// Unwrap implements seal.Provider. KMS's answers that a ciphertext does
// not decrypt (a wrong encryption context, changed bytes, another key) are
// seal.ErrOpen; refusals (access denied, a disabled key, throttling past
// the retries) are other errors.
func (p *Provider) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	arn, blob, err := parse(wrapped)
	if err != nil {
		return nil, err
	}
	out, err := p.c.Decrypt(ctx, &kms.DecryptInput{KeyId: &arn, CiphertextBlob: blob, EncryptionContext: encryptionContext(aad)})
	var (
		invalid   *types.InvalidCiphertextException
		incorrect *types.IncorrectKeyException
		notFound  *types.NotFoundException
	)
	switch {
	case errors.As(err, &invalid), errors.As(err, &incorrect), errors.As(err, &notFound):
		return nil, fmt.Errorf("%w (KMS says %v)", seal.ErrOpen, err)
	case err != nil:
		return nil, fmt.Errorf("awskms: decrypt under %s: %w", arn, err)
	}
	return out.Plaintext, nil
}

// Version implements seal.Provider: the ARN of the key that wrapped.
func (p *Provider) Version(wrapped []byte) (string, error) {
	arn, _, err := parse(wrapped)
	return arn, err
}

// Current implements seal.Provider: the ARN of the key Options.KeyID
// names now (one DescribeKey call).
func (p *Provider) Current(ctx context.Context) (string, error) {
	meta, err := p.describe(ctx)
	if err != nil {
		return "", err
	}
	return aws.ToString(meta.Arn), nil
}
