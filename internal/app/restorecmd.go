package app

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// restore is `multijuego restore --from FILE [--force]`: a backup's files
// back into data_dir, the keys dir and the keyring file, and its streams
// into the embedded NATS there. The targets must be empty (or absent);
// with force, what is there is moved aside to NAME.before-restore-TIME,
// never deleted. Every file is checked against the manifest's checksum
// before anything is put in place, and each stream's restored state
// against the manifest's.
func restore(ctx context.Context, cfg Config, from string, force bool, out io.Writer) error {
	if from == "" {
		return errors.New("usage: multijuego restore --from FILE [--data-dir DIR] [--force]")
	}
	if cfg.DatabaseURL != "" || cfg.NATSURL != "" {
		return errors.New("restore puts a backup back into the embedded default (SQLite and NATS in data_dir): unset database_url and nats_url")
	}
	data, keys, keyring, err := absPaths(cfg)
	if err != nil {
		return err
	}
	p := &progress{out: out}
	start := time.Now()
	vault, err := vaultFile(cfg)
	if err != nil {
		return err
	}
	if err := clearTargets(force, p, data, keys, keyring, vault); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(filepath.Dir(data), "."+filepath.Base(data)+".restoring-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	p.step("restore: reading %s", from)
	m, err := extract(from, staging, p)
	if err != nil {
		return err
	}
	p.step("restore: %d files checked against the manifest (written %s by %s, schema version %d)",
		len(m.Files), m.Created.Format(time.RFC3339), m.Version, m.SchemaVersion)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	moves := [][2]string{{filepath.Join(staging, "keys"), keys}, {filepath.Join(staging, archiveKeyring), keyring},
		{filepath.Join(staging, archiveVault), vault}}
	entries, err := os.ReadDir(filepath.Join(staging, "data"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		moves = append(moves, [2]string{filepath.Join(staging, "data", e.Name()), filepath.Join(data, e.Name())})
	}
	for _, mv := range moves {
		if err := os.MkdirAll(filepath.Dir(mv[1]), 0o700); err != nil {
			return err
		}
		if err := os.Rename(mv[0], mv[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if err := restoreStreams(ctx, cfg, staging, m, p); err != nil {
		return err
	}
	p.step("restore: done in %s: %s restored into %s; start the server on it (its persistence writes what the streams hold and the database not yet)",
		time.Since(start).Round(time.Millisecond), streamSummary(m.Streams), data)
	return nil
}

// clearTargets checks that the directories and file a restore writes are
// empty or absent; with force, it moves those that are not aside.
func clearTargets(force bool, p *progress, data string, others ...string) error {
	suffix := ".before-restore-" + time.Now().UTC().Format("20060102T150405")
	for _, t := range append([]string{data}, others...) {
		if t != data && within(t, data) {
			continue // moved with data_dir
		}
		empty, err := isEmpty(t)
		if err != nil {
			return err
		}
		if empty {
			continue
		}
		if !force {
			return fmt.Errorf("restore: %s is not empty: restore into a new data_dir, or pass --force to move what is there to %s%s", t, t, suffix)
		}
		if err := os.Rename(t, t+suffix); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		p.step("restore: moved %s to %s%s", t, t, suffix)
	}
	return nil
}

// extract reads the archive into staging, checking each file against the
// manifest, which comes first.
func extract(from, staging string, p *progress) (manifest, error) {
	var m manifest
	f, err := os.Open(from)
	if err != nil {
		return m, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	h, err := tr.Next()
	if err != nil || h.Name != manifestName {
		return m, fmt.Errorf("restore: %s is not a multijuego backup (no %s first)", from, manifestName)
	}
	if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&m); err != nil {
		return m, fmt.Errorf("restore: %s: %w", manifestName, err)
	}
	if m.Format != backupFormat {
		return m, fmt.Errorf("restore: backup format %d; this binary reads format %d", m.Format, backupFormat)
	}
	want := map[string]manifestFile{}
	for _, mf := range m.Files {
		want[mf.Name] = mf
	}
	var done int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("restore: %s: %w", from, err)
		}
		mf, ok := want[h.Name]
		if !ok || h.Typeflag != tar.TypeReg {
			return m, fmt.Errorf("restore: %s holds %q, which its manifest does not list", from, h.Name)
		}
		delete(want, h.Name)
		if err := extractFile(tr, filepath.Join(staging, filepath.FromSlash(path.Clean(h.Name))), mf); err != nil {
			return m, err
		}
		done += mf.Size
		p.bytes("read", done, false)
	}
	for name := range want {
		return m, fmt.Errorf("restore: %s lacks %s, which its manifest lists (a truncated file?)", from, name)
	}
	return m, nil
}

func extractFile(r io.Reader, dst string, mf manifestFile) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: %s: %w", mf.Name, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != mf.Size || sum != mf.SHA256 {
		return fmt.Errorf("restore: %s fails its checksum (%d bytes, sha256 %s; the manifest says %d bytes, %s): the backup is damaged",
			mf.Name, n, sum, mf.Size, mf.SHA256)
	}
	return nil
}

// restoreStreams restores each stream snapshot into the embedded NATS in
// data_dir.
func restoreStreams(ctx context.Context, cfg Config, staging string, m manifest, p *progress) error {
	bus, err := embeddedOperatorBus(ctx, cfg, true)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, s := range m.Streams {
		if strings.ContainsAny(s.Stream, `/\.`) || s.Stream == "" {
			bus.Close()
			return fmt.Errorf("restore: bad stream name %q in the manifest", s.Stream)
		}
		p.step("restore: stream %s (%d messages, last sequence %d, %d consumers)", s.Stream, s.Messages, s.LastSeq, s.Consumers)
		f, err := os.Open(filepath.Join(staging, filepath.FromSlash(snapshotName(s.Stream))))
		if err != nil {
			bus.Close()
			return err
		}
		err = bus.Restore(ctx, s, f, func(n int64) { p.bytes(s.Stream, n, false) })
		f.Close()
		if err != nil {
			bus.Close()
			return fmt.Errorf("restore: %w", err)
		}
	}
	return bus.Close()
}
