package app

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/multijuego/multijuego/internal/certs"
	"github.com/multijuego/multijuego/internal/seal"
)

// The address key (gateway.Deps.AddressKey) names client addresses in the
// shared store by keyed hashes. Where it comes from, first match wins:
//
//  1. gateway.address_key_file: the deployment's, on every gateway (and
//     auth node, which limits the routes it serves on the same buckets);
//  2. the keys directory, for a process with the auth role (the embedded
//     default, a gateway run with it): derived from the device-id secret
//     (auth.AddressKey), which every such node already shares;
//  3. none: a process without the gateway role, or whose key-value store
//     is its own (memory), shares nothing per address and gets a key of its
//     own silently. A gateway on a shared store refuses to start when
//     security.require_tls is on and the store is on another machine (a
//     production deployment, where per-gateway limits would be a silent
//     weakening); otherwise (a one-machine install, a trusted network
//     with require_tls off) it gets a key of its own with a warning that
//     its per-address limits then count per gateway.

// addressKeySetting is the setting the errors and the warning name.
const addressKeySetting = "gateway.address_key_file"

// addressKey is the address key of a process of c running roles; derive
// is the auth role's derivation (nil without the keys directory). nil
// with no error: the gateway makes a key of its own.
func addressKey(c Config, roles []string, derive func() ([]byte, error), log *slog.Logger) ([]byte, error) {
	if f := c.Gateway.AddressKeyFile; f != "" {
		return readAddressKey(f)
	}
	if derive != nil {
		k, err := derive()
		if err != nil {
			return nil, fmt.Errorf("the address key (derived from the keys directory): %w", err)
		}
		return k, nil
	}
	if !slices.Contains(roles, RoleGateway) || c.KVBackend() == "memory" {
		return nil, nil
	}
	if host := remoteStoreHost(c); c.Security.RequireTLS && host != "" {
		return nil, fmt.Errorf("%s is required: this gateway runs without the auth role and its key-value store (%s) is shared with other nodes, "+
			"where client addresses are kept only as keyed hashes under a key every gateway shares; make one with "+
			"'multijuego keys address-key --gateway-address-key-file FILE' and give the same file to every gateway and auth node "+
			"(or turn security.require_tls off to let each gateway use a key of its own, its per-address limits then per gateway)", addressKeySetting, host)
	}
	log.Warn("no "+addressKeySetting+": client addresses in the shared store are hashed with a key of this process's own, "+
		"so per-address rate and match limits count per gateway; give every gateway and auth node the same file ('multijuego keys address-key')",
		"kv", c.KVBackend())
	return nil, nil
}

// remoteStoreHost is a host of c's shared key-value store on another
// machine, "" when every one is on loopback.
func remoteStoreHost(c Config) string {
	switch c.KVBackend() {
	case "redis":
		for _, h := range urlHosts(c.RedisURL) {
			if !certs.Loopback(h) {
				return "redis_url " + h
			}
		}
	case "dynamodb":
		if c.DynamoDBEndpoint == "" {
			return "DynamoDB in " + c.DynamoDBRegion
		}
		for _, h := range urlHosts(c.DynamoDBEndpoint) {
			if !certs.Loopback(h) {
				return "dynamodb_endpoint " + h
			}
		}
	}
	return ""
}

// readAddressKey reads an address key file: 32 bytes, base64, the file its
// owner's only (seal.PrivateFile; a read-only 0440 Secret mount passes).
func readAddressKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addressKeySetting, err)
	}
	if fi, err := os.Stat(path); err == nil {
		if err := seal.PrivateFile(path, fi.Mode().Perm()); err != nil {
			return nil, fmt.Errorf("%s: %w", addressKeySetting, err)
		}
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: %s is not 32 base64-encoded bytes (make one with 'multijuego keys address-key --gateway-address-key-file FILE', "+
			"or: head -c 32 /dev/urandom | base64)", addressKeySetting, path)
	}
	return key, nil
}

// newAddressKeyFile is `multijuego keys address-key`: a new address key in
// path (gateway.address_key_file), mode 0600; an existing file is left
// alone (replacing the key resets every per-address limit).
func newAddressKeyFile(path string, out io.Writer) error {
	if path == "" {
		return errors.New("keys address-key writes the file " + addressKeySetting + " names: pass --gateway-address-key-file FILE")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: remove it first to make another (every gateway and auth node must then get the new one)", path)
	}
	if err != nil {
		return err
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return werr
	}
	fmt.Fprintf(out, "address key in %s: give the same file to every gateway and auth node (%s)\n", path, addressKeySetting)
	return nil
}
