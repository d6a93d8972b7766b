package deploy_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/multijuego/multijuego/internal/app"
)

// vaultValues are a values file's vault and personalEvents.
type vaultValues struct {
	Vault struct {
		URL            string `json:"url"`
		ExistingSecret string `json:"existingSecret"`
	} `json:"vault"`
	PersonalEvents struct {
		Enabled *bool `json:"enabled"`
	} `json:"personalEvents"`
}

// enabled is personalEvents.enabled, the chart's default (true) when the
// file does not say.
func (v vaultValues) enabled() bool {
	return v.PersonalEvents.Enabled == nil || *v.PersonalEvents.Enabled
}

func readVaultValues(t *testing.T, file string) vaultValues {
	t.Helper()
	var v vaultValues
	if file == "" {
		return v
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// containerConfig is the configuration the deployment's process loads.
func containerConfig(t *testing.T, d *appsv1.Deployment) app.Config {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	environ, _ := envOf(c)
	cfg, _, err := app.LoadConfig("serve", c.Args[1:], environ, io.Discard)
	if err != nil {
		t.Fatalf("%s: the container's configuration does not load: %v", d.Name, err)
	}
	return cfg
}

func envVar(c corev1.Container, name string) (corev1.EnvVar, bool) {
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	if i < 0 {
		return corev1.EnvVar{}, false
	}
	return c.Env[i], true
}

// checkPersonalVault: in split mode, with personalEvents on, game and
// gateway pods seal and open personal match events with the auth pods'
// data key vault and key provider (internal/app/personalevents.go): their
// seal.vault_url comes from where the auth pods' vault does (its own
// setting, else their database URL: the auth role's default vault on
// PostgreSQL), and with the local provider their seal.keyring_file is the
// keyring.kek item of the auth pods' keys Secret, read-only. They never
// see anything else of that Secret (the signing keys, the device-id key),
// nor does a persistence pod, which needs no vault. With personalEvents
// off, game and gateway pods get neither.
func checkPersonalVault(t *testing.T, r rendered, values vaultValues) {
	t.Helper()
	enabled := values.enabled()
	byRole := map[string]*appsv1.Deployment{}
	for _, d := range r.deployments {
		byRole[role(d.Spec.Template.Labels)] = d
	}
	auth := byRole[app.RoleAuth]
	if auth == nil {
		return // embedded: one process, its own vault
	}
	ac := auth.Spec.Template.Spec.Containers[0]
	// The auth pods' vault: vault's, else the database (no seal.vault_url).
	authVault, own := envVar(ac, "MULTIJUEGO_SEAL_VAULT_URL")
	switch vv := values.Vault; {
	case vv.ExistingSecret != "" && (!own || authVault.ValueFrom == nil || authVault.ValueFrom.SecretKeyRef == nil ||
		authVault.ValueFrom.SecretKeyRef.Name != vv.ExistingSecret):
		t.Errorf("auth pods' seal.vault_url %+v, want it from the Secret %s (vault.existingSecret)", authVault, vv.ExistingSecret)
	case vv.ExistingSecret == "" && vv.URL != "" && authVault.Value != vv.URL:
		t.Errorf("auth pods' seal.vault_url %+v, want vault.url %q", authVault, vv.URL)
	case vv.ExistingSecret == "" && vv.URL == "" && own:
		t.Errorf("auth pods' seal.vault_url %+v without vault values, want none (the database is the vault)", authVault)
	}
	if !own {
		if authVault, own = envVar(ac, "MULTIJUEGO_DATABASE_URL"); !own {
			t.Fatal("the auth pods have neither seal.vault_url nor database_url")
		}
	}
	acfg := containerConfig(t, auth)
	keysVol, _ := volumeAt(auth.Spec.Template.Spec, ac, acfg.KeysDir())
	if keysVol == nil || keysVol.Secret == nil {
		t.Fatalf("the auth pods' keys dir %s is on no Secret volume", acfg.KeysDir())
	}
	keysSecret := keysVol.Secret.SecretName
	for _, name := range []string{app.RoleGame, app.RoleGateway, app.RolePersistence} {
		d := byRole[name]
		if d == nil {
			t.Errorf("no %s Deployment", name)
			continue
		}
		t.Run(name+"/vault", func(t *testing.T) {
			spec, c, cfg := d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0], containerConfig(t, d)
			checkOnlyKeyring(t, spec, c, keysSecret)
			v, has := envVar(c, "MULTIJUEGO_SEAL_VAULT_URL")
			if !enabled || name == app.RolePersistence {
				if has || cfg.Seal.VaultURL != "" {
					t.Errorf("seal.vault_url %+v given (personalEvents %v): want none", v, enabled)
				}
				if _, has := envVar(c, "MULTIJUEGO_SEAL_KEYRING_FILE"); has {
					t.Error("seal.keyring_file given, with no vault to use it for")
				}
				return
			}
			if !has || cfg.Seal.VaultURL == "" {
				t.Fatal("no seal.vault_url: EmitPersonal would be refused and personal data shown unavailable")
			}
			if v.Value != authVault.Value || !equality.Semantic.DeepEqual(v.ValueFrom, authVault.ValueFrom) {
				t.Errorf("seal.vault_url from %q %+v, want the auth pods' vault (%s: %q %+v)", v.Value, v.ValueFrom, authVault.Name, authVault.Value, authVault.ValueFrom)
			}
			if cfg.Seal.Provider != "local" {
				return
			}
			vol, m := volumeAt(spec, c, cfg.KeyringFile())
			if vol == nil || vol.Secret == nil || vol.Secret.SecretName != keysSecret {
				t.Fatalf("seal.keyring_file %s is not on a volume of the auth pods' keys Secret %s", cfg.KeyringFile(), keysSecret)
			}
			want := []corev1.KeyToPath{{Key: "keyring.kek", Path: "keyring.kek"}}
			if !m.ReadOnly || cfg.KeyringFile() != m.MountPath+"/keyring.kek" || !equality.Semantic.DeepEqual(vol.Secret.Items, want) {
				t.Errorf("keyring volume %s at %s (read-only %v) with items %v, want the item keyring.kek alone, read-only, as seal.keyring_file %s",
					vol.Name, m.MountPath, m.ReadOnly, vol.Secret.Items, cfg.KeyringFile())
			}
		})
	}
}

// checkOnlyKeyring: every volume of the keys Secret the container mounts
// lists its items, and those are the keyring at most.
func checkOnlyKeyring(t *testing.T, spec corev1.PodSpec, c corev1.Container, keysSecret string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || spec.Volumes[i].Secret == nil || spec.Volumes[i].Secret.SecretName != keysSecret {
			continue
		}
		items := spec.Volumes[i].Secret.Items
		if len(items) == 0 || slices.ContainsFunc(items, func(k corev1.KeyToPath) bool { return k.Key != "keyring.kek" }) {
			t.Errorf("volume %s at %s: keys Secret %s with items %v, want the keyring.kek item alone (the signing keys and device-id key stay on auth pods)",
				m.Name, m.MountPath, keysSecret, items)
		}
	}
}

// TestChartSealSettings: in split mode the chart refuses seal.vault_url
// or seal.keyring_file in config (the vault comes from vault or the
// database, the keyring from the keys Secret; config reaches every pod,
// persistence included, as literal values), and with a provider other
// than local (seal.provider in config, which every pod gets) game and
// gateway pods get the vault but no keyring.
func TestChartSealSettings(t *testing.T) {
	helmBin := helm(t)
	split := filepath.Join(chartDir, "ci", "split.yaml")
	for _, key := range []string{"seal.vault_url", "seal.keyring_file"} {
		out, err := exec.Command(helmBin, "template", "mj", chartDir, "--kube-version", kubeVersion, "-f", split,
			"--set-string", "config."+strings.ReplaceAll(key, ".", `\.`)+"=/x").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "config must not set seal.vault_url or seal.keyring_file") {
			t.Errorf("config %s in split mode: %v, want the chart to refuse it\n%s", key, err, out)
		}
	}
	values := filepath.Join(t.TempDir(), "awskms.yaml")
	if err := os.WriteFile(values, []byte("config:\n  seal.provider: awskms\n  seal.awskms.key_id: alias/multijuego\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := render(t, helmBin, split, values)
	checkPersonalVault(t, r, vaultValues{})
	for _, d := range r.deployments {
		c := d.Spec.Template.Spec.Containers[0]
		if _, has := envVar(c, "MULTIJUEGO_SEAL_KEYRING_FILE"); has || slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "keyring" }) {
			t.Errorf("%s: the keyring given with seal.provider awskms", d.Name)
		}
	}
}
