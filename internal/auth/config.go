package auth

import (
	"time"

	"github.com/multijuego/multijuego/internal/config"
)

// Config is the auth service's part of the configuration tree.
type Config struct {
	Issuer         string        `yaml:"issuer" help:"iss claim of the access tokens we issue and accept"`
	Audience       string        `yaml:"audience" help:"aud claim of the access tokens we issue and accept"`
	AccessTTL      time.Duration `yaml:"access_ttl" help:"lifetime of an access token"`
	RefreshTTL     time.Duration `yaml:"refresh_ttl" help:"lifetime of one refresh token (each refresh issues a new one)"`
	SessionTTL     time.Duration `yaml:"session_ttl" help:"absolute lifetime of a session (refresh family), whatever the rotations"`
	ClockSkew      time.Duration `yaml:"clock_skew" help:"leeway for exp/nbf/iat between nodes"`
	KeysDir        string        `yaml:"keys_dir" help:"directory of signing keys (default DATA_DIR/keys); share it between nodes"`
	KeysReload     time.Duration `yaml:"keys_reload" help:"how often the keys directory is re-read"`
	RevocationSync time.Duration `yaml:"revocation_sync" help:"how often the deny list is synced from the shared store (the cross-node revocation bound)"`
	TokenCache     int           `yaml:"token_cache" help:"verified access tokens remembered per node (0 disables)"`

	PasswordMinLength int    `yaml:"password_min_length" help:"minimum password length in characters"`
	PasswordMaxLength int    `yaml:"password_max_length" help:"maximum password length in characters (bounds hashing cost)"`
	Argon2MemoryKiB   uint32 `yaml:"argon2_memory_kib" help:"argon2id memory in KiB"`
	Argon2Iterations  uint32 `yaml:"argon2_iterations" help:"argon2id iterations"`
	Argon2Parallelism uint8  `yaml:"argon2_parallelism" help:"argon2id lanes"`
	HashConcurrency   int    `yaml:"hash_concurrency" help:"password hashes run at once (0 = number of CPUs)"`
	HashQueue         int    `yaml:"hash_queue" help:"requests that may wait for a hash slot; beyond that 503 at once"`

	LoginIPLimit      int           `yaml:"login_ip_limit" help:"login attempts per client IP per login_ip_window"`
	LoginIPWindow     time.Duration `yaml:"login_ip_window" help:"window of login_ip_limit"`
	AccountIPFailures int           `yaml:"account_ip_failures" help:"failed logins per account and IP per failure_window"`
	AccountFailures   int           `yaml:"account_failures" help:"failed logins per account from all IPs per failure_window; beyond it only IPs that logged in before may try"`
	FailureWindow     time.Duration `yaml:"failure_window" help:"window of the failure limits"`
	DeviceIPFailures  int           `yaml:"device_ip_failures" help:"device logins per client IP per failure_window that name an unknown device and may not sign up (the sign-up limit is spent); beyond it every device login from the IP is refused, a right id's too"`
	SignupIPLimit     int           `yaml:"signup_ip_limit" help:"registrations and new guest accounts per client IP per signup_ip_window"`
	SignupIPWindow    time.Duration `yaml:"signup_ip_window" help:"window of signup_ip_limit"`

	OIDC OIDCConfig `yaml:"oidc"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Issuer:         "multijuego",
		Audience:       "multijuego",
		AccessTTL:      15 * time.Minute,
		RefreshTTL:     7 * 24 * time.Hour,
		SessionTTL:     30 * 24 * time.Hour,
		ClockSkew:      10 * time.Second,
		KeysReload:     10 * time.Second,
		RevocationSync: 500 * time.Millisecond,
		TokenCache:     65536,

		PasswordMinLength: 8,
		PasswordMaxLength: 128,
		Argon2MemoryKiB:   19 * 1024,
		Argon2Iterations:  2,
		Argon2Parallelism: 1,
		HashQueue:         256,

		LoginIPLimit:      30,
		LoginIPWindow:     time.Minute,
		AccountIPFailures: 5,
		AccountFailures:   50,
		FailureWindow:     15 * time.Minute,
		DeviceIPFailures:  10,
		SignupIPLimit:     20,
		SignupIPWindow:    time.Hour,

		OIDC: DefaultOIDCConfig(),
	}
}

// Validate records every invalid key under prefix.
func (c Config) Validate(v *config.Validator, prefix string) {
	k := func(name string) string { return prefix + "." + name }
	v.Check(c.Issuer != "", k("issuer"), "must not be empty")
	v.Check(c.Audience != "", k("audience"), "must not be empty")
	v.Check(c.AccessTTL >= 30*time.Second && c.AccessTTL <= 24*time.Hour, k("access_ttl"), "must be between 30s and 24h, got %s", c.AccessTTL)
	v.Check(c.RefreshTTL >= time.Minute && c.RefreshTTL <= c.SessionTTL, k("refresh_ttl"), "must be at least 1m and at most session_ttl, got %s", c.RefreshTTL)
	v.Check(c.SessionTTL >= time.Minute && c.SessionTTL <= 366*24*time.Hour, k("session_ttl"), "must be between 1m and 8784h, got %s", c.SessionTTL)
	v.Check(c.ClockSkew >= 0 && c.ClockSkew <= 5*time.Minute, k("clock_skew"), "must be between 0s and 5m, got %s", c.ClockSkew)
	v.Check(c.KeysReload >= time.Second, k("keys_reload"), "must be at least 1s, got %s", c.KeysReload)
	v.Check(c.RevocationSync >= 100*time.Millisecond && c.RevocationSync <= time.Minute, k("revocation_sync"), "must be between 100ms and 1m, got %s", c.RevocationSync)
	v.Check(c.TokenCache >= 0 && c.TokenCache <= 10_000_000, k("token_cache"), "must be between 0 and 10000000, got %d", c.TokenCache)
	v.Check(c.PasswordMinLength >= 8 && c.PasswordMinLength <= 64, k("password_min_length"), "must be between 8 and 64 (NIST SP 800-63B asks for at least 8), got %d", c.PasswordMinLength)
	v.Check(c.PasswordMaxLength >= 64 && c.PasswordMaxLength <= 1024 && c.PasswordMaxLength >= c.PasswordMinLength, k("password_max_length"), "must be between 64 and 1024, got %d", c.PasswordMaxLength)
	v.Check(c.Argon2MemoryKiB >= 8*1024 && c.Argon2MemoryKiB <= 1024*1024, k("argon2_memory_kib"), "must be between 8192 and 1048576, got %d", c.Argon2MemoryKiB)
	v.Check(c.Argon2Iterations >= 1 && c.Argon2Iterations <= 20, k("argon2_iterations"), "must be between 1 and 20, got %d", c.Argon2Iterations)
	v.Check(c.Argon2Parallelism >= 1 && c.Argon2Parallelism <= 16, k("argon2_parallelism"), "must be between 1 and 16, got %d", c.Argon2Parallelism)
	v.Check(c.HashConcurrency >= 0 && c.HashConcurrency <= 1024, k("hash_concurrency"), "must be between 0 (CPUs) and 1024, got %d", c.HashConcurrency)
	v.Check(c.HashQueue >= 0 && c.HashQueue <= 100_000, k("hash_queue"), "must be between 0 and 100000, got %d", c.HashQueue)
	v.Check(c.LoginIPLimit >= 1, k("login_ip_limit"), "must be at least 1, got %d", c.LoginIPLimit)
	v.Check(c.LoginIPWindow >= time.Second, k("login_ip_window"), "must be at least 1s, got %s", c.LoginIPWindow)
	v.Check(c.AccountIPFailures >= 1, k("account_ip_failures"), "must be at least 1, got %d", c.AccountIPFailures)
	v.Check(c.AccountFailures >= c.AccountIPFailures, k("account_failures"), "must be at least account_ip_failures, got %d", c.AccountFailures)
	v.Check(c.FailureWindow >= time.Second, k("failure_window"), "must be at least 1s, got %s", c.FailureWindow)
	v.Check(c.DeviceIPFailures >= 1, k("device_ip_failures"), "must be at least 1, got %d", c.DeviceIPFailures)
	v.Check(c.SignupIPLimit >= 1, k("signup_ip_limit"), "must be at least 1, got %d", c.SignupIPLimit)
	v.Check(c.SignupIPWindow >= time.Second, k("signup_ip_window"), "must be at least 1s, got %s", c.SignupIPWindow)
	c.OIDC.Validate(v, k("oidc"))
}
