package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/auth"
)

// The address key's source, in order: gateway.address_key_file, the keys
// directory, else refused (a gateway alone on a shared store on another
// machine with security.require_tls) or a key of the process's own, with
// a warning when the gateway shares its store.
func TestAddressKeySource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "address.key")
	var out bytes.Buffer
	if code := Run(context.Background(), []string{"keys", "address-key", "--gateway-address-key-file", file}, &out, &out, nil); code != 0 {
		t.Fatalf("keys address-key: exit %d: %s", code, out.String())
	}
	fromFile, err := readAddressKey(file)
	if err != nil || len(fromFile) != 32 {
		t.Fatalf("the file keys address-key made: %d bytes, %v; want 32", len(fromFile), err)
	}
	if fi, _ := os.Stat(file); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("address key file mode %v, want 0600", fi.Mode().Perm())
	}
	out.Reset()
	if code := Run(context.Background(), []string{"keys", "address-key", "--gateway-address-key-file", file}, &out, &out, nil); code == 0 || !strings.Contains(out.String(), "exists") {
		t.Errorf("keys address-key over an existing file: exit %d %q; want refused", code, out.String())
	}
	if again, _ := readAddressKey(file); !bytes.Equal(again, fromFile) {
		t.Error("the refused keys address-key changed the file")
	}
	if runtime.GOOS != "windows" {
		// As the chart mounts it: a read-only Secret file, 0440.
		if err := os.Chmod(file, 0o440); err != nil {
			t.Fatal(err)
		}
		if k, err := readAddressKey(file); err != nil || !bytes.Equal(k, fromFile) {
			t.Fatalf("the key file mounted 0440: %v", err)
		}
		if err := os.Chmod(file, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readAddressKey(file); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
			t.Errorf("a key file open to others is %v after reading, want tightened to 0600", fi.Mode().Perm())
		}
	}
	keys := auth.KeysDir{Path: t.TempDir()}
	derive := func() ([]byte, error) { return auth.AddressKey(keys) }
	derived, err := derive()
	if err != nil || len(derived) != 32 {
		t.Fatalf("derived key: %d bytes, %v", len(derived), err)
	}
	if again, _ := auth.AddressKey(keys); !bytes.Equal(again, derived) {
		t.Fatal("two derivations from one keys directory differ: nodes sharing it would not share limits")
	}
	device, err := os.ReadFile(filepath.Join(keys.Path, "device-id.key"))
	if err != nil || bytes.Contains(device, []byte(base64.StdEncoding.EncodeToString(derived))) {
		t.Fatalf("the derived key is the device-id secret itself (%v)", err)
	}
	gateway, all := []string{RoleGateway}, ExpandRoles([]string{"all"})
	remote := DefaultConfig()
	remote.RedisURL = "redis://redis.example.internal:6379/0"
	local := DefaultConfig()
	local.RedisURL = "redis://127.0.0.1:6379/0"
	withFile := remote
	withFile.Gateway.AddressKeyFile = file
	open := remote
	open.Security.RequireTLS = false
	dynamo := DefaultConfig()
	dynamo.KV = "dynamodb"
	for _, c := range []struct {
		name    string
		cfg     Config
		roles   []string
		derive  func() ([]byte, error)
		want    []byte
		err     string // in the error
		warning bool
	}{
		{"file first, even with the keys directory", withFile, all, derive, fromFile, "", false},
		{"keys directory", remote, all, derive, derived, "", false},
		{"gateway alone, Redis on another machine, require_tls", remote, gateway, nil, nil, "gateway.address_key_file is required", false},
		{"gateway alone, DynamoDB, require_tls", dynamo, gateway, nil, nil, "gateway.address_key_file is required", false},
		{"gateway alone, require_tls off", open, gateway, nil, nil, "", true},
		{"gateway alone, Redis on loopback", local, gateway, nil, nil, "", true},
		{"gateway alone, in-process store", DefaultConfig(), gateway, nil, nil, "", false},
		{"no gateway role", remote, []string{RoleGame}, nil, nil, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			key, err := addressKey(c.cfg, c.roles, c.derive, slog.New(slog.NewTextHandler(&logs, nil)))
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "keys address-key") {
					t.Fatalf("got %v, want an error saying %q and how to make the file", err, c.err)
				}
			case err != nil || !bytes.Equal(key, c.want):
				t.Fatalf("got key %x, %v; want %x", key, err, c.want)
			}
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "per gateway")
			if warned != c.warning {
				t.Fatalf("warning logged %v, want %v: %q", warned, c.warning, logs.String())
			}
		})
	}
}

// A bad address key file stops the start with the setting named.
func TestAddressKeyFileBad(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"short": base64.StdEncoding.EncodeToString(make([]byte, 16)), "not base64": "not a key!\n", "empty": ""} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c := DefaultConfig()
		c.Gateway.AddressKeyFile = p
		if _, err := addressKey(c, []string{RoleGateway}, nil, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "gateway.address_key_file") {
			t.Errorf("%s file: %v; want an error naming gateway.address_key_file", name, err)
		}
	}
	c := DefaultConfig()
	c.Gateway.AddressKeyFile = filepath.Join(dir, "missing")
	if _, err := addressKey(c, []string{RoleGateway}, nil, nil); err == nil || !strings.Contains(err.Error(), "gateway.address_key_file") {
		t.Errorf("missing file: %v; want an error naming gateway.address_key_file", err)
	}
	if err := newAddressKeyFile("", io.Discard); err == nil || !strings.Contains(err.Error(), "--gateway-address-key-file") {
		t.Errorf("keys address-key without a file: %v; want the flag named", err)
	}
}
