package main_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/client"
	"github.com/multijuego/multijuego/internal/events/eventstest"
)

// rowSets are the committed rows a backup must keep: accounts, ended
// matches and match results, each as a set of keys.
type rowSets struct{ accounts, matches, results map[string]bool }

func readRows(t *testing.T, dataDir string) rowSets {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "multijuego.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	set := func(q string) map[string]bool {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			out[k] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	return rowSets{
		accounts: set(`SELECT id FROM accounts`),
		matches:  set(`SELECT id FROM matches WHERE ended_at IS NOT NULL`),
		results:  set(`SELECT match_id || '/' || account_id FROM match_results`),
	}
}

// missing lists the keys of want that got lacks, at most five.
func missing(want, got map[string]bool) []string {
	var out []string
	for k := range want {
		if !got[k] && len(out) < 5 {
			out = append(out, k)
		}
	}
	return out
}

func runCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "MULTIJUEGO_NATS_URL=", "MULTIJUEGO_DATABASE_URL=")
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// A backup taken while bots play tic-tac-toe restores into a new data
// directory, and the server started on it has every account, match and
// result committed before the backup began, none that the source never
// had, each result once; results in flight at the backup (in the stream,
// not yet in the database) arrive from the restored stream. The restored
// keys keep working: a token issued before the backup is accepted, and a
// device logs in to its old account.
func TestBackupRestoreUnderLoad(t *testing.T) {
	t.Parallel()
	srv := eventstest.StartServer(t) // borrow a free port
	addr := strings.TrimPrefix(srv.URL(), "nats://")
	srv.Stop()
	src := t.TempDir()
	// Matches the bots leave at the end of their run end within seconds.
	p := start(t, "--data-dir", src, "--events-listen", addr, "--game-disconnect-grace", "1s", "--game-empty-timeout", "1s")
	ctx := context.Background()
	// An account with an email: sealed under its data key in the vault,
	// found by the blind index.
	code, reg := p.call("POST", "/v1/auth/register", "", map[string]string{"username": "alice", "email": "alice@example.com", "password": "correct horse battery"})
	if code != 201 {
		t.Fatalf("register: %d %v", code, reg)
	}

	bots := exec.Command(binary, "bots", "--url", p.url, "--mode", "tictactoe", "--players", "40", "--prefix", "backup-",
		"--warmup", "1s", "--duration", "6s", "--metrics-url", "-", "--quiet")
	botsOut := &strings.Builder{}
	bots.Stdout, bots.Stderr = botsOut, botsOut
	if err := bots.Start(); err != nil {
		t.Fatal(err)
	}
	botsDone := make(chan error, 1)
	go func() { botsDone <- bots.Wait() }()
	t.Cleanup(func() {
		if bots.ProcessState == nil {
			_ = bots.Process.Kill()
			<-botsDone
		}
	})
	// Back up once results are flowing.
	for deadline := time.Now().Add(30 * time.Second); len(readRows(t, src).results) < 20; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no results 30s into the load\n%s", botsOut)
		}
	}
	before := readRows(t, src)
	archive := filepath.Join(t.TempDir(), "multijuego.backup")
	out, code := runCmd(t, "backup", "--to", archive, "--data-dir", src, "--nats-url", "nats://"+addr)
	if code != 0 || !strings.Contains(out, "snapshot of stream MJ_EVENTS") || !strings.Contains(out, "written in") {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	t.Logf("backup under load:\n%s", out)
	after := readRows(t, src)
	select {
	case err := <-botsDone:
		if err != nil {
			t.Fatalf("bots: %v\n%s", err, botsOut)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("bots did not end\n%s", botsOut)
	}
	// Everything the source ever committed, once its persistence is done.
	waitPersisted(t, p)
	final := readRows(t, src)
	stopAndBackUpOffline(t, p, src)

	// The running server's data dir is not a restore target, and a
	// backup without --nats-url refuses to open the queue under it.
	if out, code := runCmd(t, "restore", "--from", archive, "--data-dir", src); code != 1 || !strings.Contains(out, "is not empty") {
		t.Fatalf("restore over a data dir: exit %d\n%s", code, out)
	}
	checkDamagedRefused(t, archive)
	dst := filepath.Join(t.TempDir(), "restored")
	out, code = runCmd(t, "restore", "--from", archive, "--data-dir", dst)
	if code != 0 || !strings.Contains(out, "files checked against the manifest") {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	t.Logf("restore:\n%s", out)

	r := start(t, "--data-dir", dst)
	waitPersisted(t, r)
	checkRestored(t, dst, before, after, final)

	// The keys came back: alice's token verifies and shows her email (the
	// vault), she logs in by email (the blind index), a bot's device finds
	// its account (the device-id key).
	if code, body := r.call("GET", "/v1/account", str(reg, "access_token"), nil); code != 200 || str(body, "email") != "alice@example.com" {
		t.Errorf("token from before the backup on the restored server: %d %v", code, body)
	}
	code, login := r.call("POST", "/v1/auth/login", "", map[string]string{"email": "alice@example.com", "password": "correct horse battery"})
	if code != 200 || str(login, "account_id") != str(reg, "account_id") {
		t.Errorf("login by email after restore: %d %v, want account %s", code, login, str(reg, "account_id"))
	}
	bot, err := client.New(r.url)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := bot.Device(ctx, "backup-0-device"); err != nil || !before.accounts[tok.AccountID] {
		t.Errorf("a bot's device login after restore: account %q (%v), not one of the accounts backed up", tok.AccountID, err)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("restored server exit %d", code)
	}
}

// stopAndBackUpOffline stops the server p after checking that a backup
// without --nats-url, which would open the embedded store itself, is
// refused while p holds it; then it backs the stopped server up so.
func stopAndBackUpOffline(t *testing.T, p *proc, src string) {
	t.Helper()
	offline := filepath.Join(t.TempDir(), "offline.backup")
	if out, code := runCmd(t, "backup", "--to", offline, "--data-dir", src); code != 1 || !strings.Contains(out, "a server is running") {
		t.Fatalf("backup next to a running server without --nats-url: exit %d\n%s", code, out)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("source server exit %d", code)
	}
	if out, code := runCmd(t, "backup", "--to", offline, "--data-dir", src); code != 0 || !strings.Contains(out, "written in") {
		t.Fatalf("backup of a stopped server: exit %d\n%s", code, out)
	}
}

// checkDamagedRefused checks that a damaged copy of archive (a byte
// changed in its last file, the events snapshot) is refused, and nothing
// put in place.
func checkDamagedRefused(t *testing.T, archive string) {
	t.Helper()
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1024-513] ^= 0xff // before the tar trailer's two blocks and the last file's padding
	damaged := filepath.Join(t.TempDir(), "damaged.backup")
	if err := os.WriteFile(damaged, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if out, code := runCmd(t, "restore", "--from", damaged, "--data-dir", bad); code != 1 || !strings.Contains(out, "checksum") && !strings.Contains(out, "archive/tar") {
		t.Fatalf("restore of a damaged archive: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(bad, "multijuego.db")); err == nil {
		t.Fatal("a damaged archive's database was put in place")
	}
}

// checkRestored compares the restored database with the source's rows
// before the backup, after it, and in the end: every row from before is
// there, none the source never had; each result counted once.
func checkRestored(t *testing.T, dst string, before, after, final rowSets) {
	t.Helper()
	restored := readRows(t, dst)
	for _, c := range []struct {
		what                string
		before, after, have map[string]bool
	}{
		{"accounts", before.accounts, after.accounts, restored.accounts},
		{"ended matches", before.matches, final.matches, restored.matches},
		{"results", before.results, final.results, restored.results},
	} {
		if m := missing(c.before, c.have); len(m) > 0 {
			t.Errorf("%s committed before the backup and not restored: %q", c.what, m)
		}
		if m := missing(c.have, c.after); len(m) > 0 {
			t.Errorf("%s restored that the source never had: %q", c.what, m)
		}
	}
	inFlight := len(restored.results) - len(after.results)
	t.Logf("accounts %d before the backup, %d restored, %d after; results %d before, %d restored (%d more than the source had when the backup ended: they came from the restored stream), %d in the end",
		len(before.accounts), len(restored.accounts), len(after.accounts), len(before.results), len(restored.results), inFlight, len(final.results))

	// Each result counted once: the derived stats agree with the rows.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dst, "multijuego.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var wrong, games int
	if err := db.QueryRow(`SELECT count(*), coalesce(sum(s.games), 0) FROM player_stats s WHERE s.mode = '' AND s.games !=
		(SELECT count(*) FROM match_results r WHERE r.account_id = s.account_id)`).Scan(&wrong, &games); err != nil || wrong != 0 {
		t.Errorf("%d players' games differ from their results (%v)", wrong, err)
	}
	var rows, distinct int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT match_id || account_id) FROM match_results`).Scan(&rows, &distinct); err != nil || rows != distinct {
		t.Errorf("%d result rows, %d distinct (%v)", rows, distinct, err)
	}

}

// waitPersisted waits until the server's persistence has written every
// event in its stream.
func waitPersisted(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, p, "multijuego_persist_lag") != 0 || metric(t, p, "multijuego_matches_live") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("persistence lag %v, %v matches live after 30s (processed %v, retried %v, duplicates %v, dead-lettered %v, buffered %v)",
				metric(t, p, "multijuego_persist_lag"), metric(t, p, "multijuego_matches_live"), metric(t, p, "multijuego_persist_processed_total"),
				metric(t, p, "multijuego_persist_retried_total"), metric(t, p, "multijuego_persist_duplicates_total"),
				metric(t, p, "multijuego_persist_dead_lettered_total"), metric(t, p, "multijuego_events_buffered"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: persistence caught up in %s", p.url, time.Until(deadline.Add(-30*time.Second)).Abs().Round(time.Millisecond))
}
