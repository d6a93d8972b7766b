package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

type shownEvent struct {
	EventID  string `json:"event_id"`
	Data     json.RawMessage
	Owner    string
	Personal string
}

func (e *env) matchEvents(t *testing.T, id, token string) map[string]shownEvent {
	t.Helper()
	var page struct{ Events []shownEvent }
	r := e.do("GET", "/v1/matches/"+id+"/events", token, "", nil)
	if r.status != 200 {
		t.Fatalf("match events: %d %s", r.status, r.body)
	}
	r.json(t, &page)
	out := map[string]shownEvent{}
	for _, ev := range page.Events {
		out[ev.EventID] = ev
	}
	return out
}

// A personal event's data is opened for its owner and for admins, withheld
// from other players, shown as erased once another node destroyed the
// owner's key, and as unavailable where there is no vault or it does not
// open; ordinary events are as before.
func TestMatchEventsPersonal(t *testing.T) {
	ctx := context.Background()
	l, err := seal.OpenLocal(filepath.Join(t.TempDir(), "keyring.kek"))
	if err != nil {
		t.Fatal(err)
	}
	vault := storetest.Vault(t, "")
	idx := bytes.Repeat([]byte{1}, seal.KeySize)
	fields := seal.NewFields(l, vault, idx, true, 16)
	e := newEnvWith(t, func(d *gateway.Deps) { d.Personal = fields })
	rosa, saul := e.register("rosa"), e.register("saul")
	admin := e.adminToken("boss")
	rosaID, saulID := accountOf(t, e, rosa.AccessToken), accountOf(t, e, saul.AccessToken)

	id := uuid.Must(uuid.NewV7()).String()
	at := time.Now().UTC()
	sealed := func(owner, evID, plain string) store.Change {
		s, err := fields.Seal(ctx, owner, events.PersonalRecord(id, evID), events.PersonalField, plain)
		if err != nil {
			t.Fatal(err)
		}
		return store.EventChange(store.MatchEventRecord{EventID: evID, MatchID: id, Name: "chat", At: at, Data: []byte(s), Owner: owner})
	}
	mine, theirs, plain := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	moved := uuid.Must(uuid.NewV7()).String()
	ch := []store.Change{
		sealed(rosaID, mine, `{"say":"hi, I am Rosa"}`),
		sealed(saulID, theirs, `{"say":"saul here"}`),
		store.EventChange(store.MatchEventRecord{EventID: plain, MatchID: id, Name: "tag", At: at, Data: []byte(`{"n":1}`)}),
	}
	// Rosa's sealed data copied under another event id: bound to its
	// record, it does not open.
	cp := *ch[0].Event
	cp.EventID = moved
	ch = append(ch, store.EventChange(cp))
	if _, err := e.st.ApplyChanges(ctx, ch); err != nil {
		t.Fatal(err)
	}

	got := e.matchEvents(t, id, rosa.AccessToken)
	if ev := got[mine]; ev.Personal != gateway.PersonalOpen || string(ev.Data) != `{"say":"hi, I am Rosa"}` || ev.Owner != rosaID {
		t.Errorf("owner sees %+v (%s), want it open", ev, ev.Data)
	}
	if ev := got[theirs]; ev.Personal != gateway.PersonalWithheld || ev.Data != nil || ev.Owner != saulID {
		t.Errorf("another player's personal event: %+v (%s), want withheld", ev, ev.Data)
	}
	if ev := got[plain]; ev.Personal != "" || ev.Owner != "" || string(ev.Data) != `{"n":1}` {
		t.Errorf("ordinary event: %+v (%s)", ev, ev.Data)
	}
	if ev := got[moved]; ev.Personal != gateway.PersonalUnavailable || ev.Data != nil {
		t.Errorf("sealed data moved to another event: %+v (%s), want unavailable", ev, ev.Data)
	}
	got = e.matchEvents(t, id, admin)
	if got[mine].Personal != gateway.PersonalOpen || got[theirs].Personal != gateway.PersonalOpen || string(got[theirs].Data) != `{"say":"saul here"}` {
		t.Errorf("admin sees %+v", got)
	}

	// Rosa erased by another node (its own Fields, the same vault): this
	// one's cached key no longer opens her data.
	if err := seal.NewFields(l, vault, idx, true, 16).Destroy(ctx, rosaID); err != nil {
		t.Fatal(err)
	}
	got = e.matchEvents(t, id, admin)
	if ev := got[mine]; ev.Personal != gateway.PersonalErased || ev.Data != nil {
		t.Errorf("after erasure: %+v (%s), want erased", ev, ev.Data)
	}
	if ev := got[theirs]; ev.Personal != gateway.PersonalOpen {
		t.Errorf("another owner's event after Rosa's erasure: %+v", ev)
	}

	// A node without the vault: unavailable, never an error.
	bare := newEnv(t)
	if _, err := bare.st.ApplyChanges(ctx, ch[:1]); err != nil {
		t.Fatal(err)
	}
	tok := bare.adminToken("ops")
	if ev := bare.matchEvents(t, id, tok)[mine]; ev.Personal != gateway.PersonalUnavailable || ev.Data != nil {
		t.Errorf("without a vault: %+v, want unavailable", ev)
	}
}

func accountOf(t *testing.T, e *env, token string) string {
	t.Helper()
	p, err := e.auth.Authenticate(token)
	if err != nil {
		t.Fatal(err)
	}
	return p.AccountID
}
