package config_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/config"
)

type tree struct {
	Name   string        `yaml:"name"`
	On     bool          `yaml:"on"`
	Count  int           `yaml:"count"`
	Small  uint8         `yaml:"small"`
	Wait   time.Duration `yaml:"wait"`
	List   []string      `yaml:"list"`
	Ratio  float64       `yaml:"ratio"`
	Token  string        `yaml:"token" secret:"true"`
	Nested struct {
		DeepKey string `yaml:"deep_key"`
	} `yaml:"nested"`
	ignored string
}

func TestNamesAndParsing(t *testing.T) {
	var c tree
	byKey := map[string]config.Field{}
	for _, f := range config.Fields(&c) {
		byKey[f.Key] = f
	}
	f := byKey["nested.deep_key"]
	if f.Env() != "MULTIJUEGO_NESTED_DEEP_KEY" || f.Flag() != "nested-deep-key" {
		t.Fatalf("names: %s %s", f.Env(), f.Flag())
	}
	for key, val := range map[string]string{"name": "x", "on": "true", "count": "-3", "small": "200", "wait": "1m30s", "list": " a, b ,,c ", "ratio": "0.5", "nested.deep_key": "d"} {
		if err := byKey[key].Set(val); err != nil {
			t.Fatalf("%s=%q: %v", key, val, err)
		}
	}
	if c.Name != "x" || !c.On || c.Count != -3 || c.Small != 200 || c.Wait != 90*time.Second || strings.Join(c.List, "|") != "a|b|c" || c.Ratio != 0.5 || c.Nested.DeepKey != "d" {
		t.Fatalf("parsed: %+v", c)
	}
	for key, bad := range map[string]string{"on": "yes please", "count": "3.5", "small": "300", "wait": "10", "ratio": "half"} {
		if err := byKey[key].Set(bad); err == nil || !strings.HasPrefix(err.Error(), key+":") {
			t.Errorf("%s=%q: err %v, want one naming the key", key, bad, err)
		}
	}
}

func TestFlagsAndEnv(t *testing.T) {
	var c tree
	if err := config.LoadEnv(&c, []string{"MULTIJUEGO_COUNT=7", "MULTIJUEGO_CONFIG=/x.yaml", "MULTIJUEGO_TEST_ANYTHING=1", "HOME=/root"}); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config.RegisterFlags(&c, fs)
	if err := fs.Parse([]string{"--on", "--wait=2s", "--nested-deep-key", "z"}); err != nil {
		t.Fatal(err)
	}
	if c.Count != 7 || !c.On || c.Wait != 2*time.Second || c.Nested.DeepKey != "z" {
		t.Fatalf("got %+v", c)
	}
}

func TestPrintMasks(t *testing.T) {
	var c tree
	c.Token = "s3cret"
	c.Name = "postgres://u:pw@h/db?password=pw2"
	out := config.Print(&c)
	if strings.Contains(out, "s3cret") || strings.Contains(out, "pw@") || strings.Contains(out, "pw2") {
		t.Fatalf("secrets printed:\n%s", out)
	}
	if !strings.Contains(out, "deep_key") {
		t.Fatalf("nested key missing:\n%s", out)
	}
	// A list of URLs (NATS or Redis seeds): every password is masked.
	c.Name = "nats://a:first@h1:4222,nats://b:second@h2:4222, redis://:third@h3:6379/0"
	out = config.Print(&c)
	for _, pw := range []string{"first", "second", "third"} {
		if strings.Contains(out, pw) {
			t.Fatalf("password %q of a URL list printed:\n%s", pw, out)
		}
	}
	if !strings.Contains(out, "h2:4222") || !strings.Contains(out, "h3:6379") {
		t.Fatalf("hosts of a URL list lost:\n%s", out)
	}
	// A comma inside a password splits it across two pieces of the list.
	c.Name = "redis://:fir,stpart@h1:6379,redis-cluster://u:sec,ondpart@h2:1,h3:2"
	out = config.Print(&c)
	for _, pw := range []string{"fir", "stpart", "sec", "ondpart"} {
		if strings.Contains(out, pw) {
			t.Fatalf("part %q of a password with a comma printed:\n%s", pw, out)
		}
	}
}
