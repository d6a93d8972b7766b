package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/build"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/config"
)

// No Kubernetes cluster runs here: the chart is kept honest by rendering
// it (helm template, the helm version scripts/test.sh installs) and
// decoding every object strictly into the k8s.io/api types, so a
// misspelt or misplaced field fails, then checking what the objects say.

const (
	chartDir    = "helm/multijuego"
	helmVersion = "v3.22"
	kubeVersion = "1.34.0" // a cluster the chart supports (Chart.yaml kubeVersion: >=1.30, for preStop sleep)
)

// helm finds the helm binary: on PATH or where `go install` puts it. With
// CI=true a missing or wrong helm fails the test.
func helm(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("helm")
	if err != nil {
		path = filepath.Join(build.Default.GOPATH, "bin", "helm")
		if _, serr := os.Stat(path); serr != nil {
			path = ""
		}
	}
	missing := func(format string, args ...any) {
		if os.Getenv("CI") == "true" {
			t.Fatalf(format+" (scripts/test.sh installs it)", args...)
		}
		t.Skipf(format, args...)
	}
	if path == "" {
		missing("helm %s is required", helmVersion)
	}
	out, err := exec.Command(path, "version", "--template", "{{.Version}}").Output()
	if err != nil || !strings.HasPrefix(string(out), helmVersion) {
		missing("helm %s is required, %s says %q (%v)", helmVersion, path, out, err)
	}
	return path
}

// rendered is one values file's objects, decoded.
type rendered struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	policies    []*networkingv1.NetworkPolicy
	claims      []*corev1.PersistentVolumeClaim
}

// render lints the chart with values (files, in order; none or "" for
// the defaults) and renders it, each object decoded strictly.
func render(t *testing.T, helmBin string, values ...string) rendered {
	t.Helper()
	args := []string{"--kube-version", kubeVersion, chartDir}
	for _, f := range values {
		if f != "" {
			args = append(args, "-f", f)
		}
	}
	if out, err := exec.Command(helmBin, append([]string{"lint", "--strict"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helmBin, append([]string{"template", "mj"}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.Bytes())
	}
	var r rendered
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if isEmptyYAML(doc) {
			continue
		}
		if err := r.add([]byte(doc)); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
	}
	return r
}

func isEmptyYAML(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// add decodes one object into its k8s.io/api type, refusing unknown fields
// and duplicate keys.
func (r *rendered) add(doc []byte) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("not strict YAML: %w", err)
	}
	var meta struct{ APIVersion, Kind string }
	if err := json.Unmarshal(js, &meta); err != nil {
		return err
	}
	var obj any
	switch meta.APIVersion + " " + meta.Kind {
	case "apps/v1 Deployment":
		d := new(appsv1.Deployment)
		r.deployments, obj = append(r.deployments, d), d
	case "v1 Service":
		s := new(corev1.Service)
		r.services, obj = append(r.services, s), s
	case "policy/v1 PodDisruptionBudget":
		p := new(policyv1.PodDisruptionBudget)
		r.pdbs, obj = append(r.pdbs, p), p
	case "autoscaling/v2 HorizontalPodAutoscaler":
		h := new(autoscalingv2.HorizontalPodAutoscaler)
		r.hpas, obj = append(r.hpas, h), h
	case "networking.k8s.io/v1 NetworkPolicy":
		n := new(networkingv1.NetworkPolicy)
		r.policies, obj = append(r.policies, n), n
	case "v1 PersistentVolumeClaim":
		c := new(corev1.PersistentVolumeClaim)
		r.claims, obj = append(r.claims, c), c
	default:
		return fmt.Errorf("unexpected object %s %s (a Secret or anything else the test does not check)", meta.APIVersion, meta.Kind)
	}
	// encoding/json matches field names regardless of case, so
	// readOnlyRootFileSystem would pass for readOnlyRootFilesystem and be
	// ignored by the API server: decode as the API server does, case
	// sensitive, unknown fields refused.
	strict, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("%s: %w", meta.Kind, err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("%s: %v", meta.Kind, strict)
	}
	return nil
}

func role(labelsOf map[string]string) string { return labelsOf["app.kubernetes.io/component"] }

func TestChart(t *testing.T) {
	helmBin := helm(t)
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("values files in %s/ci: %v %v, want at least 3", chartDir, files, err)
	}
	cases := map[string]struct {
		file  string
		roles []string
	}{"defaults": {"", []string{"all"}}}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		roles := []string{"gateway", "auth", "game", "persistence"}
		if name == "embedded" {
			roles = []string{"all"}
		}
		cases[name] = struct {
			file  string
			roles []string
		}{f, roles}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := render(t, helmBin, c.file)
			var got []string
			for _, d := range r.deployments {
				got = append(got, role(d.Spec.Template.Labels))
				t.Run(role(d.Spec.Template.Labels), func(t *testing.T) { checkDeployment(t, d) })
			}
			if !slices.Equal(got, c.roles) {
				t.Fatalf("Deployments for roles %v, want %v", got, c.roles)
			}
			checkServices(t, r)
			checkDisruptionAndScaling(t, r)
			checkNetworkPolicies(t, r)
			checkPersonalVault(t, r, readVaultValues(t, c.file))
			if got[0] == "all" && len(r.claims) != 1 {
				t.Errorf("embedded: %d PersistentVolumeClaims, want 1 for its state", len(r.claims))
			}
		})
	}
}

// envOf returns the environment the container would get, a Secret's value
// replaced by a stand-in of the right shape, and the names that come from
// a Secret.
func envOf(c corev1.Container) (environ []string, fromSecret map[string]bool) {
	fromSecret = map[string]bool{}
	stand := map[string]string{"MULTIJUEGO_DATABASE_URL": "postgres://game:pw@db:5432/game", "MULTIJUEGO_REDIS_URL": "redis://:pw@redis:6379/0",
		"MULTIJUEGO_SEAL_VAULT_URL": "postgres://vault:pw@db:5432/vault"}
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			fromSecret[e.Name] = true
			v = stand[e.Name]
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			v = "mj-multijuego-game-7d9f8-x2x4q" // a pod name
		}
		environ = append(environ, e.Name+"="+v)
	}
	return environ, fromSecret
}

func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	spec := d.Spec.Template.Spec
	r := role(d.Spec.Template.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the pod labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	// The configuration the process would load from this container: every
	// MULTIJUEGO_ variable a known key, every value valid.
	environ, fromSecret := envOf(c)
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %v, want serve first", c.Args)
	}
	cfg, _, err := app.LoadConfig("serve", c.Args[1:], environ, io.Discard)
	if err != nil {
		t.Fatalf("the container's configuration does not load: %v", err)
	}
	if !slices.Equal(cfg.Roles, []string{r}) {
		t.Errorf("roles %v, want [%s] (the component label)", cfg.Roles, r)
	}
	checkNoSecretLiteral(t, c, fromSecret)
	checkPorts(t, c, cfg)
	checkProbes(t, c, cfg)
	// The start's own check: with security.require_tls, every connection
	// to another machine (the example hosts here) must be TLS.
	if err := app.CheckOutgoingTLS(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("the process would refuse to start: %v", err)
	}
	checkDrain(t, spec, c, cfg, r)
	checkSecurity(t, spec)
	checkWritablePaths(t, spec, c, cfg)
	checkKeyMounts(t, spec, c, cfg)
	if len(spec.InitContainers) > 0 {
		t.Errorf("init containers %v: the pod runs the multijuego image alone", spec.InitContainers)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if c.Resources.Requests.Name(res, "").IsZero() || c.Resources.Limits.Name(res, "").IsZero() {
			t.Errorf("no %s request and limit", res)
		}
	}
	zone := false
	for _, tsc := range spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if tsc.TopologyKey == "topology.kubernetes.io/zone" && err == nil && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			zone = true
		}
	}
	if !zone {
		t.Error("no topology spread across zones selecting the role's pods")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the service account token is mounted: the process never talks to the Kubernetes API")
	}
}

// checkNoSecretLiteral: a secret key (config.Fields' Secret), or a URL
// with a password in it, comes from a Secret, never from a literal value.
func checkNoSecretLiteral(t *testing.T, c corev1.Container, fromSecret map[string]bool) {
	t.Helper()
	cfg := app.DefaultConfig()
	secret := map[string]bool{}
	for _, f := range config.Fields(&cfg) {
		secret[f.Env()] = f.Secret
	}
	for _, e := range c.Env {
		if fromSecret[e.Name] {
			continue
		}
		// A secret setting that names a file (gateway.tls_key_file) is
		// a path; checkWritablePaths sees that the file is mounted. One
		// that is a URL (seal.vault_url) may be given in the clear
		// without a password, as the values say: checked below.
		if secret[e.Name] && !strings.HasSuffix(e.Name, "_FILE") && !strings.HasSuffix(e.Name, "_URL") {
			t.Errorf("%s is a secret setting given as a literal value", e.Name)
		}
		for _, part := range strings.Split(e.Value, ",") {
			if u, err := url.Parse(strings.TrimSpace(part)); err == nil && u.User != nil {
				if _, has := u.User.Password(); has || u.Query().Has("password") {
					t.Errorf("%s carries a password in the clear: use the existingSecret values", e.Name)
				}
			}
		}
		if strings.Contains(strings.ToUpper(e.Name), "PASSWORD") && !strings.HasSuffix(e.Name, "_FILE") {
			t.Errorf("%s: passwords are files from Secrets, not values", e.Name)
		}
	}
}

func checkPorts(t *testing.T, c corev1.Container, cfg app.Config) {
	t.Helper()
	want := map[string]string{"http": cfg.Listen, "metrics": cfg.Metrics.Listen}
	for name, listen := range want {
		i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
		if i < 0 || !strings.HasSuffix(listen, fmt.Sprintf(":%d", c.Ports[i].ContainerPort)) {
			t.Errorf("container port %q does not match the listener %q", name, listen)
		}
	}
}

func checkProbes(t *testing.T, c corev1.Container, cfg app.Config) {
	t.Helper()
	scheme := corev1.URISchemeHTTP
	if cfg.Gateway.TLSCertFile != "" {
		scheme = corev1.URISchemeHTTPS
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if cfg.Gateway.TLSClientCAFile != "" {
			// A listener that requires client certificates: the kubelet
			// has none, so TCP.
			if p.probe == nil || p.probe.TCPSocket == nil || p.probe.TCPSocket.Port != intstr.FromString("http") {
				t.Errorf("%s probe %+v, want TCP on port http (client certificates required)", p.name, p.probe)
			}
			continue
		}
		// The probes stay on listen whatever metrics.listen says
		// (docs/operations.md): the port named http.
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path ||
			p.probe.HTTPGet.Port != intstr.FromString("http") || p.probe.HTTPGet.Scheme != scheme {
			t.Errorf("%s probe %+v, want GET %s on port http, %s", p.name, p.probe, p.path, scheme)
		}
	}
}

// checkDrain: the pod gets the preStop sleep and the whole drain before
// SIGKILL: gateway.drain_timeout for the HTTP server and, on a game node,
// the handover, the matches' shutdown_grace and the results' flush
// (internal/app/game.go).
func checkDrain(t *testing.T, spec corev1.PodSpec, c corev1.Container, cfg app.Config, r string) {
	t.Helper()
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		t.Fatalf("no preStop sleep: %+v", c.Lifecycle)
	}
	sleep := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	need := sleep + cfg.Gateway.DrainTimeout
	if r == "game" || r == "all" {
		need = max(need, sleep+2*(cfg.Game.ShutdownGrace+5*time.Second)+5*time.Second)
	}
	if spec.TerminationGracePeriodSeconds == nil || time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second < need {
		t.Errorf("terminationGracePeriodSeconds %ds, want at least %v (preStop %v, drain_timeout %v, shutdown_grace %v)",
			ptrOr(spec.TerminationGracePeriodSeconds), need, sleep, cfg.Gateway.DrainTimeout, cfg.Game.ShutdownGrace)
	}
}

func checkSecurity(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	ps := spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v, want non-root and seccomp RuntimeDefault", ps)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container %s securityContext %+v, want read-only root, no escalation, non-root, ALL capabilities dropped, seccomp RuntimeDefault", c.Name, sc)
		}
	}
}

// checkWritablePaths: with a read-only root, data_dir lies on a writable
// volume (emptyDir or claim) and every file setting on a mounted volume.
func checkWritablePaths(t *testing.T, spec corev1.PodSpec, c corev1.Container, cfg app.Config) {
	t.Helper()
	if v, _ := volumeAt(spec, c, cfg.DataDir); v == nil || (v.EmptyDir == nil && v.PersistentVolumeClaim == nil) {
		t.Errorf("data_dir %s is not on an emptyDir or claim", cfg.DataDir)
	}
	files := []string{cfg.Events.PasswordFile, cfg.Events.CredsFile, cfg.Events.NkeySeedFile, cfg.Events.TLS.CAFile, cfg.Events.TLS.CertFile,
		cfg.Events.TLS.KeyFile, cfg.RedisTLS.CAFile, cfg.RedisTLS.CertFile, cfg.RedisTLS.KeyFile, cfg.Gateway.TLSCertFile, cfg.Gateway.TLSKeyFile, cfg.Gateway.AddressKeyFile, cfg.Seal.KeyringFile}
	for _, f := range files {
		if v, _ := volumeAt(spec, c, f); f != "" && v == nil {
			t.Errorf("%s is on no mounted volume", f)
		}
	}
}

// volumeAt is the volume container c sees path on, and its mount.
func volumeAt(spec corev1.PodSpec, c corev1.Container, path string) (*corev1.Volume, corev1.VolumeMount) {
	var (
		v    *corev1.Volume
		best corev1.VolumeMount
	)
	for _, m := range c.VolumeMounts {
		if (path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")) && len(m.MountPath) > len(best.MountPath) {
			if i := slices.IndexFunc(spec.Volumes, func(vol corev1.Volume) bool { return vol.Name == m.Name }); i >= 0 {
				v, best = &spec.Volumes[i], m
			}
		}
	}
	return v, best
}

func ptrOr(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
