package events

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Spool files in PublisherConfig.SpoolDir. Appends go to spoolName; a
// replay first renames it to replayName (so appends during the replay go
// to a new file), publishes every line, then removes replayName. A crash
// at any point leaves the events in one of the two files; the next start
// replays both (replayName first). Events published twice this way are
// dropped by the stream within its duplicate window, and are the same
// event id for the consumer after it.
const (
	spoolName  = "match-ended.jsonl"
	replayName = "match-ended.replaying.jsonl"
)

// spool is the on-disk overflow of match.ended events: JSON lines, each
// append fsync'ed. One Publisher per directory.
type spool struct {
	dir   string
	mu    sync.Mutex
	dirty bool // a spool file may hold events
}

func openSpool(dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &spool{dir: dir}
	for _, name := range []string{spoolName, replayName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err == nil:
			s.dirty = s.dirty || fi.Size() > 0 || name == replayName
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return s, nil
}

// append writes items as lines and fsyncs before returning.
func (s *spool) append(items []item) error {
	var buf bytes.Buffer
	for _, it := range items {
		buf.Write(it.data)
		buf.WriteByte('\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, spoolName), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if size := fi.Size(); size > 0 {
		// A crash in an earlier append may have left a torn last line:
		// end it, so this event does not run into it.
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err == nil && last[0] != '\n' {
			b := append([]byte{'\n'}, buf.Bytes()...)
			buf.Reset()
			buf.Write(b)
		}
	}
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && fi.Size() == 0 {
		err = syncDir(s.dir) // the file may be new
	}
	if err != nil {
		return err
	}
	s.dirty = true
	return nil
}

// startReplay opens the file to replay: the one an earlier replay left, or
// the spool renamed. nil when the spool is empty.
func (s *spool) startReplay() (*spoolReader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil, nil
	}
	rp := filepath.Join(s.dir, replayName)
	if _, err := os.Stat(rp); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		ap := filepath.Join(s.dir, spoolName)
		fi, err := os.Stat(ap)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() == 0) {
			s.dirty = false
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if err := os.Rename(ap, rp); err != nil {
			return nil, err
		}
		if err := syncDir(s.dir); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(rp)
	if err != nil {
		return nil, err
	}
	return &spoolReader{f: f, r: bufio.NewReader(f), name: rp}, nil
}

// finishReplay removes a fully published replay file.
func (s *spool) finishReplay(r *spoolReader) error {
	r.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(r.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(s.dir)
}

type spoolReader struct {
	f    *os.File
	r    *bufio.Reader
	name string
}

// next returns the next non-empty line without its newline; io.EOF at the
// end.
func (r *spoolReader) next() ([]byte, error) {
	for {
		line, err := r.r.ReadBytes('\n')
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			return line, nil
		}
		if err != nil {
			if err != io.EOF {
				return nil, fmt.Errorf("read %s: %w", r.name, err)
			}
			return nil, err
		}
	}
}

func (r *spoolReader) close() {
	if r != nil && r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
