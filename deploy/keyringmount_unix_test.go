//go:build unix

package deploy_test

import (
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/redistest"
)

// natsURL is the NATS server on loopback the tests share; without it the
// test is skipped (fatal with CI=true).
func natsURL(t *testing.T) string {
	t.Helper()
	const addr = "127.0.0.1:4222"
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NATS is required in CI but does not answer at %s: %v", addr, err)
		}
		t.Skipf("NATS not available at %s: %v", addr, err)
	}
	c.Close()
	return "nats://" + addr
}

// gameOnKeyring starts the real binary's game role as the chart's split
// game pod runs it (personalEvents.enabled): as uid 65532, its
// seal.keyring_file the keys Secret's keyring.kek item alone on a volume
// laid out as the kubelet lays it out, its seal.vault_url the auth pods'
// vault (vault, the database). It opens the key provider and the vault
// (the start fails on a keyring it cannot read, and warns without a
// vault), becomes ready, leaves the volume as it was and exits cleanly.
func gameOnKeyring(t *testing.T, bin, root string, keys map[string][]byte, vault string) {
	t.Helper()
	mount := secretVolume(t, root, map[string][]byte{"keyring.kek": keys["keyring.kek"]}, "")
	events := secretVolume(t, root, map[string][]byte{"events-signing.key": []byte(strings.Repeat("5e", 32) + "\n")}, "")
	data, err := os.MkdirTemp(root, "game")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, podUser, podUser); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, mount)
	p := serve(t, bin, true, "--roles", "game", "--node-id", "game-0", "--data-dir", data,
		"--nats-url", natsURL(t), "--events-signing-key-file", filepath.Join(events, "events-signing.key"),
		"--redis-url", redistest.URL(t), "--redis-prefix", redistest.Prefix(t),
		"--seal-vault-url", vault, "--seal-keyring-file", filepath.Join(mount, "keyring.kek"))
	p.waitReady(t)
	if code := p.stop(t); code != 0 {
		t.Errorf("game role exited %d after SIGTERM\n%s", code, p.log())
	}
	if strings.Contains(p.log(), "no data key vault") {
		t.Errorf("the game role started without the vault: EmitPersonal would be refused\n%s", p.log())
	}
	if after := snapshot(t, mount); !maps.Equal(before, after) {
		t.Errorf("the read-only keyring volume changed:\nbefore %v\nafter  %v", before, after)
	}
}
