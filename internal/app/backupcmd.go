package app

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/store"
)

// backup is `multijuego backup --to FILE`: the embedded default's state,
// consistent while the server runs, in one archive (backup.go).
//
// The order makes the copy consistent without stopping anything. The
// streams come first: each snapshot is the stream and its consumers'
// positions at one instant. The database comes last: every result in it
// was published to the stream before it was written, so it is in the
// snapshot too or older than the stream's retention; a result in the
// stream but not yet in the database is redelivered after a restore (the
// consumer's position is older than the database) and written then, and
// one already in the database is redelivered and skipped, by its event id
// (docs/architecture.md, "Match results: the durable side"). Key files are
// copied before the keyring, so a key sealed under a new key-encryption
// key finds it in the keyring (which only grows).
func backup(ctx context.Context, cfg Config, to string, out io.Writer) error {
	if to == "" {
		return errors.New("usage: multijuego backup --to FILE [--nats-url nats://HOST:PORT] [--data-dir DIR]")
	}
	if cfg.DatabaseURL != "" && !strings.HasPrefix(cfg.DatabaseURL, "sqlite://") && !strings.HasPrefix(cfg.DatabaseURL, "file:") {
		return errors.New("backup copies the embedded default (SQLite); back PostgreSQL up with pg_basebackup and WAL archiving (docs/operations.md, \"Backups\")")
	}
	data, keys, keyring, err := absPaths(cfg)
	if err != nil {
		return err
	}
	if to, err = filepath.Abs(to); err != nil {
		return err
	}
	if within(to, data) || within(to, keys) {
		return fmt.Errorf("backup: %s is inside the directories it backs up; write it elsewhere", to)
	}
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("backup: %s exists; choose a new name", to)
	}
	db := filepath.Join(data, "multijuego.db")
	if cfg.DatabaseURL != "" {
		_, db, _ = strings.Cut(cfg.DatabaseURL, ":")
		db = strings.TrimPrefix(db, "//")
	}
	if _, err := os.Stat(db); err != nil {
		return fmt.Errorf("backup: no database to back up: %w", err)
	}
	staging, err := os.MkdirTemp(filepath.Dir(to), ".multijuego-backup-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	p := &progress{out: out}
	start := time.Now()
	m := manifest{Format: backupFormat, Version: version(), Created: start.UTC()}

	if m.Streams, err = snapshotStreams(ctx, cfg, staging, p); err != nil {
		return err
	}
	vault, err := vaultFile(cfg)
	if err != nil {
		return err
	}
	// The vault is a live SQLite database: copied like the accounts'.
	isVault := func(abs string) bool { return vault != "" && strings.HasPrefix(abs, vault) }
	p.step("backup: copying the files in %s, %s and %s", data, keys, keyring)
	if err := copyTree(data, filepath.Join(staging, "data"), func(rel string) bool {
		abs := filepath.Join(data, rel)
		return strings.HasPrefix(rel, "multijuego.db") || rel == filepath.Join("nats", "jetstream") || rel == filepath.Join("nats", "LOCK") ||
			within(abs, keys) || abs == keyring || isVault(abs)
	}); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := copyTree(keys, filepath.Join(staging, "keys"), func(rel string) bool {
		abs := filepath.Join(keys, rel)
		return abs == keyring || isVault(abs)
	}); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if vault != "" {
		if _, err := os.Stat(vault); err == nil {
			p.step("backup: copying the vault %s", vault)
			if err := sqliteCopy(ctx, vault, filepath.Join(staging, archiveVault)); err != nil {
				return fmt.Errorf("backup: the vault: %w", err)
			}
		}
	}
	if err := copyFile(keyring, filepath.Join(staging, archiveKeyring)); err != nil {
		return fmt.Errorf("backup: the keyring: %w", err)
	}
	p.step("backup: copying the database %s", db)
	s, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	err = s.BackupTo(ctx, filepath.Join(staging, filepath.FromSlash(archiveDB)))
	if err == nil {
		m.SchemaVersion, err = s.SchemaVersion(ctx)
	}
	s.Close()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	size, err := writeArchive(staging, to, &m, p)
	if err != nil {
		return err
	}
	p.step("backup: %s written in %s: %s, %d files, schema version %d, %s",
		to, time.Since(start).Round(time.Millisecond), mib(size), len(m.Files), m.SchemaVersion, streamSummary(m.Streams))
	return nil
}

// vaultFile is the SQLite file of the data keys' vault, absolute.
func vaultFile(cfg Config) (string, error) {
	u := cfg.VaultURL()
	if !strings.HasPrefix(u, "sqlite://") {
		return "", errors.New("backup: seal.vault_url is not a SQLite file; back that database up with its own tools")
	}
	return filepath.Abs(strings.TrimPrefix(u, "sqlite://"))
}

// sqliteCopy writes a consistent copy of the SQLite database at path.
func sqliteCopy(ctx context.Context, path, to string) error {
	s, err := store.Open(ctx, store.Options{URL: "sqlite://" + path})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.BackupTo(ctx, to)
}

func streamSummary(streams []events.SnapshotInfo) string {
	var parts []string
	for _, s := range streams {
		parts = append(parts, fmt.Sprintf("%s %d messages", s.Stream, s.Messages))
	}
	return strings.Join(parts, ", ")
}

// snapshotStreams writes a snapshot of each stream into staging/nats: from
// the server at nats_url (a running server's --events-listen), or from the
// embedded store in data_dir when no server runs on it.
func snapshotStreams(ctx context.Context, cfg Config, staging string, p *progress) ([]events.SnapshotInfo, error) {
	var bus *events.Bus
	var err error
	if cfg.NATSURL != "" {
		bus, err = operatorBus(ctx, cfg)
	} else {
		bus, err = embeddedOperatorBus(ctx, cfg, false)
		if errors.Is(err, events.ErrStoreInUse) {
			return nil, fmt.Errorf("backup: a server is running on %s: start it with --events-listen 127.0.0.1:4223 and pass --nats-url nats://127.0.0.1:4223 "+
				"to back it up while it runs (%w)", cfg.DataDir, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer bus.Close()
	if err := os.MkdirAll(filepath.Join(staging, "nats"), 0o700); err != nil {
		return nil, err
	}
	var infos []events.SnapshotInfo
	for _, name := range bus.Streams() {
		p.step("backup: snapshot of stream %s", name)
		f, err := os.OpenFile(filepath.Join(staging, filepath.FromSlash(snapshotName(name))), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		info, err := bus.Snapshot(ctx, name, f, func(n int64) { p.bytes(name, n, false) })
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		st, _ := os.Stat(f.Name())
		p.bytes(fmt.Sprintf("%s (%d messages, last sequence %d, %d consumers)", name, info.Messages, info.LastSeq, info.Consumers), st.Size(), true)
		infos = append(infos, info)
	}
	return infos, nil
}

// copyTree copies the regular files under src into dst, skipping the
// paths (relative to src) skip says to; a missing src copies nothing.
func copyTree(src, dst string, skip func(rel string) bool) error {
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || rel == "." {
			return err
		}
		if skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// writeArchive lists staging's files with their checksums in m and
// writes the archive: to.partial, synced, then renamed to to.
func writeArchive(staging, to string, m *manifest, p *progress) (int64, error) {
	var names []string
	err := filepath.WalkDir(staging, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(staging, path)
		names = append(names, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, n := range names {
		size, sum, err := sha256File(filepath.Join(staging, filepath.FromSlash(n)))
		if err != nil {
			return 0, err
		}
		m.Files = append(m.Files, manifestFile{Name: n, Size: size, SHA256: sum})
	}
	partial := to + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer os.Remove(partial) // after the rename, nothing
	tw := tar.NewWriter(f)
	mj, _ := json.MarshalIndent(m, "", "  ")
	err = tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o600, Size: int64(len(mj)), ModTime: m.Created, Typeflag: tar.TypeReg})
	if err == nil {
		_, err = tw.Write(mj)
	}
	var written int64
	for _, mf := range m.Files {
		if err != nil {
			break
		}
		err = addToArchive(tw, filepath.Join(staging, filepath.FromSlash(mf.Name)), mf, m.Created)
		written += mf.Size
		p.bytes("archive", written, false)
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(partial, to)
	}
	if err != nil {
		return 0, fmt.Errorf("backup: write %s: %w", to, err)
	}
	st, err := os.Stat(to)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func addToArchive(tw *tar.Writer, path string, mf manifestFile, at time.Time) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := tw.WriteHeader(&tar.Header{Name: mf.Name, Mode: 0o600, Size: mf.Size, ModTime: at, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, in)
	return err
}
