package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/match"
)

// Personal match events (match.Dispatcher.EmitPersonal): the game node
// seals their data under the owner account's data key before they reach
// the queue (internal/events/personal.go), with the same provider and
// vault as emails; the read API opens them. A process gets the vault from
// its auth role, or, for a game node or gateway run apart, from an
// explicit seal.vault_url (with the auth nodes' seal.provider settings):
// without it, EmitPersonal refuses and the read API shows personal data
// as unavailable.

// openPersonal gives a game node or gateway run without the auth role the
// data keys' vault, when seal.vault_url names the shared one. It opens
// nothing, and says so, when the setting is empty: the default vault
// (vault.db in this node's keys dir) would be this node's own, which the
// auth nodes never see.
func openPersonal(ctx context.Context, m *Main, roles []string) error {
	if m.personal != nil || (!slices.Contains(roles, RoleGame) && !slices.Contains(roles, RoleGateway)) {
		return nil
	}
	if m.Config.Seal.VaultURL == "" {
		m.Logger.Warn("personal match events: this node has no data key vault, so game handlers' EmitPersonal is refused " +
			"and the read API shows personal event data as unavailable; give it seal.vault_url (the auth nodes' vault) " +
			"and their seal.provider settings (the same keyring file, HSM token or KMS key) for it to seal and open them")
		return nil
	}
	if m.keyProvider == nil {
		p, err := openSeal(ctx, m.Config, m.Logger)
		if err != nil {
			return err
		}
		m.keyProvider = p
		registerSealMetrics(m.registry, p)
	}
	v, err := store.OpenVault(ctx, store.Options{URL: m.Config.Seal.VaultURL, MaxOpenConns: m.Config.Store.MaxOpenConns, BusyTimeout: m.Config.Store.BusyTimeout})
	if err != nil {
		return fmt.Errorf("seal.vault_url: open the data key vault: %w", err)
	}
	m.vault = v
	// No blind index key: this node seals and opens, it never looks up
	// by a personal value.
	m.personal = seal.NewFields(m.keyProvider, v, nil, m.Config.Seal.PersonalData, dataKeysCached)
	return nil
}

// eventSealer is what personalEvents seals with (*seal.Fields).
type eventSealer interface {
	Seal(ctx context.Context, owner, record, field, plain string) (string, error)
}

// personalQueue bounds the personal events waiting to be sealed.
const personalQueue = 1024

// sealTimeout bounds sealing one event (a vault read and a key unwrap
// when the owner's key is not cached).
const sealTimeout = 5 * time.Second

// personalEvents seals personal events off the match goroutines (sealing
// may read the vault and unwrap a key: a database or KMS round trip no
// match may wait for) and hands them to the publisher. Overflow rule, as
// the publisher's for key moments: a full queue drops the event, counted
// and logged. One goroutine, owned by the game role: close stops it.
type personalEvents struct {
	sealer  eventSealer
	pub     *events.Publisher
	node    string
	log     *slog.Logger
	in      chan match.Event
	stop    chan struct{}
	done    chan struct{}
	stopped atomic.Bool

	// Dropped counts personal events lost: the queue was full, sealing
	// failed, or the owner's account was erased.
	Dropped atomic.Int64
}

func newPersonalEvents(s eventSealer, pub *events.Publisher, node string, log *slog.Logger) *personalEvents {
	p := &personalEvents{sealer: s, pub: pub, node: node, log: log,
		in: make(chan match.Event, personalQueue), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// enqueue is the engine's OnPersonalEvent: it never blocks.
func (p *personalEvents) enqueue(e match.Event) {
	if p.stopped.Load() {
		p.drop(e, "the game node is stopping")
		return
	}
	select {
	case p.in <- e:
	default:
		p.drop(e, "the sealing queue is full")
	}
}

func (p *personalEvents) drop(e match.Event, why string) {
	p.Dropped.Add(1)
	p.log.Error("events: personal event dropped", "match_id", e.MatchID, "name", e.Name, "why", why)
}

func (p *personalEvents) run() {
	defer close(p.done)
	for {
		select {
		case e := <-p.in:
			p.publish(e)
		case <-p.stop:
			for {
				select {
				case e := <-p.in:
					p.publish(e)
				default:
					return
				}
			}
		}
	}
}

// publish seals e's data and queues the event. Its id is the one Emit's
// events get (events.StableID), so a match replayed on another node makes
// the same event, and the seal is bound to it.
func (p *personalEvents) publish(e match.Event) {
	id := events.StableID(e.MatchID, e.Created, events.TypeMatchEvent, e.Tick, e.Seq)
	me := events.MatchEvent{Name: e.Name, Owner: e.Owner}
	if len(e.Data) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), sealTimeout)
		s, err := p.sealer.Seal(ctx, e.Owner, events.PersonalRecord(e.MatchID, id), events.PersonalField, string(e.Data))
		cancel()
		switch {
		case errors.Is(err, seal.ErrErased):
			p.drop(e, "its owner's account was erased")
			return
		case err != nil:
			p.drop(e, "sealing failed: "+err.Error())
			return
		case seal.IsSealed(s):
			me.Sealed = s
		default: // seal.personal_data off: in clear, as the operator chose
			me.Data = json.RawMessage(s)
		}
	}
	ev, err := events.NewMatchEventID(id, e.MatchID, p.node, me)
	if err == nil {
		err = p.pub.Publish(ev)
	}
	if err != nil {
		p.log.Error("events: not published", "type", events.TypeMatchEvent, "match_id", e.MatchID, "err", err)
	}
}

// close seals and queues what is waiting, then stops; ctx bounds the wait.
func (p *personalEvents) close(ctx context.Context) error {
	if p.stopped.Swap(true) {
		return nil
	}
	close(p.stop)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("events: personal events still being sealed at shutdown: %w", ctx.Err())
	}
}
