// Package config loads one configuration tree from defaults in code, a YAML
// file, MULTIJUEGO_* environment variables and command-line flags, in that
// order of precedence.
//
// The tree is a plain Go struct. Every leaf field carries a `yaml` tag naming
// its key; nested structs form dotted paths ("auth.access_ttl"). The same key
// becomes the environment variable MULTIJUEGO_AUTH_ACCESS_TTL and the flag
// --auth-access-ttl. Fields tagged `secret:"true"` are masked when printed.
// Every source goes through one parser per type, so a value means the same
// wherever it comes from.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable the loader reads.
const EnvPrefix = "MULTIJUEGO_"

// Field is one leaf of the configuration tree.
type Field struct {
	Key    string // dotted path, e.g. "auth.access_ttl"
	Help   string
	Secret bool
	value  reflect.Value
}

// Env is the environment variable that sets the field.
func (f Field) Env() string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(f.Key, ".", "_"))
}

// Flag is the command-line flag name (without dashes) that sets the field.
func (f Field) Flag() string {
	return strings.ReplaceAll(strings.ReplaceAll(f.Key, ".", "-"), "_", "-")
}

// String renders the current value in the syntax the parsers accept.
func (f Field) String() string { return format(f.value) }

// Set parses s into the field, with an error that names the key.
func (f Field) Set(s string) error {
	if err := parse(f.value, s); err != nil {
		return fmt.Errorf("%s: %w", f.Key, err)
	}
	return nil
}

// Fields lists the leaves of root, which must be a pointer to a struct.
func Fields(root any) []Field {
	v := reflect.ValueOf(root)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic("config: Fields needs a pointer to a struct")
	}
	var out []Field
	walk(v.Elem(), "", &out)
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

func walk(v reflect.Value, prefix string, out *[]Field) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != durationType {
			walk(fv, key, out)
			continue
		}
		*out = append(*out, Field{Key: key, Help: sf.Tag.Get("help"), Secret: sf.Tag.Get("secret") == "true", value: fv})
	}
}

func parse(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration (examples: 500ms, 15m, 720h)", s)
		}
		v.SetInt(int64(d))
		return nil
	case v.Kind() == reflect.String:
		v.SetString(s)
		return nil
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", s)
		}
		v.SetBool(b)
		return nil
	case v.Kind() >= reflect.Int && v.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
		return nil
	case v.Kind() >= reflect.Uint && v.Kind() <= reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer", s)
		}
		v.SetUint(n)
		return nil
	case v.Kind() == reflect.Float64:
		n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(n)
		return nil
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
		return nil
	}
	panic("config: unsupported field type " + v.Type().String())
}

func format(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = v.Index(i).String()
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(v.Interface())
	}
}

// LoadFile applies a YAML file. Unknown keys are errors that name the key.
func LoadFile(root any, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return LoadYAML(root, data)
}

// LoadYAML applies YAML text to root.
func LoadYAML(root any, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	byKey := map[string]Field{}
	prefixes := map[string]bool{}
	for _, f := range Fields(root) {
		byKey[f.Key] = f
		parts := strings.Split(f.Key, ".")
		for i := 1; i < len(parts); i++ {
			prefixes[strings.Join(parts[:i], ".")] = true
		}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	var apply func(n *yaml.Node, prefix string) error
	apply = func(n *yaml.Node, prefix string) error {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("config file: line %d: expected a mapping of keys", n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + k.Value
			}
			if f, ok := byKey[key]; ok {
				s, err := scalarText(val)
				if err != nil {
					return fmt.Errorf("config file: line %d: %s: %w", val.Line, key, err)
				}
				if err := f.Set(s); err != nil {
					return fmt.Errorf("config file: line %d: %w", val.Line, err)
				}
				continue
			}
			if prefixes[key] {
				if err := apply(val, key); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("config file: line %d: unknown key %q", k.Line, key)
		}
		return nil
	}
	return apply(doc.Content[0], "")
}

func scalarText(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", errors.New("expected a list of plain values")
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, ","), nil
	}
	return "", errors.New("expected a value, not a mapping")
}

// LoadEnv applies MULTIJUEGO_* variables found by lookup (os.LookupEnv in
// production). A MULTIJUEGO_ variable that names no key is an error, so a
// typo does not pass silently.
func LoadEnv(root any, environ []string) error {
	fields := Fields(root)
	byEnv := make(map[string]Field, len(fields))
	for _, f := range fields {
		byEnv[f.Env()] = f
	}
	var unknown []string
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || notKeys(name) {
			continue
		}
		f, known := byEnv[name]
		if !known {
			unknown = append(unknown, name)
			continue
		}
		if err := f.Set(val); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("environment: unknown variable %s (see 'multijuego config print' for the keys)", strings.Join(unknown, ", "))
	}
	return nil
}

// notKeys are MULTIJUEGO_ variables that are not configuration keys: the
// config file path, and the test suite's own settings.
func notKeys(name string) bool {
	return name == EnvPrefix+"CONFIG" || strings.HasPrefix(name, EnvPrefix+"TEST_")
}

// RegisterFlags adds one flag per field to fs. Flags write straight into the
// tree, so they must be parsed after the file and environment were applied.
func RegisterFlags(root any, fs *flag.FlagSet) {
	for _, f := range Fields(root) {
		fs.Var(flagValue{f}, f.Flag(), f.Help+" (env "+f.Env()+")")
	}
}

type flagValue struct{ f Field }

func (v flagValue) String() string {
	if !v.f.value.IsValid() {
		return ""
	}
	return v.f.String()
}
func (v flagValue) Set(s string) error { return parse(v.f.value, s) }
func (v flagValue) IsBoolFlag() bool {
	return v.f.value.IsValid() && v.f.value.Kind() == reflect.Bool
}

// Print renders the effective configuration as YAML that LoadYAML accepts
// back, secrets masked.
func Print(root any) string {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range Fields(root) {
		val := f.String()
		switch {
		case f.Secret && val != "":
			val = "********"
		case strings.Contains(val, "://"):
			val = maskURLList(val)
		}
		parts := strings.Split(f.Key, ".")
		m := doc
		for _, p := range parts[:len(parts)-1] {
			m = child(m, p)
		}
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: parts[len(parts)-1]},
			&yaml.Node{Kind: yaml.ScalarNode, Value: val, Style: yaml.DoubleQuotedStyle})
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err.Error()
	}
	return string(out)
}

func child(m *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i+1]
		}
	}
	c := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, c)
	return c
}

// maskURLList masks every URL of a comma-separated list (NATS and Redis
// seeds are given so), each on its own: parsed as one URL, a list would
// show the passwords of all but the first. A piece without a scheme that
// has user information (the hosts of redis-cluster://, or the rest of a
// password with a comma in it) loses everything before its last '@'.
func maskURLList(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		switch {
		case strings.Contains(strings.TrimSpace(p), " "):
			// Space-separated key=value settings (an auth.oidc.issuers
			// entry): each URL value on its own.
			words := strings.Fields(p)
			for j, w := range words {
				if k, v, ok := strings.Cut(w, "="); ok && strings.Contains(v, "://") {
					words[j] = k + "=" + MaskURL(v)
				}
			}
			parts[i] = strings.Join(words, " ")
		case strings.Contains(p, "://"):
			parts[i] = MaskURL(strings.TrimSpace(p))
		case strings.Contains(p, "@"):
			parts[i] = "xxxxx" + p[strings.LastIndex(p, "@"):]
		}
	}
	return strings.Join(parts, ",")
}

// MaskURL hides the password of a URL (postgres://user:secret@host/db), and
// a password=... query parameter.
func MaskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "********"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Validator collects validation errors, each naming its key.
type Validator struct{ errs []error }

// Check records msg against key when ok is false.
func (v *Validator) Check(ok bool, key, msg string, args ...any) {
	if !ok {
		v.errs = append(v.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(msg, args...)))
	}
}

// Err returns all recorded errors joined, or nil.
func (v *Validator) Err() error { return errors.Join(v.errs...) }
