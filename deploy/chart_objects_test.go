package deploy_test

import (
	"regexp"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// gameMetric is the per-pod metric game nodes scale on; TestMetricsExist
// checks that a game node exports it.
const gameMetric = "multijuego_matches_live"

// regexpLB matches the annotations of cloud load balancers
// (service.beta.kubernetes.io/aws-load-balancer-type,
// cloud.google.com/load-balancer-type, ...).
var regexpLB = regexp.MustCompile(`load-?balancer`)

// public is the role players reach: the gateway, or the embedded pod.
func public(r rendered) string {
	if len(r.deployments) == 1 {
		return "all"
	}
	return "gateway"
}

// selects reports whether sel (a label selector) picks d's pods.
func selects(t *testing.T, sel *metav1.LabelSelector, d *appsv1.Deployment) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(d.Spec.Template.Labels))
}

// selected returns the one Deployment whose pods sel picks.
func selected(t *testing.T, r rendered, what string, sel *metav1.LabelSelector) *appsv1.Deployment {
	t.Helper()
	var hits []*appsv1.Deployment
	for _, d := range r.deployments {
		if selects(t, sel, d) {
			hits = append(hits, d)
		}
	}
	if len(hits) != 1 {
		t.Fatalf("%s selects %d Deployments, want 1", what, len(hits))
	}
	return hits[0]
}

func checkServices(t *testing.T, r rendered) {
	t.Helper()
	if len(r.services) != len(r.deployments) {
		t.Errorf("%d Services for %d Deployments", len(r.services), len(r.deployments))
	}
	for _, s := range r.services {
		d := selected(t, r, "Service "+s.Name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		c := d.Spec.Template.Spec.Containers[0]
		for _, p := range s.Spec.Ports {
			if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal }) {
				t.Errorf("Service %s port %s targets %v, not a named port of the container", s.Name, p.Name, p.TargetPort)
			}
		}
		if role(d.Spec.Template.Labels) != public(r) {
			if s.Spec.Type != corev1.ServiceTypeClusterIP {
				t.Errorf("Service %s is %s, want ClusterIP: only the %s is reachable from outside", s.Name, s.Spec.Type, public(r))
			}
			continue
		}
		lb := false
		for k := range s.Annotations {
			lb = lb || regexpLB.MatchString(k)
		}
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || !lb || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.StrVal != "http" {
			t.Errorf("public Service %s: type %s, annotations %v, ports %v; want a LoadBalancer annotated for the cloud's balancer, to http only",
				s.Name, s.Spec.Type, s.Annotations, s.Spec.Ports)
		}
	}
}

func checkDisruptionAndScaling(t *testing.T, r rendered) {
	t.Helper()
	if public(r) == "all" {
		if len(r.pdbs)+len(r.hpas) > 0 {
			t.Errorf("embedded: %d PDBs and %d HPAs, want none for one pod that owns its SQLite file", len(r.pdbs), len(r.hpas))
		}
		if d := r.deployments[0]; d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("embedded: replicas %v, strategy %s; want 1, Recreate", d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		return
	}
	covered := map[string]bool{}
	for _, p := range r.pdbs {
		d := selected(t, r, "PodDisruptionBudget "+p.Name, p.Spec.Selector)
		covered[d.Name] = true
		if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
			t.Errorf("PDB %s limits nothing", p.Name)
		}
	}
	scaled := map[string]*autoscalingv2.HorizontalPodAutoscaler{}
	for _, h := range r.hpas {
		scaled[h.Spec.ScaleTargetRef.Name] = h
	}
	for _, d := range r.deployments {
		if !covered[d.Name] {
			t.Errorf("Deployment %s has no PodDisruptionBudget", d.Name)
		}
		h := scaled[d.Name]
		if h != nil && d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas and has an HPA: every upgrade would reset the HPA's count", d.Name)
		}
		switch role(d.Spec.Template.Labels) {
		case "gateway":
			if h == nil || len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
				h.Spec.Metrics[0].Resource.Target.Type != autoscalingv2.UtilizationMetricType {
				t.Errorf("gateway HPA %+v, want one on CPU utilization", h)
			}
		case "game":
			if h == nil || len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Pods == nil || h.Spec.Metrics[0].Pods.Metric.Name != gameMetric ||
				h.Spec.Metrics[0].Pods.Target.Type != autoscalingv2.AverageValueMetricType {
				t.Errorf("game HPA %+v, want one on the Pods metric %s, average value", h, gameMetric)
			}
		}
		if h != nil && (h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas) {
			t.Errorf("HPA %s: min %v max %d, want at least 2 replicas (one drains while the other serves)", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}
}

// allowedOnHTTP is who may open the http port of each role: anyone only
// for the public role; gateways for auth (proxied routes, readiness);
// gateways and NATS for game nodes; nobody for persistence.
var allowedOnHTTP = map[string][]string{
	"all": {"anyone"}, "gateway": {"anyone"}, "auth": {"gateway"}, "game": {"gateway", "nats"}, "persistence": nil,
}

func checkNetworkPolicies(t *testing.T, r rendered) {
	t.Helper()
	for _, d := range r.deployments {
		var mine []*networkingv1.NetworkPolicy
		for _, p := range r.policies {
			if selects(t, &p.Spec.PodSelector, d) {
				mine = append(mine, p)
			}
		}
		if len(mine) != 1 || !slices.Equal(mine[0].Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			t.Errorf("Deployment %s: %d NetworkPolicies, want 1 of type Ingress", d.Name, len(mine))
			continue
		}
		var onHTTP []string
		for _, rule := range mine[0].Spec.Ingress {
			ports := map[string]bool{}
			for _, p := range rule.Ports {
				ports[p.Port.String()] = true
			}
			if len(ports) == 0 {
				t.Errorf("%s: a rule open on every port", mine[0].Name)
			}
			for port := range ports {
				switch port {
				case "http":
					onHTTP = append(onHTTP, peers(rule.From)...)
				case "metrics":
					for _, f := range rule.From {
						if f.NamespaceSelector == nil || f.PodSelector == nil || len(f.NamespaceSelector.MatchLabels) == 0 {
							t.Errorf("%s: metrics open to %+v, want Prometheus's pods in its namespace only", mine[0].Name, f)
						}
					}
					if len(rule.From) == 0 {
						t.Errorf("%s: metrics open to anyone", mine[0].Name)
					}
				default:
					t.Errorf("%s: port %s opened", mine[0].Name, port)
				}
			}
		}
		slices.Sort(onHTTP)
		want := allowedOnHTTP[role(d.Spec.Template.Labels)]
		if !slices.Equal(onHTTP, want) {
			t.Errorf("%s: http open to %v, want %v", mine[0].Name, onHTTP, want)
		}
	}
}

// peers names a rule's sources: "anyone" with none, a role for this
// release's pods, "nats" for the NATS servers.
func peers(from []networkingv1.NetworkPolicyPeer) []string {
	if len(from) == 0 {
		return []string{"anyone"}
	}
	var out []string
	for _, f := range from {
		switch {
		case f.IPBlock != nil || f.PodSelector == nil:
			out = append(out, "anyone")
		case f.PodSelector.MatchLabels["app.kubernetes.io/name"] == "nats":
			out = append(out, "nats")
		case f.PodSelector.MatchLabels["app.kubernetes.io/name"] == "multijuego":
			out = append(out, f.PodSelector.MatchLabels["app.kubernetes.io/component"])
		default:
			out = append(out, "unknown pods")
		}
	}
	return out
}
