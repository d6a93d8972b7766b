package gateway

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store"
)

// PersonalData opens personal fields sealed under their owners' data keys
// (*seal.Fields).
type PersonalData interface {
	// Refresh asks the vault afresh about owners' keys, so that one
	// destroyed by another node's erasure does not open from a cache.
	Refresh(ctx context.Context, owners []string) error
	// Open returns the plaintext of a stored value; an error wrapping
	// seal.ErrErased when its owner's key was destroyed.
	Open(ctx context.Context, owner, record, field, stored string) (string, error)
}

// What MatchEventResponse.Personal says of a personal event's data.
const (
	PersonalOpen        = "open"        // Data is shown: the caller is its owner or an admin
	PersonalWithheld    = "withheld"    // another player asked: not shown
	PersonalErased      = "erased"      // its owner's account was erased: it no longer opens
	PersonalUnavailable = "unavailable" // this node cannot open it now (no vault here, or the vault failed)
)

// eventResponses are a page of match events as the read API shows them.
// A personal event's data is opened only for its owner and for admins,
// after asking the vault whether each owner's key still exists.
func (s *Server) eventResponses(ctx context.Context, list []store.MatchEventRecord) []MatchEventResponse {
	p := PrincipalFrom(ctx)
	mayOpen := func(owner string) bool { return p != nil && (p.AccountID == owner || p.HasRole(auth.RoleAdmin)) }
	var owners []string
	seen := map[string]bool{}
	for _, e := range list {
		if e.Owner != "" && !seen[e.Owner] && mayOpen(e.Owner) && seal.IsSealed(string(e.Data)) {
			seen[e.Owner] = true
			owners = append(owners, e.Owner)
		}
	}
	vaultOK := s.personal != nil
	if vaultOK && len(owners) > 0 {
		if err := s.personal.Refresh(ctx, owners); err != nil {
			s.log.Warn("personal match events not opened: the data key vault failed", "err", err)
			vaultOK = false
		}
	}
	out := make([]MatchEventResponse, 0, len(list))
	for _, e := range list {
		ev := MatchEventResponse{EventID: e.EventID, Name: e.Name, At: e.At, Owner: e.Owner}
		switch {
		case e.Owner == "":
			if json.Valid(e.Data) {
				ev.Data = e.Data
			}
		case !mayOpen(e.Owner):
			ev.Personal = PersonalWithheld
		case !seal.IsSealed(string(e.Data)): // stored in clear (seal.personal_data off)
			ev.Personal = PersonalOpen
			if json.Valid(e.Data) {
				ev.Data = e.Data
			}
		case !vaultOK:
			ev.Personal = PersonalUnavailable
		default:
			ev.Data, ev.Personal = s.openEvent(ctx, e)
		}
		out = append(out, ev)
	}
	return out
}

func (s *Server) openEvent(ctx context.Context, e store.MatchEventRecord) (json.RawMessage, string) {
	plain, err := s.personal.Open(ctx, e.Owner, events.PersonalRecord(e.MatchID, e.EventID), events.PersonalField, string(e.Data))
	switch {
	case errors.Is(err, seal.ErrErased):
		return nil, PersonalErased
	case err != nil:
		s.log.Warn("a personal match event did not open", "event_id", e.EventID, "err", err)
		return nil, PersonalUnavailable
	case !json.Valid([]byte(plain)):
		return nil, PersonalUnavailable
	}
	return json.RawMessage(plain), PersonalOpen
}
