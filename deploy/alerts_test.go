package deploy_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAlertRules checks prometheus/alerts.yml with promtool, from
// Debian's prometheus package (2.42; scripts/test.sh installs it): `check
// rules` parses every rule, its PromQL and its templates; `test rules`
// runs the unit tests in prometheus/alerts_test.yml, made-up series and
// the alerts they must fire. With CI=true a missing promtool fails the
// test.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is required (scripts/test.sh installs Debian's prometheus package)")
		}
		t.Skip("promtool is not installed (Debian: apt-get install prometheus)")
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
