package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/events"
)

// A backup of the embedded default is one tar file: manifest.json first,
// then the files it lists. Names in the archive say where a file goes back:
//
//	data/...          data_dir: the SQLite copy (data/multijuego.db) and
//	                  every other file there (the NATS users file, the
//	                  events signing key, the spool, the development TLS
//	                  certificate), the live database and JetStream files
//	                  excepted
//	keys/...          auth.keys_dir: signing keys, device-id key
//	keyring.kek       seal.keyring_file
//	vault.db          the data keys' vault (seal.vault_url, by default
//	                  vault.db in the keys dir), copied like the database
//	nats/NAME.snapshot  a JetStream snapshot of stream NAME
const (
	backupFormat   = 1
	manifestName   = "manifest.json"
	archiveDB      = "data/multijuego.db"
	archiveKeyring = "keyring.kek"
	archiveVault   = "vault.db"
)

// manifest describes a backup archive.
type manifest struct {
	Format int `json:"format"`
	// Version is the binary's that wrote it; SchemaVersion the last
	// migration applied to the database.
	Version       string    `json:"version"`
	Created       time.Time `json:"created"`
	SchemaVersion int       `json:"schema_version"`
	// Streams are the JetStream snapshots, each in nats/<stream>.snapshot.
	Streams []events.SnapshotInfo `json:"streams"`
	Files   []manifestFile        `json:"files"`
}

type manifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func snapshotName(stream string) string { return "nats/" + stream + ".snapshot" }

// progress prints a line at most once a second, and the last one always:
// what a long backup or restore is doing.
type progress struct {
	out  io.Writer
	last time.Time
}

func (p *progress) bytes(what string, n int64, final bool) {
	if !final && time.Since(p.last) < time.Second {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.out, "  %s: %s\n", what, mib(n))
}

func (p *progress) step(format string, args ...any) {
	fmt.Fprintf(p.out, format+"\n", args...)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// cutFlags takes the command's own flags out of args (they are not
// configuration keys): value flags as --name V or --name=V, booleans as
// --name.
func cutFlags(args []string, values []string, bools []string) (vals map[string]string, set map[string]bool, rest []string, err error) {
	vals, set = map[string]string{}, map[string]bool{}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch {
		case !strings.HasPrefix(args[i], "-"):
			rest = append(rest, args[i])
		case slices.Contains(values, name):
			if !hasVal {
				if i+1 >= len(args) {
					return nil, nil, nil, fmt.Errorf("--%s needs a value", name)
				}
				i++
				val = args[i]
			}
			vals[name] = val
		case slices.Contains(bools, name) && !hasVal:
			set[name] = true
		default:
			rest = append(rest, args[i])
		}
	}
	return vals, set, rest, nil
}

// operatorBus connects to the queue at nats_url as the operator: with the
// events.* credentials, or for a server's embedded queue (reached at its
// --events-listen) with the operator's password from data_dir, opened
// with the server's key provider; events.tls.* for a listener with TLS.
func operatorBus(ctx context.Context, cfg Config) (*events.Bus, error) {
	auth := busAuth(cfg.Events)
	if auth == (events.Auth{}) {
		a, ok, err := EmbeddedBusAuth(ctx, cfg, events.RoleOperator)
		if err != nil {
			return nil, err
		}
		if ok {
			auth = a
		}
	}
	natsTLS, err := cfg.Events.TLS.Config("")
	if err != nil {
		return nil, fmt.Errorf("events.tls: %w", err)
	}
	bus, err := events.Open(ctx, events.Config{URL: cfg.NATSURL, DuplicateWindow: cfg.Events.DuplicateWindow,
		Roles: []string{events.RoleOperator}, Auth: auth, TLS: natsTLS}, nil)
	if err != nil && strings.Contains(err.Error(), "Authorization Violation") {
		return nil, fmt.Errorf("%w (the queue needs the operator's credentials: for an embedded queue pass the server's --data-dir, "+
			"which holds them in %s; for an external NATS --events-user operator --events-password-file FILE, or --events-creds-file)",
			err, events.EmbeddedUsersFile)
	}
	return bus, err
}

// embeddedOperatorBus opens the embedded queue in data_dir itself (no
// server may run there), as the operator; noStreams for a restore.
func embeddedOperatorBus(ctx context.Context, cfg Config, noStreams bool) (*events.Bus, error) {
	sealer, done, err := busSealer(ctx, cfg, natsUsersAAD)
	if err != nil {
		return nil, err
	}
	defer done() // events.Open uses it while it opens, not after
	return events.Open(ctx, events.Config{DataDir: cfg.DataDir, DuplicateWindow: cfg.Events.DuplicateWindow,
		Roles: []string{events.RoleOperator}, UsersSealer: sealer, NoStreams: noStreams}, nil)
}

// sha256File is a file's size and SHA-256.
func sha256File(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// copyFile copies src to dst (made 0600, its directories 0700).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// absPaths are the configuration's data_dir, keys dir and keyring file,
// absolute.
func absPaths(cfg Config) (data, keys, keyring string, err error) {
	if data, err = filepath.Abs(cfg.DataDir); err != nil {
		return
	}
	if keys, err = filepath.Abs(cfg.KeysDir()); err != nil {
		return
	}
	keyring, err = filepath.Abs(cfg.KeyringFile())
	return
}

// isEmpty reports whether path does not exist or is an empty directory.
func isEmpty(path string) (bool, error) {
	entries, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			// A file, not a directory: not empty.
			if st, serr := os.Stat(path); serr == nil && !st.IsDir() {
				return false, nil
			}
		}
		return false, err
	}
	return len(entries) == 0, nil
}
