package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/certs"
	"github.com/multijuego/multijuego/internal/config"
	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/router"
	"github.com/multijuego/multijuego/internal/seal/hsm"
	"github.com/multijuego/multijuego/internal/webui"
)

// devServer reports whether this is a developer's own server: the
// embedded default (no external database, Redis, NATS or key-value store)
// listening on a loopback address. Sign-ups from loopback are then not
// held to auth.signup_ip_limit: the demo and the load tool make every
// account from 127.0.0.1.
func (c *Config) devServer() bool {
	if c.DatabaseURL != "" || c.RedisURL != "" || c.NATSURL != "" || (c.KV != "" && c.KV != "memory") {
		return false
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Config is the whole configuration tree. Each component owns its part.
type Config struct {
	DataDir     string   `yaml:"data_dir" help:"directory for the SQLite database, signing keys and other local state"`
	Listen      string   `yaml:"listen" help:"HOST:PORT the HTTP server listens on (port 0 picks a free port)"`
	DatabaseURL string   `yaml:"database_url" help:"postgres://... to use PostgreSQL; empty for SQLite in data_dir"`
	Roles       []string `yaml:"roles" help:"roles this process runs: all, or a comma-separated list of gateway, auth, game, persistence"`
	NodeID      string   `yaml:"node_id" help:"this process's name among the nodes (game node directory, routing subjects, session ids): letters, digits, '-' and '_'; default: the host name and a random suffix"`
	NATSURL     string   `yaml:"nats_url" help:"nats://HOST:PORT[,nats://...]: the NATS JetStream server or cluster that carries match events; empty = embedded in this process (file storage in data_dir/nats)"`

	RedisURL         string `yaml:"redis_url" help:"redis://HOST:PORT/DB, a comma-separated list of redis:// seeds, or redis-cluster://HOST:PORT,...: the shared cache and (unless kv says otherwise) key-value store; empty = in-process"`
	RedisPrefix      string `yaml:"redis_prefix" help:"prefix of every key multijuego keeps in Redis, so several deployments can share one Redis"`
	KV               string `yaml:"kv" help:"key-value store for volatile shared data: memory, redis or dynamodb (empty: redis when redis_url is set, else memory)"`
	DynamoDBEndpoint string `yaml:"dynamodb_endpoint" help:"DynamoDB endpoint URL for kv=dynamodb (empty: the AWS default for the region)"`
	DynamoDBTable    string `yaml:"dynamodb_table" help:"DynamoDB table for kv=dynamodb"`
	DynamoDBRegion   string `yaml:"dynamodb_region" help:"AWS region for kv=dynamodb"`

	Log     LogConfig            `yaml:"log"`
	Store   StoreConfig          `yaml:"store"`
	Cache   CacheConfig          `yaml:"cache"`
	Gateway gateway.Config       `yaml:"gateway"`
	Web     webui.Config         `yaml:"web"`
	Auth    auth.Config          `yaml:"auth"`
	Game    GameConfig           `yaml:"game"`
	Events  EventsConfig         `yaml:"events"`
	Limits  gateway.LimitsConfig `yaml:"limits"`
	Seal    SealConfig           `yaml:"seal"`
	Metrics MetricsConfig        `yaml:"metrics"`

	Security SecurityConfig `yaml:"security"`
	RedisTLS certs.Client   `yaml:"redis_tls"`
}

// MetricsConfig places /metrics.
type MetricsConfig struct {
	Listen string `yaml:"listen" help:"HOST:PORT of a separate admin listener for /metrics (plain HTTP; keep it off the players' network); when set, /metrics is not served on listen. Empty: /metrics on listen. /healthz and /readyz stay on listen"`
}

// EventsConfig configures the event queue (NATS JetStream) and the
// persistence role that consumes it.
type EventsConfig struct {
	Listen string `yaml:"listen" help:"embedded NATS only: a HOST:PORT where it also accepts clients with the users of data_dir/nats/users.json (empty: in-process only); a loopback address unless events.listen_tls is set"`
	// ListenTLS is the TLS of the embedded NATS listener (events.listen).
	ListenTLS       certs.Server  `yaml:"listen_tls"`
	Sync            string        `yaml:"sync" help:"embedded NATS: default (an ack means written, fsync within 2 minutes) or always (an ack means fsynced; about 20x slower publishing)"`
	Replicas        int           `yaml:"replicas" help:"JetStream replicas of the event streams (3 on a 3-node NATS cluster); an existing stream is raised to it, never lowered; 0: 1 for a new stream, an existing stream's count kept"`
	DuplicateWindow time.Duration `yaml:"duplicate_window" help:"how long JetStream remembers event ids to drop duplicate publishes"`
	Buffer          int           `yaml:"buffer" help:"events a game node holds while the queue is unreachable (results beyond it go to a spool file, other events are dropped and counted)"`
	Batch           int           `yaml:"batch" help:"persistence: events written per database transaction at most"`
	MaxDeliver      int           `yaml:"max_deliver" help:"persistence: deliveries of a failing event before it is moved to the dead-letter queue"`
	// Credentials of this process's connection to an external NATS (one
	// kind at most); docs/operations.md, "Event bus credentials".
	User           string `yaml:"user" help:"external NATS: the user of this process's connection (its role's user: see docs/operations.md), with events.password_file"`
	PasswordFile   string `yaml:"password_file" help:"external NATS: file whose first line is events.user's password"`
	CredsFile      string `yaml:"creds_file" help:"external NATS: credentials file (user JWT and nkey seed) of this process's connection"`
	NkeySeedFile   string `yaml:"nkey_seed_file" help:"external NATS: file holding this process's nkey user seed (SU...)"`
	SigningKeyFile string `yaml:"signing_key_file" help:"key (hex, 32 bytes or more, mode 0600) game nodes sign events with and persistence checks them with; the same file on every game and persistence node, required with nats_url; read sealed or in clear, never rewritten; empty with the embedded NATS: data_dir/events-signing.key, made on first start sealed by the key provider"`
	// TLS of the connection to an external NATS (nats_url).
	TLS certs.Client `yaml:"tls"`
}

// GameConfig configures the game role: the match engine and the game node.
type GameConfig struct {
	Region          string        `yaml:"region" help:"this game node's region: a match created with the region parameter goes to a node of that region"`
	Zone            string        `yaml:"zone" help:"this game node's availability zone (shown in the node directory)"`
	MaxMatches      int           `yaml:"max_matches" help:"matches this node runs at most"`
	MaxPlayers      int           `yaml:"max_players" help:"players this node hosts at most before placement skips it (0: no limit)"`
	SnapshotEvery   int           `yaml:"snapshot_every" help:"ticks between snapshots of a live match to the key-value store (0 disables; a final one is always written)"`
	SnapshotTTL     time.Duration `yaml:"snapshot_ttl" help:"how long a match snapshot is kept after its last write"`
	Heartbeat       time.Duration `yaml:"heartbeat" help:"match directory lease renewal; a lease lasts three heartbeats"`
	BatchInterval   time.Duration `yaml:"batch_interval" help:"split roles: longest an input (gateway) or a state (game node) waits to share one NATS message with others bound for the same node"`
	DisconnectGrace time.Duration `yaml:"disconnect_grace" help:"how long a dropped player keeps the seat"`
	ShutdownGrace   time.Duration `yaml:"shutdown_grace" help:"how long matches get to end when the node drains"`
	EmptyTimeout    time.Duration `yaml:"empty_timeout" help:"a match nobody has been seated in for this long ends with reason empty (0: never); a match whose players all dropped ends after disconnect_grace plus this"`

	MaxMatchesPerAccount int `yaml:"max_matches_per_account" help:"live matches (created and not ended) one account may have created, across all gateways; past it match.create and POST /v1/matches get rate_limited / 429 (0: no limit)"`
	MaxMatchesPerIP      int `yaml:"max_matches_per_ip" help:"live matches one client IP may have created, across all gateways (0: no limit; loopback exempt on a developer's own server)"`
}

// LogConfig configures structured logging.
type LogConfig struct {
	Format string `yaml:"format" help:"text or json"`
	Level  string `yaml:"level" help:"debug, info, warn or error"`
}

// StoreConfig configures the relational store.
type StoreConfig struct {
	MaxOpenConns int           `yaml:"max_open_conns" help:"connection pool size (PostgreSQL; SQLite read pool)"`
	BusyTimeout  time.Duration `yaml:"busy_timeout" help:"how long a SQLite writer waits for the lock"`
	AutoMigrate  bool          `yaml:"auto_migrate" help:"apply pending migrations at start"`
}

// CacheConfig configures the cache.
type CacheConfig struct {
	MaxBytes   int64         `yaml:"max_bytes" help:"bound of the in-process cache (and of the near-cache in front of Redis), in bytes"`
	Near       bool          `yaml:"near" help:"keep a per-node near-cache in front of Redis, invalidated across nodes by pub/sub"`
	NearMaxAge time.Duration `yaml:"near_max_age" help:"longest a near-cache entry is trusted without hearing from Redis"`
	Timeout    time.Duration `yaml:"timeout" help:"bound of one cache or key-value operation on Redis/DynamoDB"`
	AccountTTL time.Duration `yaml:"account_ttl" help:"how long account lookups stay cached (writes invalidate at once)"`
	// LeaderboardTTL bounds how stale a leaderboard page may be: pages are
	// read once per TTL per node (or per Redis) however many players ask.
	LeaderboardTTL time.Duration `yaml:"leaderboard_ttl" help:"how long a leaderboard page (top N, list of boards) stays cached; 0 turns the cache off"`
}

// DefaultConfig is the configuration of `multijuego serve` with nothing set.
func DefaultConfig() Config {
	return Config{
		DataDir:        "./data",
		Listen:         "127.0.0.1:7350",
		Roles:          []string{"all"},
		Seal:           SealConfig{Provider: "local", PersonalData: true, PKCS11: PKCS11Config{KeyLabel: hsm.DefaultKeyLabel}},
		Security:       SecurityConfig{RequireTLS: true},
		Log:            LogConfig{Format: "text", Level: "info"},
		Store:          StoreConfig{MaxOpenConns: 10, BusyTimeout: 5 * time.Second, AutoMigrate: true},
		Cache:          CacheConfig{MaxBytes: 64 << 20, Near: true, NearMaxAge: 30 * time.Second, Timeout: 250 * time.Millisecond, AccountTTL: 5 * time.Minute, LeaderboardTTL: 2 * time.Second},
		RedisPrefix:    "mj:",
		DynamoDBTable:  "multijuego",
		DynamoDBRegion: "us-east-1",
		Gateway:        gateway.DefaultConfig(),
		Web:            webui.DefaultConfig(),
		Auth:           auth.DefaultConfig(),
		Game: GameConfig{MaxMatches: 10_000, SnapshotEvery: 100, SnapshotTTL: 10 * time.Minute, Heartbeat: 2 * time.Second, BatchInterval: 2 * time.Millisecond, EmptyTimeout: time.Minute,
			DisconnectGrace: 30 * time.Second, ShutdownGrace: 10 * time.Second, MaxMatchesPerAccount: 3, MaxMatchesPerIP: 20},
		Events: EventsConfig{Sync: "default", DuplicateWindow: 2 * time.Minute, Buffer: 10_000, Batch: 500, MaxDeliver: 5},
		Limits: gateway.DefaultLimitsConfig(),
	}
}

// The roles this binary knows, and what each needs.
const (
	RoleGateway = "gateway"
	RoleAuth    = "auth"
	RoleGame    = "game"
	// RolePersistence consumes match events and writes them to the
	// database.
	RolePersistence = "persistence"
)

// knownRoles lists the roles in start order. "all" means every one.
var knownRoles = []string{RoleGateway, RoleAuth, RoleGame, RolePersistence}

// roleNeeds is the dependency map: what each role needs from the process.
// "http" is the HTTP server (every process has one, for health and
// metrics); "router" reaches game nodes and gateways in other processes
// over NATS.
var roleNeeds = map[string][]string{
	// The gateway checks tokens (the auth role's keys, or its JWKS and the
	// shared deny list), serves the records read API from the database,
	// keeps socket tickets in the key-value store and reaches matches
	// through the router.
	RoleGateway:     {"http", "store", "kv", "events", "router"},
	RoleAuth:        {"http", "store", "kv", "keys"},
	RoleGame:        {"http", "kv", "engine", "events", "router"},
	RolePersistence: {"http", "store", "kv", "events"},
}

// splitNeeds are the settings a role needs when some role it works with
// runs in another process: shared engines instead of embedded ones. Each
// entry names the setting in the error.
func splitNeeds(c Config, v *config.Validator) {
	roles := ExpandRoles(c.Roles)
	has := func(r string) bool { return slices.Contains(roles, r) }
	if len(roles) == len(knownRoles) {
		return // all in one process: the embedded default works
	}
	shares := func(r string) bool { return has(r) && r != RoleAuth }
	for _, r := range roles {
		if !shares(r) {
			continue
		}
		v.Check(c.NATSURL != "", "nats_url", "is required when the %s role runs without the others (set it to the NATS server or cluster every role shares; an embedded NATS is private to its process)", r)
	}
	if has(RoleGateway) || has(RoleGame) {
		shared := c.RedisURL != "" || c.KV == "dynamodb"
		v.Check(shared, "redis_url", "is required (or kv=dynamodb) when the gateway and game roles run in separate processes: the node directory and socket tickets must be shared")
	}
	if has(RoleGateway) && !has(RoleAuth) {
		v.Check(c.Gateway.AuthURL != "", "gateway.auth_url", "is required when this process runs the gateway role without the auth role")
	}
}

// ExpandRoles resolves "all" and removes duplicates.
func ExpandRoles(roles []string) []string {
	var out []string
	for _, r := range roles {
		if r == "all" {
			return slices.Clone(knownRoles)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func needs(roles []string, what string) bool {
	for _, r := range roles {
		if slices.Contains(roleNeeds[r], what) {
			return true
		}
	}
	return false
}

// Validate checks every key and returns all problems at once, each naming
// its key and what is allowed.
func (c Config) Validate() error {
	var v config.Validator
	v.Check(c.DataDir != "", "data_dir", "must not be empty")
	host, port, err := net.SplitHostPort(c.Listen)
	if err == nil {
		_, perr := strconv.ParseUint(port, 10, 16)
		err = perr
	}
	v.Check(err == nil, "listen", "must be HOST:PORT with a port 0-65535 (port 0 picks a free one), got %q", c.Listen)
	_ = host
	if ml := c.Metrics.Listen; ml != "" {
		_, port, err := net.SplitHostPort(ml)
		if err == nil {
			_, err = strconv.ParseUint(port, 10, 16)
		}
		v.Check(err == nil, "metrics.listen", "must be HOST:PORT with a port 0-65535 (example: 127.0.0.1:9090), got %q", ml)
		v.Check(ml != c.Listen || port == "0", "metrics.listen", "must differ from listen (%q): it is a separate listener", c.Listen)
	}
	if c.DatabaseURL != "" {
		ok := strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://") || strings.HasPrefix(c.DatabaseURL, "sqlite://")
		v.Check(ok, "database_url", "must start with postgres://, postgresql:// or sqlite:// (or be empty for SQLite in data_dir)")
	}
	v.Check(len(c.Roles) > 0, "roles", "must name at least one role (all, gateway, auth)")
	for _, r := range c.Roles {
		v.Check(r == "all" || slices.Contains(knownRoles, r), "roles", "unknown role %q (allowed: all, %s)", r, strings.Join(knownRoles, ", "))
	}
	v.Check(c.NodeID == "" || router.ValidNodeID(c.NodeID), "node_id", "must be 1 to 64 letters, digits, '-' or '_', got %q", c.NodeID)
	splitNeeds(c, &v)
	if c.RedisURL != "" {
		ok := strings.HasPrefix(c.RedisURL, "redis://") || strings.HasPrefix(c.RedisURL, "rediss://") || strings.HasPrefix(c.RedisURL, "redis-cluster://")
		v.Check(ok, "redis_url", "must start with redis://, rediss:// or redis-cluster:// (a cluster may also be a comma-separated list of redis:// URLs)")
	}
	v.Check(len(c.RedisPrefix) <= 64 && !strings.ContainsAny(c.RedisPrefix, " {}"), "redis_prefix", "must be at most 64 characters without spaces or braces, got %q", c.RedisPrefix)
	v.Check(slices.Contains([]string{"", "memory", "redis", "dynamodb"}, c.KV), "kv", "must be memory, redis or dynamodb, got %q", c.KV)
	v.Check(c.KV != "redis" || c.RedisURL != "", "kv", "kv=redis needs redis_url")
	v.Check(c.KV != "dynamodb" || c.DynamoDBTable != "", "dynamodb_table", "must be set for kv=dynamodb")
	if c.DynamoDBEndpoint != "" {
		u, err := url.Parse(c.DynamoDBEndpoint)
		v.Check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", "dynamodb_endpoint", "must be an http(s) URL, got %q", c.DynamoDBEndpoint)
	}
	v.Check(c.Cache.MaxBytes >= 1<<20 && c.Cache.MaxBytes <= 64<<30, "cache.max_bytes", "must be between 1048576 (1 MiB) and 64 GiB, got %d", c.Cache.MaxBytes)
	v.Check(c.Cache.NearMaxAge >= time.Second && c.Cache.NearMaxAge <= time.Hour, "cache.near_max_age", "must be between 1s and 1h, got %s", c.Cache.NearMaxAge)
	v.Check(c.Cache.Timeout >= 10*time.Millisecond && c.Cache.Timeout <= 10*time.Second, "cache.timeout", "must be between 10ms and 10s, got %s", c.Cache.Timeout)
	v.Check(c.Cache.LeaderboardTTL >= 0 && c.Cache.LeaderboardTTL <= time.Hour, "cache.leaderboard_ttl", "must be between 0s and 1h, got %s", c.Cache.LeaderboardTTL)
	v.Check(c.Cache.AccountTTL >= time.Second && c.Cache.AccountTTL <= 24*time.Hour, "cache.account_ttl", "must be between 1s and 24h, got %s", c.Cache.AccountTTL)
	v.Check(c.Game.MaxMatches >= 1 && c.Game.MaxMatches <= 1_000_000, "game.max_matches", "must be between 1 and 1000000, got %d", c.Game.MaxMatches)
	v.Check(c.Game.MaxPlayers >= 0 && c.Game.MaxPlayers <= 10_000_000, "game.max_players", "must be between 0 (no limit) and 10000000, got %d", c.Game.MaxPlayers)
	v.Check(len(c.Game.Region) <= 64 && len(c.Game.Zone) <= 64, "game.region", "region and zone must be at most 64 characters")
	v.Check(c.Game.SnapshotEvery >= 0 && c.Game.SnapshotEvery <= 1_000_000, "game.snapshot_every", "must be between 0 (off) and 1000000 ticks, got %d", c.Game.SnapshotEvery)
	v.Check(c.Game.SnapshotTTL >= time.Second && c.Game.SnapshotTTL <= 7*24*time.Hour, "game.snapshot_ttl", "must be between 1s and 168h, got %s", c.Game.SnapshotTTL)
	v.Check(c.Game.EmptyTimeout >= 0, "game.empty_timeout", "must be 0 (never) or more, got %s", c.Game.EmptyTimeout)
	v.Check(c.Game.MaxMatchesPerAccount >= 0 && c.Game.MaxMatchesPerIP >= 0, "game.max_matches_per_account", "max_matches_per_account and max_matches_per_ip must be 0 (no limit) or more")
	v.Check(c.Game.BatchInterval >= 100*time.Microsecond && c.Game.BatchInterval <= 50*time.Millisecond, "game.batch_interval", "must be between 100us and 50ms, got %s", c.Game.BatchInterval)
	v.Check(c.Game.Heartbeat >= 100*time.Millisecond && c.Game.Heartbeat <= time.Minute, "game.heartbeat", "must be between 100ms and 1m, got %s", c.Game.Heartbeat)
	v.Check(c.Game.DisconnectGrace >= 0 && c.Game.DisconnectGrace <= time.Hour, "game.disconnect_grace", "must be between 0s and 1h, got %s", c.Game.DisconnectGrace)
	v.Check(c.Game.ShutdownGrace >= 0 && c.Game.ShutdownGrace <= 10*time.Minute, "game.shutdown_grace", "must be between 0s and 10m, got %s", c.Game.ShutdownGrace)
	for _, u := range strings.Split(c.NATSURL, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		pu, err := url.Parse(u)
		v.Check(err == nil && (pu.Scheme == "nats" || pu.Scheme == "tls") && pu.Host != "", "nats_url", "must be nats://HOST:PORT[,nats://...], got %q", u)
	}
	e := c.Events
	if e.Listen != "" {
		_, _, err := net.SplitHostPort(e.Listen)
		v.Check(err == nil, "events.listen", "must be HOST:PORT, got %q", e.Listen)
	}
	if e.ListenTLS.Set() {
		v.Check(e.Listen != "" && c.NATSURL == "", "events.listen_tls", "is the TLS of the embedded NATS listener: set events.listen (and no nats_url) too")
		v.Check(e.ListenTLS.CertFile != "" && e.ListenTLS.KeyFile != "", "events.listen_tls.cert_file", "events.listen_tls needs both cert_file and key_file")
		v.Check(len(e.ListenTLS.ClientNames) == 0 || e.ListenTLS.ClientCAFile != "", "events.listen_tls.client_names", "names the client certificates accepted: set events.listen_tls.client_ca_file too")
	}
	v.Check(e.Sync == "default" || e.Sync == "always", "events.sync", "must be default or always, got %q", e.Sync)
	v.Check(e.Replicas >= 0 && e.Replicas <= 5, "events.replicas", "must be between 0 and 5, got %d", e.Replicas)
	v.Check(e.Replicas <= 1 || c.NATSURL != "", "events.replicas", "is %d, but the embedded NATS is a single node: set nats_url to a NATS cluster, or events.replicas to 0 or 1", e.Replicas)
	v.Check(e.DuplicateWindow >= time.Second && e.DuplicateWindow <= 24*time.Hour, "events.duplicate_window", "must be between 1s and 24h, got %s", e.DuplicateWindow)
	v.Check(e.Buffer >= 1 && e.Buffer <= 10_000_000, "events.buffer", "must be between 1 and 10000000, got %d", e.Buffer)
	v.Check(e.Batch >= 1 && e.Batch <= 10_000, "events.batch", "must be between 1 and 10000, got %d", e.Batch)
	v.Check(e.MaxDeliver >= 1 && e.MaxDeliver <= 1000, "events.max_deliver", "must be between 1 and 1000, got %d", e.MaxDeliver)
	kinds := 0
	for _, set := range []bool{e.CredsFile != "", e.NkeySeedFile != "", e.User != "" || e.PasswordFile != ""} {
		if set {
			kinds++
		}
	}
	v.Check(kinds <= 1, "events.user", "use one of events.creds_file, events.nkey_seed_file, or events.user with events.password_file")
	v.Check((e.User == "") == (e.PasswordFile == ""), "events.password_file", "events.user and events.password_file go together")
	v.Check(kinds == 0 || c.NATSURL != "", "events.user", "NATS credentials are for an external NATS (nats_url); the embedded one makes its own users in data_dir/%s", events.EmbeddedUsersFile)
	v.Check(c.Log.Format == "text" || c.Log.Format == "json", "log.format", "must be text or json, got %q", c.Log.Format)
	v.Check(slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level), "log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	v.Check(c.Store.MaxOpenConns >= 1 && c.Store.MaxOpenConns <= 1000, "store.max_open_conns", "must be between 1 and 1000, got %d", c.Store.MaxOpenConns)
	v.Check(c.Store.BusyTimeout >= 0 && c.Store.BusyTimeout <= time.Minute, "store.busy_timeout", "must be between 0s and 1m, got %s", c.Store.BusyTimeout)
	c.Gateway.Validate(&v, "gateway")
	c.Web.Validate(&v, "web")
	c.Auth.Validate(&v, "auth")
	c.Limits.Validate(&v, "limits")
	c.Seal.Validate(&v, "seal")
	return v.Err()
}

// KeysDir is where the signing keys live.
func (c Config) KeysDir() string {
	if c.Auth.KeysDir != "" {
		return c.Auth.KeysDir
	}
	return strings.TrimRight(c.DataDir, "/") + "/keys"
}

// LoadConfig builds the effective configuration from defaults, the file
// named by --config (or MULTIJUEGO_CONFIG), the environment and the flags
// in args, in that order of precedence. It returns the arguments left after
// the flags.
func LoadConfig(name string, args, environ []string, stderr io.Writer) (Config, []string, error) {
	cfg := DefaultConfig()
	file := configFileArg(args)
	if file == "" {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, config.EnvPrefix+"CONFIG="); ok {
				file = v
			}
		}
	}
	if file != "" {
		if err := config.LoadFile(&cfg, file); err != nil {
			return cfg, nil, err
		}
	}
	if err := config.LoadEnv(&cfg, environ); err != nil {
		return cfg, nil, err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", file, "YAML configuration file (env MULTIJUEGO_CONFIG)")
	config.RegisterFlags(&cfg, fs)
	// Flags may come before, between or after positional arguments.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return cfg, nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, fmt.Errorf("invalid configuration:\n%w", indent(err))
	}
	return cfg, positional, nil
}

func indent(err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return errors.New(strings.Join(lines, "\n"))
}

// configFileArg finds --config FILE or --config=FILE before flag parsing,
// so the file can be applied under the environment and the other flags.
func configFileArg(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"--config", "-config"} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}
