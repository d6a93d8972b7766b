//go:build unix

package app_test

import (
	"crypto/tls"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Everything the server writes under data_dir (database, signing keys,
// device-id.key, the key-encryption keyring, events-signing.key, the
// embedded NATS's users and JetStream files, the spool, the development
// TLS certificate) is its owner's only: every directory 0700 (a
// data_dir made 0755 beforehand is tightened), no file open to group or
// others.
func TestDataDirIsOwnerOnly(t *testing.T) {
	cfg := testConfig(t)
	if err := os.Chmod(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Gateway.TLSSelfSigned = true // its certificate and key are kept in data_dir/tls
	m, stop := startMain(t, cfg)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := client.Post(m.URL()+"/v1/auth/register", "application/json", strings.NewReader(`{"username":"modes","password":"right-horse-battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	stop()

	var seen []string
	err = filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(cfg.DataDir, path)
		seen = append(seen, rel)
		if d.IsDir() && info.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", rel, info.Mode().Perm())
		}
		if !d.IsDir() && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, open to others", rel, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"multijuego.db", "keys", filepath.Join("keys", "device-id.key"), filepath.Join("keys", "keyring.kek"), "events-signing.key", "tls", filepath.Join("nats", "users.json")} {
		found := false
		for _, s := range seen {
			found = found || s == want
		}
		if !found {
			t.Errorf("%s not written (seen: %v)", want, seen)
		}
	}
}
