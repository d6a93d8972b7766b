package ratelimit_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/ratelimit"
)

func writeList(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestIPList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deny")
	writeList(t, path, "# abusers\n203.0.113.7\n198.51.100.0/24 # a whole net\n2001:db8::/32\n::ffff:192.0.2.1\n\n", time.Unix(1000, 0))
	l, err := ratelimit.LoadIPList(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"203.0.113.7": true, "203.0.113.8": false, "198.51.100.200": true, "198.51.101.1": false,
		"2001:db8:1::5": true, "2001:db9::1": false, "::ffff:203.0.113.7": true, "192.0.2.1": true,
	} {
		if got := l.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	var nilList *ratelimit.IPList
	if nilList.Contains(netip.MustParseAddr("203.0.113.7")) {
		t.Error("a nil list contains something")
	}
}

func TestIPListReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deny")
	writeList(t, path, "203.0.113.7\n", time.Unix(1000, 0))
	l, err := ratelimit.LoadIPList(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("198.51.100.1")
	if changed, err := l.Reload(false); changed || err != nil {
		t.Fatalf("unchanged file: Reload = %v, %v; want false, nil", changed, err)
	}
	writeList(t, path, "198.51.100.0/24\n", time.Unix(2000, 0))
	if changed, err := l.Reload(false); !changed || err != nil {
		t.Fatalf("changed file: Reload = %v, %v; want true, nil", changed, err)
	}
	if l.Contains(a) || !l.Contains(b) {
		t.Fatal("reload did not swap the list")
	}
	// A bad file keeps the list in force.
	writeList(t, path, "198.51.100.0/24\nnot-an-ip\n", time.Unix(3000, 0))
	if _, err := l.Reload(false); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad file: Reload error %v, want one naming line 2", err)
	}
	if !l.Contains(b) || l.ReloadErrors.Load() != 1 {
		t.Fatal("a bad file replaced the list in force, or was not counted")
	}
	if _, err := ratelimit.LoadIPList(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Fatal("a missing file at start loaded as an empty list")
	}
}

func FuzzParseIPList(f *testing.F) {
	f.Add([]byte("203.0.113.7\n198.51.100.0/24 # c\n2001:db8::/32\n"))
	f.Add([]byte("::ffff:10.0.0.0/104\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		contains, err := ratelimit.ParseIPList(data)
		if err != nil {
			return
		}
		contains(netip.MustParseAddr("10.1.2.3"))
		contains(netip.MustParseAddr("2001:db8::1"))
	})
}
