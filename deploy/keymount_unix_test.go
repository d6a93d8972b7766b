//go:build unix

package deploy_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/redistest"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// podUser is the chart's podSecurity.user and group: the process's uid and
// the fsGroup its Secret volumes are readable by.
const podUser = 65532

// TestKeysOnSecretMount starts the real binary's auth role, as uid 65532,
// on a keys directory laid out as the kubelet lays out the chart's keys
// Secret volume (read-only directories, files 0440 owned by root with
// group fsGroup, reached through the ..data symlink), with PostgreSQL and
// Redis as in split mode: it becomes ready, logs a device in and leaves
// the directory as it was, and signs with a rotated key once the volume
// is updated as the kubelet updates it; a game role started as the
// chart's split game pods are (the keyring item alone, the auth role's
// vault) becomes ready on it. A Secret lacking a required file, were the
// kubelet's items check not there, stops the process naming the file.
func TestKeysOnSecretMount(t *testing.T) {
	if os.Geteuid() != 0 {
		// Only root can lay files out as the kubelet does (owned by
		// root, group 65532) and run the process as another user.
		t.Skip("needs root, to lay out the Secret volume as the kubelet does and run the process as uid 65532")
	}
	root, err := os.MkdirTemp("", "keymount")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "multijuego")
	if out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "../cmd/multijuego").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	pg, rd := storetest.PostgresURL(t), redistest.URL(t)

	// The keys directory as docs/operations.md makes it for the Secret:
	// one start of the embedded default.
	made := filepath.Join(root, "keys")
	once := serve(t, bin, false, "--auth-keys-dir", made, "--data-dir", filepath.Join(root, "once"))
	if code := once.stop(t); code != 0 {
		t.Fatalf("the keys-making start exited %d\n%s", code, once.log())
	}
	files := secretFiles(t, made)
	delete(files, "vault.db") // that start's own vault, left out as the docs say
	for _, f := range requiredKeys {
		if _, ok := files[f]; !ok {
			t.Fatalf("one start made %v, without %s", slices.Sorted(maps.Keys(files)), f)
		}
	}

	t.Logf("the Secret's files: %v", slices.Sorted(maps.Keys(files)))
	for _, missing := range append([]string{""}, requiredKeys...) {
		name := "complete"
		if missing != "" {
			name = "without " + missing
		}
		t.Run(name, func(t *testing.T) {
			mount := secretVolume(t, root, files, missing)
			before := snapshot(t, mount)
			data, err := os.MkdirTemp(root, "data")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(data, podUser, podUser); err != nil {
				t.Fatal(err)
			}
			args := []string{"--roles", "auth", "--node-id", "auth-0", "--auth-keys-dir", mount, "--data-dir", data,
				"--database-url", pg, "--redis-url", rd, "--redis-prefix", redistest.Prefix(t)}
			if missing != "" {
				cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
				cmd.SysProcAttr = asPodUser()
				out, err := cmd.CombinedOutput()
				if err == nil || !strings.Contains(string(out), missing) {
					t.Fatalf("auth role on a Secret without %s: %v, want a failed start naming the file\n%s", missing, err, out)
				}
				t.Logf("%v: %s", err, bytes.TrimSpace(out))
				return
			}
			p := serve(t, bin, true, append(args, "--auth-keys-reload", "1s")...)
			p.waitReady(t)
			kid := deviceLoginKid(t, p)
			// A split game pod: the keyring item alone, the same vault
			// (the database, as the chart gives it without vault values).
			t.Run("game on the keyring item", func(t *testing.T) { gameOnKeyring(t, bin, root, files, pg) })
			if after := snapshot(t, mount); !maps.Equal(before, after) {
				t.Errorf("the read-only keys directory changed:\nbefore %v\nafter  %v", before, after)
			}
			// A rotation as docs/operations.md has it: `keys rotate` on
			// a copy, the Secret updated. The kubelet updates the
			// mounted volume in place; the running process signs with
			// the new key after its next reload.
			newKid := rotateOnCopy(t, bin, root, files)
			project(t, mount, "..2026_12_03_10_05_00.000000002", secretFiles(t, filepath.Join(root, "rotated")))
			before = snapshot(t, mount)
			for deadline := time.Now().Add(15 * time.Second); !jwksHas(t, p, newKid); time.Sleep(200 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("JWKS without %s 15s after the Secret got it\n%s", newKid, p.log())
				}
			}
			if kid = deviceLoginKid(t, p); kid != newKid {
				t.Errorf("after the rotation, a token signed by %s, want %s", kid, newKid)
			}
			if code := p.stop(t); code != 0 {
				t.Errorf("auth role exited %d after SIGTERM\n%s", code, p.log())
			}
			if after := snapshot(t, mount); !maps.Equal(before, after) {
				t.Errorf("the read-only keys directory changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// secretFiles reads what `kubectl create secret generic --from-file=DIR`
// takes from dir: its regular files.
func secretFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if files[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	return files
}

// secretVolume lays files (but the one named skip) out as the kubelet
// does for a Secret volume with defaultMode 0440, fsGroup 65532 and
// readOnly: root owns everything, group 65532, directories 0550.
func secretVolume(t *testing.T, parent string, files map[string][]byte, skip string) string {
	t.Helper()
	mount, err := os.MkdirTemp(parent, "secret")
	if err != nil {
		t.Fatal(err)
	}
	files = maps.Clone(files)
	delete(files, skip)
	project(t, mount, "..2026_12_03_10_00_00.000000001", files)
	ownRead(t, mount, 0o550)
	return mount
}

// project writes files into mount as the kubelet's atomic writer does: a
// new timestamped directory ts holding them, a symlink per file into
// ..data, and ..data switched to ts in one rename.
func project(t *testing.T, mount, ts string, files map[string][]byte) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(mount, ts), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(mount, ts, name)
		if err := os.WriteFile(p, body, 0o400); err != nil {
			t.Fatal(err)
		}
		ownRead(t, p, 0o440)
		link := filepath.Join(mount, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			t.Fatal(err)
		}
	}
	ownRead(t, filepath.Join(mount, ts), 0o550)
	if err := os.Symlink(ts, filepath.Join(mount, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
}

// ownRead gives path to root, group 65532, with mode.
func ownRead(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chown(path, 0, podUser); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// rotateOnCopy runs `multijuego keys rotate` on a copy of the keys files
// (ROOT/rotated) and returns the new key's kid.
func rotateOnCopy(t *testing.T, bin, root string, files map[string][]byte) string {
	t.Helper()
	dir := filepath.Join(root, "rotated")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// data_dir given: its default, ./data, would be made in the package's directory.
	out, err := exec.Command(bin, "keys", "rotate", "--auth-keys-dir", dir, "--data-dir", filepath.Join(root, "rotate-data")).CombinedOutput()
	kid, _, _ := strings.Cut(strings.TrimPrefix(string(out), "new signing key "), " ")
	if err != nil || !strings.HasPrefix(string(out), "new signing key ") {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	return kid
}

// jwksHas reports whether the JWKS p serves has kid.
func jwksHas(t *testing.T, p *served, kid string) bool {
	t.Helper()
	res, err := http.Get(p.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d %v", res.StatusCode, err)
	}
	return slices.ContainsFunc(set.Keys, func(k struct {
		Kid string `json:"kid"`
	}) bool {
		return k.Kid == kid
	})
}

// deviceLoginKid logs a device in and returns the kid its access token
// is signed under.
func deviceLoginKid(t *testing.T, p *served) string {
	t.Helper()
	res, err := http.Post(p.url+"/v1/auth/device", "application/json", strings.NewReader(`{"device_id":"device-keymount-test"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	var header struct {
		Kid string `json:"kid"`
	}
	err = json.NewDecoder(res.Body).Decode(&tok)
	if err == nil {
		var b []byte
		h, _, _ := strings.Cut(tok.AccessToken, ".")
		if b, err = base64.RawURLEncoding.DecodeString(h); err == nil {
			err = json.Unmarshal(b, &header)
		}
	}
	if res.StatusCode >= 300 || err != nil || header.Kid == "" {
		t.Fatalf("device login: %d %v, token %q\n%s", res.StatusCode, err, tok.AccessToken, p.log())
	}
	return header.Kid
}

// snapshot is every entry under dir: its mode, owner and content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			desc += " -> " + target
			if err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[strings.TrimPrefix(path, dir)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func asPodUser() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: podUser, Gid: podUser}}
}

// served is one `multijuego serve` of the real binary.
type served struct {
	cmd  *exec.Cmd
	url  string
	out  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// serve starts `multijuego serve` on a loopback port (as uid 65532 when
// podUser says so) and waits for the URL it prints. It is killed at the
// test's end if still running.
func serve(t *testing.T, bin string, asPod bool, args ...string) *served {
	t.Helper()
	p := &served{out: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--auth-hash-concurrency", "1"}, args...)...)
	if asPod {
		p.cmd.SysProcAttr = asPodUser()
	}
	p.cmd.Stderr = p.out
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() { // ends when the process closes its stdout
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "listening on "); ok {
				select {
				case urlc <- u:
				default:
				}
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.url = <-urlc:
	case err := <-p.done:
		t.Fatalf("serve exited at start: %v\n%s", err, p.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve printed no URL within 60s\n%s", p.log())
	}
	return p
}

func (p *served) log() string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.buf.String()
}

func (p *served) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(p.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 30s (%v)\n%s", err, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *served) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60s after SIGTERM\n%s", p.log())
	}
	return p.cmd.ProcessState.ExitCode()
}
