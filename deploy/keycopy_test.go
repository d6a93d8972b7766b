package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The init container's script, run with this machine's sh on directories
// laid out as the kubelet lays out a Secret volume (files are symlinks
// into a ..data directory, mode 0440 with fsGroup): it makes 0600 copies
// the process accepts, and stops when the keys Secret lacks a file every
// auth replica must share.
func checkKeyCopy(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	if len(spec.InitContainers) == 0 {
		return
	}
	ic := spec.InitContainers[0]
	if len(ic.Command) != 3 || ic.Command[0] != "sh" || ic.Command[1] != "-c" {
		t.Fatalf("init container command %v, want sh -c SCRIPT", ic.Command)
	}
	auth := false
	for _, m := range ic.VolumeMounts {
		auth = auth || m.MountPath == "/secrets-in/keys"
	}
	files := map[string]map[string]string{"events": {"events-signing.key": "ab12\n"}}
	if auth {
		files = map[string]map[string]string{"keys": {"device-id.key": "d", "keyring.kek": "k", "key1.json": "{}"}}
	}
	run := func(files map[string]map[string]string) (string, string, error) {
		root := t.TempDir()
		in, out := filepath.Join(root, "secrets-in"), filepath.Join(root, "run")
		for dir, fs := range files {
			data := filepath.Join(in, dir, "..data")
			if err := os.MkdirAll(data, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range fs {
				if err := os.WriteFile(filepath.Join(data, name), []byte(body), 0o440); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join("..data", name), filepath.Join(in, dir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.Mkdir(out, 0o777); err != nil {
			t.Fatal(err)
		}
		script := strings.NewReplacer("/secrets-in", in, "/run/multijuego", out).Replace(ic.Command[2])
		b, err := exec.Command("sh", "-c", script).CombinedOutput()
		return out, string(b), err
	}
	out, msg, err := run(files)
	if err != nil {
		t.Fatalf("key copy script: %v\n%s", err, msg)
	}
	for dir, fs := range files {
		for name, body := range fs {
			p := filepath.Join(out, dir, name)
			st, err := os.Lstat(p)
			got, rerr := os.ReadFile(p)
			if err != nil || rerr != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 || string(got) != body {
				t.Errorf("copy of %s/%s: %v %v %v %q, want a regular 0600 file with %q", dir, name, err, rerr, st.Mode(), got, body)
			}
		}
	}
	if auth {
		delete(files["keys"], "device-id.key")
		if _, msg, err := run(files); err == nil || !strings.Contains(msg, "device-id.key") {
			t.Errorf("keys Secret without device-id.key: %v %q, want the pod stopped naming the file", err, msg)
		}
	}
}
