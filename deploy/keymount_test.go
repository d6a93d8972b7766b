package deploy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/multijuego/multijuego/internal/app"
)

// requiredKeys are the files of the keys Secret every auth replica must
// share: one a replica made for itself would hash device ids and seal keys
// differently from the others'.
var requiredKeys = []string{"device-id.key", "keyring.kek"}

// checkKeyMounts: the events signing key, the address key and the auth
// role's keys directory are Secret volumes mounted as they are: read-only, files 0440
// readable through the pod's fsGroup, which the process accepts
// (seal.PrivateFile; TestKeysOnSecretMount starts the binary on such a
// directory). The keys Secret's required files are items of a volume the
// container mounts, so the kubelet does not start a pod whose Secret lacks
// one (a volume no container mounts is not set up, hence not checked).
func checkKeyMounts(t *testing.T, spec corev1.PodSpec, c corev1.Container, cfg app.Config) {
	t.Helper()
	secretAt := func(what, path string) (*corev1.SecretVolumeSource, string) {
		v, m := volumeAt(spec, c, path)
		if v == nil || v.Secret == nil {
			t.Errorf("%s %s is not on a Secret volume", what, path)
			return nil, ""
		}
		if !m.ReadOnly || v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
			t.Errorf("%s: volume %s mounted readOnly %v, defaultMode %v, want read-only and 0440", what, v.Name, m.ReadOnly, ptrOr32(v.Secret.DefaultMode))
		}
		return v.Secret, strings.TrimPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
	}
	onSecret := false
	if f := cfg.Events.SigningKeyFile; f != "" {
		onSecret = true
		if s, rel := secretAt("events.signing_key_file", f); s != nil && !slices.ContainsFunc(s.Items, func(k corev1.KeyToPath) bool { return k.Path == rel }) {
			t.Errorf("the events signing key's volume lists items %v, want the file %s among them", s.Items, rel)
		}
	}
	// Gateways and auth nodes apart hash client addresses with one key
	// (gateway.address_key_file); a random one each would count
	// per-address limits per pod.
	split := !slices.Equal(cfg.Roles, []string{"all"})
	if f := cfg.Gateway.AddressKeyFile; f != "" {
		onSecret = true
		if s, rel := secretAt("gateway.address_key_file", f); s != nil && !slices.ContainsFunc(s.Items, func(k corev1.KeyToPath) bool { return k.Path == rel }) {
			t.Errorf("the address key's volume lists items %v, want the file %s among them", s.Items, rel)
		}
	} else if split && (slices.Contains(cfg.Roles, app.RoleGateway) || slices.Contains(cfg.Roles, app.RoleAuth)) {
		t.Errorf("roles %v without gateway.address_key_file: each pod would hash client addresses with a key of its own", cfg.Roles)
	}
	if slices.Equal(cfg.Roles, []string{app.RoleAuth}) {
		onSecret = true
		checkKeysDir(t, spec, c, cfg, secretAt)
	}
	if ps := spec.SecurityContext; onSecret && (ps == nil || ps.FSGroup == nil || *ps.FSGroup == 0) {
		t.Errorf("pod securityContext %+v: no fsGroup, so the non-root process cannot read the 0440 Secret files", ps)
	}
}

// checkKeysDir: the auth role's keys directory is its Secret whole (the
// signing keys' files are named by their kid, unknown when the chart
// renders), the keyring in it; the data keys' vault is elsewhere (the
// database) since the directory is read-only; and the container mounts a
// volume of the same Secret listing the required files.
func checkKeysDir(t *testing.T, spec corev1.PodSpec, c corev1.Container, cfg app.Config,
	secretAt func(what, path string) (*corev1.SecretVolumeSource, string)) {
	t.Helper()
	dir := cfg.KeysDir()
	s, rel := secretAt("auth.keys_dir", dir)
	if s == nil {
		return
	}
	if rel != dir || len(s.Items) > 0 {
		t.Errorf("auth.keys_dir %s: %q of a volume with items %v, want the mount of the whole Secret", dir, rel, s.Items)
	}
	if k, _ := secretAt("seal.keyring_file", cfg.KeyringFile()); k != s {
		t.Errorf("seal.keyring_file %s is not on the keys Secret's volume", cfg.KeyringFile())
	}
	if vault := cfg.VaultURL(); strings.Contains(vault, dir) {
		t.Errorf("seal.vault_url %s is in the read-only keys directory", vault)
	}
	for _, m := range c.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || spec.Volumes[i].Secret == nil || spec.Volumes[i].Secret.SecretName != s.SecretName {
			continue
		}
		var listed []string
		for _, k := range spec.Volumes[i].Secret.Items {
			if k.Key == k.Path {
				listed = append(listed, k.Key)
			}
		}
		if !m.ReadOnly || spec.Volumes[i].Secret.Optional != nil && *spec.Volumes[i].Secret.Optional {
			continue
		}
		if !slices.ContainsFunc(requiredKeys, func(k string) bool { return !slices.Contains(listed, k) }) {
			return
		}
	}
	t.Errorf("no mounted, non-optional volume of Secret %s lists %v as items: a Secret without them would start the pod", s.SecretName, requiredKeys)
}

func ptrOr32(p *int32) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprintf("%#o", *p)
}
