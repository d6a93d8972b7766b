package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/match"
)

// personalGame emits, in its first tick, a personal event for the account
// its creator names (params owner, say), then an ordinary one, then ends.
type personalGame struct{ owner, say string }

func (g *personalGame) Init(_ *match.Dispatcher, p match.Params) (match.Settings, error) {
	g.owner, g.say = p.String("owner", ""), p.String("say", "")
	return match.Settings{TickRate: 20, MaxPlayers: 2}, nil
}
func (g *personalGame) JoinAttempt(*match.Dispatcher, match.Presence, map[string]string) error {
	return nil
}
func (g *personalGame) Join(*match.Dispatcher, match.Presence)                {}
func (g *personalGame) Leave(*match.Dispatcher, match.Presence, match.Reason) {}
func (g *personalGame) Terminate(d *match.Dispatcher, _ time.Duration)        { _ = d.End(match.Results{}) }
func (g *personalGame) Loop(d *match.Dispatcher, _ []match.Input) {
	switch d.Tick() {
	case 1:
		data, _ := json.Marshal(map[string]string{"say": g.say})
		if err := d.EmitPersonal("chat", match.Presence{UserID: g.owner}, data); err != nil {
			d.Logger().Error("EmitPersonal", "err", err)
		}
		_ = d.Emit("tag", []byte(`{"n":1}`))
	case 2:
		_ = d.End(match.Results{})
	}
}

type apiClient struct {
	t    *testing.T
	base string
}

func (c apiClient) call(method, path, token, body string, out any) int {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return res.StatusCode
}

// token registers (or logs in) name and returns its access token.
func (c apiClient) token(name, password string, register bool) string {
	c.t.Helper()
	path := "/v1/auth/login"
	if register {
		path = "/v1/auth/register"
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body := `{"username":"` + name + `","password":"` + password + `"}`
	if code := c.call("POST", path, "", body, &tok); code/100 != 2 || tok.AccessToken == "" {
		c.t.Fatalf("%s %s: %d", path, name, code)
	}
	return tok.AccessToken
}

type listedEvent struct {
	EventID  string `json:"event_id"`
	Name     string
	Data     json.RawMessage
	Owner    string
	Personal string
}

func (c apiClient) chat(matchID, token string) (listedEvent, bool) {
	c.t.Helper()
	var page struct{ Events []listedEvent }
	if code := c.call("GET", "/v1/matches/"+matchID+"/events", token, "", &page); code != 200 {
		c.t.Fatalf("match events: %d", code)
	}
	for _, e := range page.Events {
		if e.Name == "chat" {
			return e, true
		}
	}
	return listedEvent{}, false
}

// filesContaining lists the files under dir that contain s.
func filesContaining(t *testing.T, dir, s string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// On the embedded default, a handler's personal event is sealed before
// the queue: neither the JetStream store nor the database holds its data
// in clear; the read API opens it for its owner and admins, withholds it
// from other players, and once the owner erased the account shows it as
// erased.
func TestPersonalEventsSealedEverywhere(t *testing.T) {
	cfg := testConfig(t)
	m, stop := startMainWith(t, cfg, []app.Mode{{Name: "personal", Factory: func() match.Handler { return &personalGame{} }}})
	defer stop()
	c := apiClient{t: t, base: m.URL()}
	const password, secret = "right-horse-battery", "call me on 555-0199 at rosa@home.example"
	rosa := c.token("rosa", password, true)
	saul := c.token("saul", password, true)
	c.token("boss", password, true)
	var out, errb bytes.Buffer
	if code := app.Run(context.Background(), []string{"accounts", "set-roles", "boss", "player,admin", "--data-dir", cfg.DataDir}, &out, &errb, nil); code != 0 {
		t.Fatalf("set-roles: exit %d: %s", code, errb.String())
	}
	boss := c.token("boss", password, false)
	var me struct{ ID string }
	c.call("GET", "/v1/account", rosa, "", &me)
	params, _ := json.Marshal(map[string]any{"mode": "personal", "params": map[string]string{"owner": me.ID, "say": secret}})
	var created struct {
		MatchID string `json:"match_id"`
	}
	if code := c.call("POST", "/v1/matches", rosa, string(params), &created); code != 201 {
		t.Fatalf("create match: %d", code)
	}

	want, _ := json.Marshal(map[string]string{"say": secret})
	var ev listedEvent
	deadline := time.Now().Add(15 * time.Second)
	for ok := false; !ok; ev, ok = c.chat(created.MatchID, rosa) {
		if time.Now().After(deadline) {
			t.Fatal("the personal event never reached the read API")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ev.Personal != "open" || ev.Owner != me.ID || string(ev.Data) != string(want) {
		t.Fatalf("the owner reads %+v (%s), want it open with %s", ev, ev.Data, want)
	}
	if ev, _ := c.chat(created.MatchID, boss); ev.Personal != "open" || string(ev.Data) != string(want) {
		t.Errorf("an admin reads %+v (%s), want it open", ev, ev.Data)
	}
	if ev, _ := c.chat(created.MatchID, saul); ev.Personal != "withheld" || ev.Data != nil {
		t.Errorf("another player reads %+v (%s), want it withheld", ev, ev.Data)
	}

	// The raw row: sealed, with its owner.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, "multijuego.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var data, owner string
	if err := db.QueryRow(`SELECT data, owner FROM match_events WHERE match_id=? AND name='chat'`, created.MatchID).Scan(&data, &owner); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(data, "sealed:") || strings.Contains(data, "555-0199") || owner != me.ID {
		t.Errorf("stored row: data %q owner %q, want it sealed for %s", data, owner, me.ID)
	}
	// The raw stream message (JetStream's files) holds it sealed, and no
	// file under data_dir (stream, database and its WAL, vault) holds the
	// plaintext.
	marker := `"owner":"` + me.ID + `","sealed":"sealed:`
	for deadline := time.Now().Add(10 * time.Second); len(filesContaining(t, filepath.Join(cfg.DataDir, "nats"), marker)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no sealed personal event found in the JetStream store")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f := filesContaining(t, cfg.DataDir, "555-0199"); len(f) > 0 {
		t.Errorf("the plaintext is in clear in %v", f)
	}

	// Erasure destroys the data key: the event no longer opens anywhere.
	if code := c.call("DELETE", "/v1/account", rosa, `{"current_password":"`+password+`"}`, nil); code != 204 {
		t.Fatalf("delete account: %d", code)
	}
	if ev, _ := c.chat(created.MatchID, boss); ev.Personal != "erased" || ev.Data != nil {
		t.Errorf("after erasure an admin reads %+v (%s), want it erased", ev, ev.Data)
	}
	if ev, ok := c.chat(created.MatchID, boss); !ok || ev.Owner != me.ID {
		t.Errorf("after erasure the event is still listed, with its owner: %+v", ev)
	}
}
