package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/bots"
	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/config"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/store"
)

const usage = `multijuego: an open-source backend for real-time multiplayer games.

Usage:
  multijuego serve [flags]                 run the selected roles (default: all) until SIGTERM/SIGINT
  multijuego migrate up|status [flags]     apply or list database migrations
  multijuego keys rotate|list [flags]      rotate or list the JWT signing keys in the keys directory
  multijuego keys rotate-kek|rewrap [flags]
                                           new key-encryption key in the keyring (and seal the key
                                           files and data keys under it), or seal them under the current one
  multijuego keys seal-data [flags]        seal the personal data stored in clear (resumable)
  multijuego keys address-key --gateway-address-key-file FILE
                                           a new key gateways hash client addresses with in Redis
                                           (the same file on every gateway and auth node)
  multijuego accounts set-roles USERNAME ROLES [flags]
                                           give an account roles (comma-separated: player,admin,service)
  multijuego accounts reapply-erasures [flags]
                                           after restoring a backup, delete again the accounts erased since
  multijuego audit verify [SEQ:HASH] [flags]
                                           check the audit log's hash chain (and that it still holds
                                           the head SEQ:HASH printed earlier); exit 1 if it does not
  multijuego backup --to FILE [flags]       the embedded default's database, streams and keys in one
                                           archive, consistent while the server runs (pass its
                                           --events-listen as --nats-url); see docs/operations.md
  multijuego restore --from FILE [--force] [flags]
                                           a backup into a new --data-dir (--force moves what is
                                           there aside), checked against its checksums
  multijuego config print [flags]          print the effective configuration, secrets masked
  multijuego certs init DIR | issue DIR NAME HOST,...
                                           a development CA and certificates for TLS between roles
  multijuego dlq list|show SEQ|replay SEQ|replay --all|purge [--yes] --nats-url URL
                                           inspect and replay the dead-letter queue of match events
  multijuego bots --url URL --mode arena --players N --duration 30s [flags]
                                           load tool: simulated players against a running server
  multijuego version                       print the version

Every configuration key can be set in a YAML file (--config FILE), as an
environment variable (MULTIJUEGO_DATA_DIR) or as a flag (--data-dir), in
increasing order of precedence. 'multijuego serve --help' lists them all.
`

// Run is the command line. It returns the process exit code. modes are the
// game modes `serve` offers.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string, modes ...Mode) int {
	cmd := "serve"
	switch {
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		cmd, args = args[0], args[1:]
	case len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		// Bare flags are serve's ('multijuego --listen ...'), but help
		// alone asks for the commands; 'serve --help' lists the flags.
		cmd = "help"
	}
	switch cmd {
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version":
		fmt.Fprintln(stdout, "multijuego", version())
		return 0
	case "certs":
		if err := certsCmd(args, stdout, time.Now()); err != nil {
			fmt.Fprintf(stderr, "multijuego certs: %v\n", err)
			return 1
		}
		return 0
	case "bots":
		// The load tool is a client: it has its own flags, not the
		// server's configuration.
		return bots.Main(ctx, args, stdout, stderr)
	}
	sub := ""
	var err error
	if cmd == "migrate" || cmd == "keys" || cmd == "config" || cmd == "accounts" || cmd == "dlq" || cmd == "audit" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(stderr, "multijuego %s: missing subcommand\n\n%s", cmd, usage)
			return 2
		}
		sub, args = args[0], args[1:]
	}
	var dlqFlags []string
	if cmd == "dlq" {
		// --all and --yes belong to the dlq commands, not to the
		// configuration's flag set.
		var kept []string
		for _, a := range args {
			if a == "--all" || a == "--yes" || a == "-y" {
				dlqFlags = append(dlqFlags, a)
			} else {
				kept = append(kept, a)
			}
		}
		args = kept
	}
	var own map[string]string // backup and restore's own flags
	var force bool
	if cmd == "backup" || cmd == "restore" {
		var set map[string]bool
		if own, set, args, err = cutFlags(args, []string{"to", "from"}, []string{"force"}); err != nil {
			fmt.Fprintf(stderr, "multijuego %s: %v\n", cmd, err)
			return 2
		}
		force = set["force"]
	}
	cfg, rest, err := LoadConfig("multijuego "+cmd, args, environ, stderr)
	rest = append(rest, dlqFlags...)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "multijuego: %v\n", err)
		return 2
	}
	log := NewLogger(cfg.Log, stderr)
	if cmd != "accounts" && cmd != "dlq" && cmd != "audit" && len(rest) > 0 {
		fmt.Fprintf(stderr, "multijuego %s: unexpected argument %q\n", cmd, rest[0])
		return 2
	}
	switch cmd {
	case "serve":
		err = Serve(ctx, cfg, modes, stdout, log)
	case "migrate":
		err = migrate(ctx, cfg, sub, stdout)
	case "keys":
		if sub == "seal-data" {
			err = sealData(ctx, cfg, stdout)
			break
		}
		if sub == "address-key" {
			err = newAddressKeyFile(cfg.Gateway.AddressKeyFile, stdout)
			break
		}
		var rotated map[string]any
		if rotated, err = keys(ctx, cfg, sub, stdout); err == nil && rotated != nil {
			auditKeyRotation(ctx, cfg, sub, rotated, stdout)
		}
	case "config":
		if sub != "print" {
			err = fmt.Errorf("unknown command 'config %s' (try 'config print')", sub)
			break
		}
		fmt.Fprint(stdout, config.Print(&cfg))
	case "accounts":
		err = accounts(ctx, cfg, sub, rest, stdout, log)
	case "dlq":
		err = dlq(ctx, cfg, sub, rest, os.Stdin, stdout)
	case "audit":
		err = auditCmd(ctx, cfg, sub, rest, stdout, time.Now())
	case "backup":
		err = backup(ctx, cfg, own["to"], stdout)
	case "restore":
		err = restore(ctx, cfg, own["from"], force, stdout)
	default:
		fmt.Fprintf(stderr, "multijuego: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "multijuego: %v\n", err)
		return 1
	}
	return 0
}

func migrate(ctx context.Context, cfg Config, sub string, out io.Writer) error {
	s, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	switch sub {
	case "up":
		n, err := s.Migrate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "applied %d migration(s) to %s\n", n, s.Dialect())
		return nil
	case "status":
		all, unknown, err := s.MigrationStatus(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
		pending := 0
		for _, m := range all {
			applied := "pending"
			if !m.AppliedAt.IsZero() {
				applied = m.AppliedAt.Format(time.RFC3339)
			} else {
				pending++
			}
			fmt.Fprintf(tw, "%04d\t%s\t%s\n", m.Version, m.Name, applied)
		}
		tw.Flush()
		if len(unknown) > 0 {
			fmt.Fprintf(out, "the database has migrations this binary does not know: %v (a newer version migrated it)\n", unknown)
		}
		fmt.Fprintf(out, "%s: %d applied, %d pending\n", s.Dialect(), len(all)-pending, pending)
		return nil
	}
	return fmt.Errorf("unknown command 'migrate %s' (try up or status)", sub)
}

// keys runs a keys subcommand; after a rotation it returns what it rotated,
// for the audit log.
func keys(ctx context.Context, cfg Config, sub string, out io.Writer) (rotated map[string]any, err error) {
	dir, provider, err := cfg.keysDir(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer provider.Close()
	switch sub {
	case "rotate-kek":
		rotated, msg, err := rotateKEK(ctx, cfg, provider, dir)
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(out, msg)
		d, err := rewrapDataKeys(ctx, cfg, dir, out)
		if err != nil {
			return nil, err
		}
		b, err := resealBusSecrets(ctx, cfg, dir.Seal)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "%d data keys and %d event bus secrets rewrapped under it\n", d, b)
		rotated["data_keys"] = d
		return rotated, nil
	case "rewrap":
		n, err := dir.Rewrap()
		if err != nil {
			return nil, err
		}
		d, err := rewrapDataKeys(ctx, cfg, dir, out)
		if err != nil {
			return nil, err
		}
		b, err := resealBusSecrets(ctx, cfg, dir.Seal)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "%d key files in %s, %d data keys and %d event bus secrets sealed under the current key-encryption key\n", n, dir.Path, d, b)
		return nil, nil
	case "rotate":
		kid, err := auth.RotateKeys(dir, cfg.Auth.AccessTTL+cfg.Auth.ClockSkew, time.Now())
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "new signing key %s in %s; running nodes switch to it within %s, previous keys keep verifying for %s\n",
			kid, dir.Path, cfg.Auth.KeysReload, cfg.Auth.AccessTTL+cfg.Auth.ClockSkew)
		return map[string]any{"kid": kid}, nil
	case "list":
		infos, err := auth.ListKeys(dir)
		if err != nil {
			return nil, err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tCREATED\tSTATE")
		for _, k := range infos {
			state := "signing"
			if !k.RetiredAt.IsZero() {
				state = "retired " + k.RetiredAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Kid, k.CreatedAt.Format(time.RFC3339), state)
		}
		return nil, tw.Flush()
	}
	return nil, fmt.Errorf("unknown command 'keys %s' (try rotate, list, rotate-kek, rewrap, seal-data or address-key)", sub)
}

func accounts(ctx context.Context, cfg Config, sub string, args []string, out io.Writer, log interface{ Info(string, ...any) }) error {
	if sub == "reapply-erasures" {
		return reapplyErasures(ctx, cfg, out)
	}
	if sub != "set-roles" {
		return fmt.Errorf("unknown command 'accounts %s' (try set-roles or reapply-erasures)", sub)
	}
	if len(args) != 2 {
		return errors.New("usage: multijuego accounts set-roles USERNAME ROLES (for example: alice player,admin)")
	}
	ss, err := openSealedStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer ss.Close()
	mem := kv.NewMemory(kv.MemoryOptions{}) // the CLI never logs anyone in: throttles unused
	defer mem.Close()
	deps := auth.Deps{Store: ss.store, KV: mem}
	if cfg.RedisURL != "" {
		// The servers' shared cache: the change reaches the profiles they
		// cached (device logins read them) at once, through the cache's
		// cross-node invalidation, not after cache.account_ttl. (On the
		// embedded default the cache is the server's own memory.)
		vol, err := openVolatile(ctx, cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer vol.Close()
		deps.Profiles = cache.NewTyped[auth.Profile](vol.cache, "account", 1, cache.TypedOptions{Metrics: vol.metrics, Name: "account"})
		deps.ProfileTTL = cfg.Cache.AccountTTL
	}
	svc, err := auth.New(ctx, cfg.Auth, ss.keys, deps)
	if err != nil {
		return err
	}
	a, err := svc.AccountByName(ctx, args[0])
	if err != nil {
		return err
	}
	var roles []string
	for _, r := range strings.Split(args[1], ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	a, err = svc.SetRoles(ctx, nil, a.ID, roles, auth.Meta{IP: "cli"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s (%s) now has roles %s\n", a.Username, a.ID, strings.Join(a.Roles, ","))
	return nil
}

// openMigratedStore opens the store for a command that needs its schema
// current (it does not migrate).
func openMigratedStore(ctx context.Context, cfg Config) (*store.Store, error) {
	s, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cur, err := s.Current(ctx); err != nil || !cur {
		s.Close()
		return nil, errors.New("the database is not migrated; run 'multijuego migrate up' first")
	}
	return s, nil
}

func getOK(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
