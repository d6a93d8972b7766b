package main_test

import (
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// `multijuego audit verify` passes on the chain a server made (logins, an
// admin's role change, key rotations), fails naming a changed row, and
// with an anchor printed earlier names rows deleted from the end.
func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append(args, "--data-dir", dataDir)...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	must("migrate", "up")
	must("keys", "rotate")
	p := start(t, "--data-dir", dataDir)
	if code, _ := p.call("POST", "/v1/auth/register", "", map[string]string{"username": "boss", "password": "boss-password"}); code != 201 {
		t.Fatal("register boss")
	}
	must("accounts", "set-roles", "boss", "player,admin")
	_, login := p.call("POST", "/v1/auth/login", "", map[string]string{"username": "boss", "password": "boss-password"})
	code, body := p.call("GET", "/v1/admin/audit?kind=key_rotate", str(login, "access_token"), nil)
	if ev, _ := body["events"].([]any); code != 200 || len(ev) != 1 {
		t.Fatalf("key rotation in the audit log: %d %v", code, body)
	}
	if code := p.stop(); code != 0 { // a stopping node chains what is left
		t.Fatalf("exit %d", code)
	}

	out := must("audit", "verify")
	head := regexp.MustCompile(`head: +(\d+:[0-9a-f]{64})`).FindStringSubmatch(out)
	if !strings.Contains(out, "chained: 4 rows") || !strings.Contains(out, "OK") || head == nil || strings.Contains(out, "not chained") {
		t.Fatalf("audit verify on a good chain (key_rotate, register, roles_change, login_ok):\n%s", out)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "multijuego.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rawExec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rawExec(`UPDATE audit_log SET ip='203.0.113.7' WHERE chain_seq=3`)
	out, err = cli("audit", "verify")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "changed   at 3") {
		t.Fatalf("audit verify after a change: %v\n%s", err, out)
	}
	rawExec(`DELETE FROM audit_log WHERE chain_seq=4`)
	out, err = cli("audit", "verify", head[1])
	if err == nil || !strings.Contains(out, "truncated at 4") || !strings.Contains(out, "changed   at 3") {
		t.Fatalf("audit verify with the anchor after the last row was deleted: %v\n%s", err, out)
	}
}
