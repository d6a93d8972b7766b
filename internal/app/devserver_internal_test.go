package app

import "testing"

// Only the embedded default listening on loopback is a developer's own
// server (sign-ups from loopback not limited).
func TestDevServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want bool
	}{
		{"default", func(*Config) {}, true},
		{"localhost", func(c *Config) { c.Listen = "localhost:7350" }, true},
		{"ipv6 loopback", func(c *Config) { c.Listen = "[::1]:7350" }, true},
		{"all interfaces", func(c *Config) { c.Listen = "0.0.0.0:7350" }, false},
		{"no host", func(c *Config) { c.Listen = ":7350" }, false},
		{"postgres", func(c *Config) { c.DatabaseURL = "postgres://127.0.0.1/x" }, false},
		{"redis", func(c *Config) { c.RedisURL = "redis://127.0.0.1:6379/0" }, false},
		{"nats", func(c *Config) { c.NATSURL = "nats://127.0.0.1:4222" }, false},
		{"dynamodb", func(c *Config) { c.KV = "dynamodb" }, false},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		if got := c.devServer(); got != tc.want {
			t.Errorf("%s (listen %q): devServer = %v, want %v", tc.name, c.Listen, got, tc.want)
		}
	}
}
