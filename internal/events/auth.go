package events

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

// Roles of a bus connection: what it may publish and subscribe to
// ([RolePermissions]; docs/operations.md, "Event bus credentials"). A
// process's connection has the union of its roles' permissions.
const (
	// RoleGateway routes players' inputs to game nodes and reads, replays
	// and purges dead letters for the admin API.
	RoleGateway = "gateway"
	// RoleGame routes with the gateways and publishes match events.
	RoleGame = "game"
	// RolePersistence consumes the events stream and writes dead letters.
	RolePersistence = "persistence"
	// RoleOperator is `multijuego dlq` and an operator's nats CLI: the
	// whole JetStream API, the events and dead-letter subjects.
	RoleOperator = "operator"
)

// Roles lists every role.
var Roles = []string{RoleGateway, RoleGame, RolePersistence, RoleOperator}

// DefaultRouterPrefix is the router's subject prefix (router.Config.Prefix).
const DefaultRouterPrefix = "mj.rt"

// Permissions are the subjects a connection may publish and subscribe to
// (NATS wildcards), and whether it may answer requests (Responses: publish
// once to the reply subject of a message it received).
type Permissions struct {
	Publish, Subscribe []string
	Responses          bool
}

// RolePermissions is what a connection with roles may do, with the given
// stream and subject prefix (Config.Prefix) and router prefix (empty:
// DefaultRouterPrefix). Everything else is refused: an anonymous or
// player-level connection gets nothing.
func RolePermissions(prefix, routerPrefix string, roles ...string) Permissions {
	b := &Bus{cfg: Config{Prefix: prefix}}
	if routerPrefix == "" {
		routerPrefix = DefaultRouterPrefix
	}
	ev, dl := b.prefixed(eventsSubject)+".>", b.prefixed(dlqSubject)+".>"
	es, ds := b.EventsStream(), b.DLQStream()
	rt := routerPrefix + ".>"
	api := "$JS.API."
	p := Permissions{
		// Replies (requests, JetStream API answers and publish acks) come
		// to the connection's inbox. Whichever node starts first creates
		// the two streams (Open), and their info is the readiness check:
		// create, update and info on those two streams, nothing else of
		// the JetStream API (no delete, no other stream).
		Subscribe: []string{"_INBOX.>"},
		Publish: []string{api + "STREAM.INFO." + es, api + "STREAM.INFO." + ds,
			api + "STREAM.CREATE." + es, api + "STREAM.UPDATE." + es, api + "STREAM.CREATE." + ds, api + "STREAM.UPDATE." + ds},
	}
	add := func(list *[]string, subjects ...string) {
		for _, s := range subjects {
			if !slices.Contains(*list, s) {
				*list = append(*list, s)
			}
		}
	}
	for _, r := range roles {
		switch r {
		case RoleGateway:
			add(&p.Publish, rt, ev, // ev: dead-letter replay; a replayed event keeps its signature
				api+"STREAM.MSG.GET."+ds, api+"STREAM.MSG.DELETE."+ds, api+"STREAM.PURGE."+ds)
			add(&p.Subscribe, rt)
			p.Responses = true
		case RoleGame:
			add(&p.Publish, rt, ev)
			add(&p.Subscribe, rt)
			p.Responses = true
		case RolePersistence:
			add(&p.Publish, dl, api+"CONSUMER.CREATE."+es+".>", api+"CONSUMER.DURABLE.CREATE."+es+".*", api+"CONSUMER.INFO."+es+".*",
				api+"CONSUMER.MSG.NEXT."+es+".*", "$JS.ACK."+es+".>")
		case RoleOperator:
			// $JS.SNAPSHOT: acknowledging a snapshot's chunks and sending a
			// restore's (multijuego backup and restore).
			add(&p.Publish, api+">", ev, dl, "$JS.ACK."+ds+".>",
				"$JS.SNAPSHOT.ACK."+es+".>", "$JS.SNAPSHOT.ACK."+ds+".>", "$JS.SNAPSHOT.RESTORE."+es+".>", "$JS.SNAPSHOT.RESTORE."+ds+".>")
		}
	}
	return p
}

// serverPermissions is p as the embedded server's user permissions.
func (p Permissions) serverPermissions() *server.Permissions {
	sp := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: slices.Clone(p.Publish)},
		Subscribe: &server.SubjectPermission{Allow: slices.Clone(p.Subscribe)},
	}
	if p.Responses {
		sp.Response = &server.ResponsePermission{MaxMsgs: 1}
	}
	return sp
}

// Auth is how a connection to an external NATS authenticates: at most one
// of a credentials file, an nkey seed file, or a user and a password file
// (a user and password in the URL work too). Secrets are read from files
// at Open, never taken as values, so configuration output shows no secret.
type Auth struct {
	CredsFile    string // a .creds file (user JWT and nkey seed)
	NkeySeedFile string // a file holding an nkey user seed (SU...)
	User         string
	PasswordFile string // the password of User, first line of the file
	Password     string // or the password itself, from code (EmbeddedAuth)
}

func (a Auth) empty() bool { return a == Auth{} }

func (a Auth) validate() error {
	n := 0
	for _, set := range []bool{a.CredsFile != "", a.NkeySeedFile != "", a.User != "" || a.PasswordFile != "" || a.Password != ""} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("events: use one of a credentials file, an nkey seed file, or a user and password file")
	case a.PasswordFile != "" && a.Password != "":
		return errors.New("events: a password file or a password, not both")
	case (a.User == "") != (a.PasswordFile == "" && a.Password == ""):
		return errors.New("events: a user needs a password file, and a password file a user")
	}
	return nil
}

// options are a's nats.go connect options.
func (a Auth) options() ([]nats.Option, error) {
	switch {
	case a.CredsFile != "":
		return []nats.Option{nats.UserCredentials(a.CredsFile)}, nil
	case a.NkeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("events: nkey seed file: %w", err)
		}
		return []nats.Option{o}, nil
	case a.User != "" && a.Password != "":
		return []nats.Option{nats.UserInfo(a.User, a.Password)}, nil
	case a.User != "":
		b, err := os.ReadFile(a.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("events: password file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		pw = strings.TrimRight(pw, "\r")
		if pw == "" {
			return nil, fmt.Errorf("events: password file %s is empty", a.PasswordFile)
		}
		return []nats.Option{nats.UserInfo(a.User, pw)}, nil
	}
	return nil, nil
}

// The embedded server's users: one per role, named after it, with the
// passwords of EmbeddedUsersFile; and "node", the in-process connection,
// which may not connect over the network.
const (
	nodeUser = "node"
	// EmbeddedUsersFile, under DataDir, holds the embedded server's users
	// and passwords (JSON: role -> password; sealed when
	// Config.UsersSealer is set), mode 0600, made on first start.
	EmbeddedUsersFile = "nats/users.json"
)

// EmbeddedAuth returns the credentials of role on the embedded server
// whose data directory is dataDir (the file EmbeddedUsersFile, opened
// with ks when sealed): what `multijuego dlq` uses to reach a server's
// --events-listen. ok is false when the file does not exist.
func EmbeddedAuth(ctx context.Context, dataDir, role string, ks KeySealer) (a Auth, ok bool, err error) {
	path := filepath.Join(dataDir, EmbeddedUsersFile)
	users, _, err := readUsers(ctx, path, ks)
	if errors.Is(err, fs.ErrNotExist) {
		return Auth{}, false, nil
	}
	if err != nil {
		return Auth{}, false, err
	}
	pw, found := users[role]
	if !found || pw == "" {
		return Auth{}, false, fmt.Errorf("events: %s has no user %q", path, role)
	}
	return Auth{User: role, Password: pw}, true, nil
}

// readUsers reads the users file: JSON, sealed by ks or in clear.
func readUsers(ctx context.Context, path string, ks KeySealer) (users map[string]string, inClear bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	inClear = true
	if ks != nil {
		plain, sealed, err := ks.OpenLine(ctx, string(b))
		if err != nil {
			return nil, false, fmt.Errorf("events: %s: %w", path, err)
		}
		if sealed {
			b, inClear = plain, false
		}
	}
	if err := json.Unmarshal(b, &users); err != nil {
		return nil, false, fmt.Errorf("events: %s: %w", path, err)
	}
	return users, inClear, nil
}

// embeddedUsers reads the users file, making it (and any role missing
// from it) with random passwords, sealed by ks (nil: in clear); a file
// found in clear is sealed. The file is 0600 in a 0700 directory.
func embeddedUsers(ctx context.Context, dataDir string, ks KeySealer) (map[string]string, error) {
	path := filepath.Join(dataDir, EmbeddedUsersFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	users, inClear, err := readUsers(ctx, path, ks)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if users == nil {
		users = map[string]string{}
	}
	changed := inClear && ks != nil
	for _, r := range Roles {
		if users[r] == "" {
			users[r], changed = randomSecret(), true
		}
	}
	if changed {
		if err := writeUsers(ctx, path, users, ks); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return users, nil
}

// writeUsers writes the users file, sealed by ks (nil: in clear).
func writeUsers(ctx context.Context, path string, users map[string]string, ks KeySealer) error {
	b, _ := json.MarshalIndent(users, "", "  ")
	b = append(b, '\n')
	if ks != nil {
		line, err := ks.SealLine(ctx, b)
		if err != nil {
			return fmt.Errorf("events: seal %s: %w", path, err)
		}
		b = []byte(line + "\n")
	}
	if err := replaceFile(path, b); err != nil {
		return fmt.Errorf("events: write %s: %w", path, err)
	}
	return nil
}

// ResealUsers seals the embedded server's users file in dataDir again
// with ks, under the key provider's current key-encryption key (after a
// rotation). It reports false when there is no file.
func ResealUsers(ctx context.Context, dataDir string, ks KeySealer) (bool, error) {
	path := filepath.Join(dataDir, EmbeddedUsersFile)
	users, _, err := readUsers(ctx, path, ks)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, writeUsers(ctx, path, users, ks)
}

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// serverUsers are the embedded server's users: one per role, reachable
// over the listener, and the in-process node user with the permissions of
// cfg's roles. The server gets bcrypt hashes of the passwords, so it holds
// none in clear (the clients' copies are in users.json, 0600, sealed when
// Config.UsersSealer is set).
func serverUsers(cfg Config, users map[string]string, nodePassword string) ([]*server.User, error) {
	hashed := func(pw string) (string, error) {
		// The minimum cost: the passwords are 24 random bytes, not
		// guessable; the hash only keeps them out of the server's memory
		// in clear, and each connection pays one check.
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		return string(h), err
	}
	nodeHash, err := hashed(nodePassword)
	if err != nil {
		return nil, err
	}
	out := []*server.User{{
		Username: nodeUser, Password: nodeHash,
		Permissions:            RolePermissions(cfg.Prefix, cfg.RouterPrefix, cfg.roles()...).serverPermissions(),
		AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}},
	}}
	for _, r := range Roles {
		h, err := hashed(users[r])
		if err != nil {
			return nil, err
		}
		out = append(out, &server.User{Username: r, Password: h,
			Permissions:            RolePermissions(cfg.Prefix, cfg.RouterPrefix, r).serverPermissions(),
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeStandard: {}}})
	}
	return out, nil
}

// loopback reports whether host (of a listen address) is a loopback
// address or "localhost"; "" and 0.0.0.0 are every interface, not.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkListen refuses a non-loopback listener without TLS: the embedded
// server's users authenticate with passwords, which must not cross a
// network in clear.
func checkListen(cfg Config) (host string, err error) {
	host, _, err = net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("events: listen %q: %w", cfg.Listen, err)
	}
	if !loopback(host) && cfg.ListenTLS == nil {
		return "", fmt.Errorf("events: events.listen %q is not a loopback address: the embedded NATS listener opens "+
			"beyond this host only with credentials and TLS, and no TLS is configured for it; give it TLS "+
			"(events.listen_tls.cert_file and key_file, and client_ca_file for mutual TLS), listen on 127.0.0.1 "+
			"(multijuego dlq then uses the credentials in data_dir/%s), or set nats_url to an external NATS "+
			"with TLS and per-role users (docs/operations.md)", cfg.Listen, EmbeddedUsersFile)
	}
	return host, nil
}

// ServerAuthorization is a nats-server configuration block that gives
// each role's user (named after the role) RolePermissions with the given
// prefixes: the external NATS counterpart of the embedded server's users
// (docs/operations.md shows it with the default prefixes). password
// returns a user's password entry as written in the file: a quoted
// literal, or an unquoted $VARIABLE that nats-server reads from its
// environment.
func ServerAuthorization(prefix, routerPrefix string, password func(role string) string) string {
	var b strings.Builder
	list := func(subjects []string) string {
		q := make([]string, len(subjects))
		for i, s := range subjects {
			q[i] = `"` + s + `"`
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	b.WriteString("authorization {\n  users = [\n")
	for _, r := range Roles {
		p := RolePermissions(prefix, routerPrefix, r)
		fmt.Fprintf(&b, "    {\n      user: %q\n      password: %s\n      permissions: {\n", r, password(r))
		fmt.Fprintf(&b, "        publish: { allow: %s }\n", list(p.Publish))
		fmt.Fprintf(&b, "        subscribe: { allow: %s }\n", list(p.Subscribe))
		if p.Responses {
			b.WriteString("        allow_responses: true\n")
		}
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}
