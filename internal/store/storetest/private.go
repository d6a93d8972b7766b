//go:build unix

package storetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// PrivatePostgres is a PostgreSQL cluster of one test's own, made by
// initdb in a temporary directory and run by pg_ctl on a free loopback
// port, for tests that need a server configured differently from the
// machine's (TLS, archiving). It is stopped and deleted when the test ends.
type PrivatePostgres struct {
	Port int
	Dir  string // the data directory
	// Base is the directory Dir is in, the server user's: room for a
	// test's own files that the server reads or writes (a WAL archive).
	Base string

	bin      string // the directory of initdb, pg_ctl and the others
	uid, gid int    // the server's user as root; -1 otherwise
}

// Command is a PostgreSQL program (pg_ctl, pg_basebackup, ...) from the
// server's installation, run as the server's user.
func (p *PrivatePostgres) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	if p.uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(p.uid), Gid: uint32(p.gid)}}
	}
	return cmd
}

// Chown gives path to the server's user (as root; otherwise it is the
// test's already).
func (p *PrivatePostgres) Chown(t testing.TB, path string) {
	t.Helper()
	if p.uid >= 0 {
		if err := os.Chown(path, p.uid, p.gid); err != nil {
			t.Fatal(err)
		}
	}
}

// PrivateOptions configure a PrivatePostgres.
type PrivateOptions struct {
	// Conf lines appended to postgresql.conf.
	Conf []string
	// HBA replaces pg_hba.conf (default: trust over loopback TCP).
	HBA []string
	// Files are copied into the data directory (name -> source path),
	// owned by the server's user, mode 0600 (ssl_key_file needs it).
	Files map[string]string
}

// StartPrivatePostgres makes and starts a cluster. As root, the server
// runs as the postgres user (initdb refuses root). Without initdb the test
// is skipped, or fails when CI=true.
func StartPrivatePostgres(t testing.TB, o PrivateOptions) *PrivatePostgres {
	t.Helper()
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("initdb is required in CI: %v", err)
		}
		t.Skipf("initdb not installed: %v", err)
	}
	pgctl := filepath.Join(filepath.Dir(initdb), "pg_ctl")
	base, err := os.MkdirTemp("", "mj-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user for initdb: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		if uid >= 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
	}
	// initdb may be a link in PATH to the installation's bin directory,
	// which has every program.
	real, err := filepath.EvalSymlinks(initdb)
	if err != nil {
		t.Fatal(err)
	}
	p := &PrivatePostgres{Port: FreePort(t), Dir: filepath.Join(base, "data"), Base: base, bin: filepath.Dir(real), uid: uid, gid: gid}
	if uid >= 0 {
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	run(initdb, "-D", p.Dir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	conf := append([]string{"listen_addresses = '127.0.0.1'", fmt.Sprintf("port = %d", p.Port),
		fmt.Sprintf("unix_socket_directories = '%s'", base), "fsync = off"}, o.Conf...)
	appendFile(t, filepath.Join(p.Dir, "postgresql.conf"), conf)
	if o.HBA != nil {
		writeOwned(t, filepath.Join(p.Dir, "pg_hba.conf"), []byte(strings.Join(o.HBA, "\n")+"\n"), uid, gid)
	}
	for name, src := range o.Files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeOwned(t, filepath.Join(p.Dir, name), b, uid, gid)
	}
	run(pgctl, "-D", p.Dir, "-l", filepath.Join(base, "log"), "-w", "-t", "30", "start")
	t.Cleanup(func() {
		cmd := exec.Command(pgctl, "-D", p.Dir, "-m", "immediate", "-w", "stop")
		if uid >= 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
		_ = cmd.Run()
	})
	return p
}

// FreePort is a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func appendFile(t testing.TB, path string, lines []string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

func writeOwned(t testing.TB, path string, b []byte, uid, gid int) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}
