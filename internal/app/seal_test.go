package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/seal/awskms/kmstest"
)

// With seal.provider=awskms the server seals its keys through KMS (a
// stand-in here: no KMS-compatible server runs on this machine).
// `keys rotate-kek` says rotation is KMS's; after the alias moves to a new
// key, `keys rewrap` seals the keys under it and a restart reads them.
func TestServeSealsKeysInKMS(t *testing.T) {
	kms := kmstest.New(t)
	first := kms.NewKey("alias/multijuego")
	t.Setenv("AWS_ACCESS_KEY_ID", kms.Creds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", kms.Creds.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg := testConfig(t)
	cfg.Seal.Provider = "awskms"
	cfg.Seal.AWSKMS.KeyID, cfg.Seal.AWSKMS.Region, cfg.Seal.AWSKMS.Endpoint = "alias/multijuego", kms.Region, kms.URL()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m, stop := startMain(t, cfg)
	res, body := postJSON(t, m.URL()+"/v1/auth/register", `{"username":"sealed","password":"right-horse-battery"}`)
	stop()
	if res.StatusCode != 201 {
		t.Fatalf("register: %d %v", res.StatusCode, body)
	}
	token := body["access_token"].(string)
	checkSealed(t, cfg.KeysDir(), kmsKey(first))

	run := func(sub string) (int, string) {
		var out bytes.Buffer
		args := []string{"keys", sub, "--data-dir", cfg.DataDir, "--seal-provider", "awskms", "--seal-awskms-key-id", "alias/multijuego",
			"--seal-awskms-region", kms.Region, "--seal-awskms-endpoint", kms.URL()}
		code := app.Run(context.Background(), args, &out, &out, os.Environ())
		return code, out.String()
	}
	if code, out := run("rotate-kek"); code != 1 || !strings.Contains(out, "rotate in KMS") {
		t.Errorf("keys rotate-kek with awskms: exit %d, %q; want 1 and that rotation is KMS's", code, out)
	}
	second := kms.NewKey("alias/multijuego")
	if code, out := run("rewrap"); code != 0 {
		t.Fatalf("keys rewrap: exit %d: %s", code, out)
	}
	checkSealed(t, cfg.KeysDir(), kmsKey(second))
	// The event bus's secrets too: the signing key and the NATS users file.
	if n := countSealed(t, cfg.DataDir, kmsKey(second)) + countSealed(t, filepath.Join(cfg.DataDir, "nats"), kmsKey(second)); n != 2 {
		t.Errorf("%d event bus secrets sealed under the new key, want 2", n)
	}

	m, stop = startMain(t, cfg)
	defer stop()
	req, _ := http.NewRequest("GET", m.URL()+"/v1/account", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	acc, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	acc.Body.Close()
	if acc.StatusCode != 200 {
		t.Fatalf("a token issued before the key changed, after a restart: %s", acc.Status)
	}
	if n := kms.BadSignatures(); n != 0 {
		t.Errorf("%d requests with a bad signature", n)
	}
}

func TestSealConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		set  func(*app.SealConfig)
		want string // the key the error names; empty: valid
	}{
		"local":            {func(s *app.SealConfig) {}, ""},
		"unknown provider": {func(s *app.SealConfig) { s.Provider = "vault" }, "seal.provider"},
		"pkcs11": {func(s *app.SealConfig) {
			s.Provider, s.PKCS11.Module, s.PKCS11.Token, s.PKCS11.PINEnv = "pkcs11", "/lib.so", "t", "PIN"
		}, ""},
		"pkcs11 no module": {func(s *app.SealConfig) { s.Provider, s.PKCS11.Token, s.PKCS11.PINEnv = "pkcs11", "t", "PIN" }, "seal.pkcs11.module"},
		"pkcs11 no pin":    {func(s *app.SealConfig) { s.Provider, s.PKCS11.Module, s.PKCS11.Token = "pkcs11", "/lib.so", "t" }, "seal.pkcs11.pin_file"},
		"pkcs11 two pins": {func(s *app.SealConfig) {
			s.Provider, s.PKCS11.Module, s.PKCS11.Token, s.PKCS11.PINEnv, s.PKCS11.PINFile = "pkcs11", "/l.so", "t", "P", "/p"
		}, "seal.pkcs11.pin_file"},
		"awskms":              {func(s *app.SealConfig) { s.Provider, s.AWSKMS.KeyID = "awskms", "alias/mj" }, ""},
		"awskms no key":       {func(s *app.SealConfig) { s.Provider = "awskms" }, "seal.awskms.key_id"},
		"awskms bad endpoint": {func(s *app.SealConfig) { s.Provider, s.AWSKMS.KeyID, s.AWSKMS.Endpoint = "awskms", "k", "kms.local" }, "seal.awskms.endpoint"},
	} {
		cfg := testConfig(t)
		tc.set(&cfg.Seal)
		err := cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate = %v, want an error naming %q", name, err, tc.want)
		}
	}
}

// kmsKey checks that a wrapped key is the awskms provider's, under the
// KMS key arn.
func kmsKey(arn string) func([]byte) bool {
	return func(w []byte) bool { return len(w) > 4+len(arn) && w[0] == 'K' && string(w[4:4+len(arn)]) == arn }
}

func postJSON(t *testing.T, url, body string) (*http.Response, map[string]any) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res, out
}

// checkSealed checks that every signing key file and the device-id secret
// in dir are sealed, and that ok says yes to each wrapped key.
func checkSealed(t *testing.T, dir string, ok func(wrapped []byte) bool) {
	t.Helper()
	if n := countSealed(t, dir, ok); n < 2 {
		t.Errorf("%d sealed files in %s, want a signing key and the device-id secret", n, dir)
	}
}

// countSealed checks the sealed files in dir with ok and counts them.
func countSealed(t *testing.T, dir string, ok func(wrapped []byte) bool) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sealed := 0
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var wrapped []byte
		switch {
		case bytes.HasPrefix(b, []byte("sealed:")):
			wrapped, _ = base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(string(b), "sealed:")))
		case strings.HasSuffix(e.Name(), ".json"):
			var kf struct {
				Seed       []byte `json:"seed"`
				SealedSeed []byte `json:"sealed_seed"`
			}
			if err := json.Unmarshal(b, &kf); err != nil {
				t.Fatal(err)
			}
			if kf.Seed != nil {
				t.Errorf("%s holds its seed in clear", e.Name())
			}
			wrapped = kf.SealedSeed
		default:
			continue
		}
		if !ok(wrapped) {
			t.Errorf("%s is not sealed as expected: %.40x", e.Name(), wrapped)
		}
		sealed++
	}
	return sealed
}
