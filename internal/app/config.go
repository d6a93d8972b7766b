package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/config"
	"github.com/multijuego/multijuego/internal/gateway"
)

// Config is the whole configuration tree. Each component owns its part.
type Config struct {
	DataDir     string   `yaml:"data_dir" help:"directory for the SQLite database, signing keys and other local state"`
	Listen      string   `yaml:"listen" help:"HOST:PORT the HTTP server listens on (port 0 picks a free port)"`
	DatabaseURL string   `yaml:"database_url" help:"postgres://... to use PostgreSQL; empty for SQLite in data_dir"`
	Roles       []string `yaml:"roles" help:"roles this process runs: all, or a comma-separated list of gateway, auth"`

	Log     LogConfig      `yaml:"log"`
	Store   StoreConfig    `yaml:"store"`
	Gateway gateway.Config `yaml:"gateway"`
	Auth    auth.Config    `yaml:"auth"`
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

// DefaultConfig is the configuration of `multijuego serve` with nothing set.
func DefaultConfig() Config {
	return Config{
		DataDir: "./data",
		Listen:  "127.0.0.1:7350",
		Roles:   []string{"all"},
		Log:     LogConfig{Format: "text", Level: "info"},
		Store:   StoreConfig{MaxOpenConns: 10, BusyTimeout: 5 * time.Second, AutoMigrate: true},
		Gateway: gateway.DefaultConfig(),
		Auth:    auth.DefaultConfig(),
	}
}

// The roles this binary knows, and what each needs.
const (
	RoleGateway = "gateway"
	RoleAuth    = "auth"
)

// knownRoles lists the roles in start order. "all" means every one.
var knownRoles = []string{RoleGateway, RoleAuth}

// roleNeeds is the dependency map: what each role needs from the process.
var roleNeeds = map[string][]string{
	RoleGateway: {"http"},
	RoleAuth:    {"http", "store", "keys"},
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
	if c.DatabaseURL != "" {
		ok := strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://") || strings.HasPrefix(c.DatabaseURL, "sqlite://")
		v.Check(ok, "database_url", "must start with postgres://, postgresql:// or sqlite:// (or be empty for SQLite in data_dir)")
	}
	v.Check(len(c.Roles) > 0, "roles", "must name at least one role (all, gateway, auth)")
	for _, r := range c.Roles {
		v.Check(r == "all" || slices.Contains(knownRoles, r), "roles", "unknown role %q (allowed: all, %s)", r, strings.Join(knownRoles, ", "))
	}
	roles := ExpandRoles(c.Roles)
	if slices.Contains(roles, RoleGateway) && !slices.Contains(roles, RoleAuth) {
		v.Check(c.Gateway.AuthURL != "", "gateway.auth_url", "is required when this process runs the gateway role without the auth role")
	}
	v.Check(c.Log.Format == "text" || c.Log.Format == "json", "log.format", "must be text or json, got %q", c.Log.Format)
	v.Check(slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level), "log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	v.Check(c.Store.MaxOpenConns >= 1 && c.Store.MaxOpenConns <= 1000, "store.max_open_conns", "must be between 1 and 1000, got %d", c.Store.MaxOpenConns)
	v.Check(c.Store.BusyTimeout >= 0 && c.Store.BusyTimeout <= time.Minute, "store.busy_timeout", "must be between 0s and 1m, got %s", c.Store.BusyTimeout)
	c.Gateway.Validate(&v, "gateway")
	c.Auth.Validate(&v, "auth")
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
