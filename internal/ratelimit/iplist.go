package ratelimit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// IPList is a set of addresses and CIDR prefixes read from a file (one per
// line; '#' starts a comment), swapped atomically when the file changes.
// A lookup is one map probe per distinct prefix length in the list, so a
// list of thousands of entries costs a few probes, not a scan.
//
// A reload that fails (file unreadable, a bad line) keeps the list in
// force and logs the error with its line; a missing file at start is an
// error, so a typo in the setting is not a silently empty deny list.
type IPList struct {
	path string
	log  *slog.Logger
	set  atomic.Pointer[ipSet]

	mtime time.Time // of the loaded file; read and written by reload only
	size  int64

	// Reloads and ReloadErrors count successful and failed re-reads.
	Reloads      atomic.Int64
	ReloadErrors atomic.Int64
}

type ipSet struct {
	bits   []int // distinct prefix lengths, longest first
	prefix map[netip.Prefix]struct{}
}

func (s *ipSet) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, b := range s.bits {
		if b > a.BitLen() {
			continue
		}
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if _, ok := s.prefix[p]; ok {
			return true
		}
	}
	return false
}

// parseIPList reads a list: addresses and CIDRs, one per line, '#'
// comments. Errors name the line.
func parseIPList(data []byte) (*ipSet, error) {
	s := &ipSet{prefix: map[netip.Prefix]struct{}{}}
	seen := map[int]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(line, "/") {
			p, err = netip.ParsePrefix(line)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(line); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %q is not an address or CIDR", n, line)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		p = p.Masked()
		s.prefix[p] = struct{}{}
		if !seen[p.Bits()] {
			seen[p.Bits()] = true
			s.bits = append(s.bits, p.Bits())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// LoadIPList reads the list at path.
func LoadIPList(path string, log *slog.Logger) (*IPList, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &IPList{path: path, log: log}
	if _, err := l.reload(true); err != nil {
		return nil, err
	}
	return l, nil
}

// Contains reports whether a is in the list. A nil list contains nothing.
func (l *IPList) Contains(a netip.Addr) bool {
	if l == nil {
		return false
	}
	return l.set.Load().contains(a)
}

// Len is the number of entries.
func (l *IPList) Len() int { return len(l.set.Load().prefix) }

// Path is the file the list is read from.
func (l *IPList) Path() string { return l.path }

// Reload re-reads the file if force is set or its modification time or
// size changed, and reports whether it swapped the list in.
func (l *IPList) Reload(force bool) (bool, error) {
	changed, err := l.reload(force)
	if err != nil {
		l.ReloadErrors.Add(1)
		l.log.Error("IP list not reloaded; the previous one stays in force", "file", l.path, "err", err)
		return false, err
	}
	if changed {
		l.Reloads.Add(1)
		l.log.Info("IP list reloaded", "file", l.path, "entries", l.Len())
	}
	return changed, nil
}

func (l *IPList) reload(force bool) (bool, error) {
	fi, err := os.Stat(l.path)
	if err != nil {
		return false, err
	}
	if !force && fi.ModTime().Equal(l.mtime) && fi.Size() == l.size {
		return false, nil
	}
	data, err := os.ReadFile(l.path)
	if err != nil {
		return false, err
	}
	s, err := parseIPList(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w", l.path, err)
	}
	l.set.Store(s)
	l.mtime, l.size = fi.ModTime(), fi.Size()
	return true, nil
}

// WatchIPLists re-reads the lists when their files change (checked every
// `every`) and on SIGHUP, until ctx ends. Nil lists are skipped. It is the
// one goroutine that calls Reload.
func WatchIPLists(ctx context.Context, every time.Duration, lists ...*IPList) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			force = true
		case <-t.C:
		}
		for _, l := range lists {
			if l != nil {
				_, _ = l.Reload(force)
			}
		}
	}
}
