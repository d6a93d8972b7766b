// Package kmstest is a stand-in for AWS KMS on loopback, for tests of the
// awskms key provider: no KMS-compatible server can run here.
package kmstest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// StandIn is a stand-in for KMS on loopback: it speaks the JSON 1.1
// protocol (X-Amz-Target: TrentService.Encrypt, Decrypt, DescribeKey),
// checks every request's SigV4 signature by signing it again with the
// credentials it knows, and answers AWS-shaped errors, including those a
// test queues with FailNext. It is not KMS: its ciphertext blobs are its
// own (key id | nonce | AES-GCM with the encryption context as aad).
type StandIn struct {
	// Creds are the only credentials it accepts; Region the only region.
	Creds  aws.Credentials
	Region string
	srv    *httptest.Server

	mu      sync.Mutex
	keys    map[string]*fakeKey // by key id
	aliases map[string]string   // alias name -> key id
	fail    []fakeError         // answered, in order, before any real work
	calls   map[string]int      // signed requests by operation, failed ones included
	badSigs int
}

type fakeKey struct {
	id, state string
	aead      cipher.AEAD
}

type fakeError struct {
	status int
	code   string
}

const account = "111122223333"

// New starts a stand-in with no keys, stopped when the test ends.
func New(t testing.TB) *StandIn {
	f := &StandIn{Region: "eu-west-1", keys: map[string]*fakeKey{}, aliases: map[string]string{}, calls: map[string]int{},
		Creds: aws.Credentials{AccessKeyID: "AKIDSTANDIN", SecretAccessKey: "stand-in-secret", Source: "test"}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the stand-in's endpoint.
func (f *StandIn) URL() string { return f.srv.URL }

func (f *StandIn) arn(id string) string {
	return "arn:aws:kms:" + f.Region + ":" + account + ":key/" + id
}

// newKey makes a key and points alias at it (when alias is not empty).
func (f *StandIn) NewKey(alias string) string {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	aead, _ := cipher.NewGCM(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", time.Now().UnixNano()&0xffffffff, len(f.keys))
	f.keys[id] = &fakeKey{id: id, state: "Enabled", aead: aead}
	if alias != "" {
		f.aliases[alias] = id
	}
	return f.arn(id)
}

// SetState sets the state of the key arn names: Enabled, Disabled or
// PendingDeletion.
func (f *StandIn) SetState(arn, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[strings.TrimPrefix(arn, f.arn(""))].state = state
}

// FailNext makes the next n signed requests fail with an AWS error.
func (f *StandIn) FailNext(status int, code string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.fail = append(f.fail, fakeError{status, code})
	}
}

// Count is how many signed requests of operation op (Encrypt, Decrypt,
// DescribeKey) arrived, failed ones included.
func (f *StandIn) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// BadSignatures is how many requests were refused for their signature.
func (f *StandIn) BadSignatures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.badSigs
}

func (f *StandIn) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if r.Method != http.MethodPost || !ok || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		awsError(w, 400, "UnknownOperationException", "not a KMS JSON 1.1 request")
		return
	}
	if code, msg := f.checkSignature(r, body); code != "" {
		f.mu.Lock()
		f.badSigs++
		f.mu.Unlock()
		awsError(w, 403, code, msg)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if len(f.fail) > 0 {
		e := f.fail[0]
		f.fail = f.fail[1:]
		awsError(w, e.status, e.code, "injected by the test")
		return
	}
	var req struct {
		KeyId             string
		Plaintext         []byte
		CiphertextBlob    []byte
		EncryptionContext map[string]string
	}
	if err := json.Unmarshal(body, &req); err != nil {
		awsError(w, 400, "SerializationException", err.Error())
		return
	}
	switch op {
	case "DescribeKey":
		k := f.resolve(req.KeyId)
		if k == nil {
			awsError(w, 400, "NotFoundException", "no key "+req.KeyId)
			return
		}
		answer(w, map[string]any{"KeyMetadata": map[string]any{"AWSAccountId": account, "KeyId": k.id, "Arn": f.arn(k.id),
			"KeyState": k.state, "Enabled": k.state == "Enabled", "KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT"}})
	case "Encrypt":
		k := f.usable(w, f.resolve(req.KeyId), req.KeyId)
		if k == nil {
			return
		}
		nonce := make([]byte, 12)
		rand.Read(nonce)
		blob := append([]byte(k.id), nonce...)
		blob = k.aead.Seal(blob, nonce, req.Plaintext, contextAAD(req.EncryptionContext))
		answer(w, map[string]any{"CiphertextBlob": blob, "KeyId": f.arn(k.id), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	case "Decrypt":
		f.decrypt(w, req.KeyId, req.CiphertextBlob, req.EncryptionContext)
	default:
		awsError(w, 400, "UnknownOperationException", op)
	}
}

func (f *StandIn) decrypt(w http.ResponseWriter, keyID string, blob []byte, ec map[string]string) {
	const idLen = 36
	if len(blob) < idLen+12+16 {
		awsError(w, 400, "InvalidCiphertextException", "")
		return
	}
	k := f.keys[string(blob[:idLen])]
	if k == nil {
		awsError(w, 400, "InvalidCiphertextException", "")
		return
	}
	if keyID != "" {
		if named := f.resolve(keyID); named == nil {
			awsError(w, 400, "NotFoundException", "no key "+keyID)
			return
		} else if named != k {
			awsError(w, 400, "IncorrectKeyException", "the ciphertext was not encrypted under "+keyID)
			return
		}
	}
	if f.usable(w, k, keyID) == nil {
		return
	}
	plain, err := k.aead.Open(nil, blob[idLen:idLen+12], blob[idLen+12:], contextAAD(ec))
	if err != nil {
		awsError(w, 400, "InvalidCiphertextException", "")
		return
	}
	answer(w, map[string]any{"Plaintext": plain, "KeyId": f.arn(k.id), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
}

// usable answers KMS's error for a missing or unusable key, or returns k.
func (f *StandIn) usable(w http.ResponseWriter, k *fakeKey, name string) *fakeKey {
	switch {
	case k == nil:
		awsError(w, 400, "NotFoundException", "no key "+name)
	case k.state == "Disabled":
		awsError(w, 400, "DisabledException", f.arn(k.id)+" is disabled.")
	case k.state != "Enabled":
		awsError(w, 400, "KMSInvalidStateException", f.arn(k.id)+" is pending deletion.")
	default:
		return k
	}
	return nil
}

func (f *StandIn) resolve(name string) *fakeKey {
	name = strings.TrimPrefix(name, "arn:aws:kms:"+f.Region+":"+account+":")
	if id, ok := f.aliases[name]; ok {
		name = id
	}
	return f.keys[strings.TrimPrefix(name, "key/")]
}

// contextAAD is the encryption context in a canonical form (json sorts a
// map's keys).
func contextAAD(ec map[string]string) []byte {
	b, _ := json.Marshal(ec)
	return b
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/,]+)/(\d{8})/([^/,]+)/kms/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

// checkSignature checks the Authorization header's form and scope, then
// signs the request again with the stand-in's credentials and compares.
func (f *StandIn) checkSignature(r *http.Request, body []byte) (code, msg string) {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "IncompleteSignatureException", "malformed Authorization header: " + r.Header.Get("Authorization")
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || when.Format("20060102") != m[2] || m[3] != f.Region || m[1] != f.Creds.AccessKeyID {
		return "IncompleteSignatureException", "bad X-Amz-Date or credential scope"
	}
	signed := strings.Split(m[4], ";")
	for _, h := range []string{"host", "x-amz-date", "x-amz-target"} {
		if !strings.Contains(";"+m[4]+";", ";"+h+";") {
			return "IncompleteSignatureException", h + " is not signed"
		}
	}
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	again.ContentLength = 0
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = r.ContentLength
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), f.Creds, again, hex.EncodeToString(sum[:]), "kms", f.Region, when); err != nil {
		return "InternalFailure", err.Error()
	}
	if again.Header.Get("Authorization") != r.Header.Get("Authorization") {
		return "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."
	}
	return "", ""
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(v)
}

func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
