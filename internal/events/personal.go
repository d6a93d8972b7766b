package events

import (
	"strings"

	"github.com/multijuego/multijuego/internal/seal"
)

// Personal events. A key moment whose data is personal to one player
// (match.Dispatcher.EmitPersonal) leaves the game node with its data
// sealed (AES-256-GCM under the owner account's data key, internal/seal),
// in an event of version VersionPersonal (2: consumers that know only
// version 1 refuse it rather than misread it):
//
//	{"name":"chat","owner":"<account id>","sealed":"sealed:<base64url>"}
//
// The seal is bound to PersonalRecord(match id, event id) and
// PersonalField, so a sealed value copied into another event, or given
// another owner, does not open. The event's signature (HeaderSignature)
// covers the whole message, owner and sealed value included. Persistence
// stores the sealed text as it came (match_events.data, with the owner);
// only the readers open it. Erasing the owner's account destroys the key:
// every copy (stream, dead letters, database, backups) stops opening.

// PersonalField is the field a personal event's data is sealed as.
const PersonalField = "data"

// PersonalRecord is the record a personal event's data is sealed for: the
// match and the event id, which the envelope carries too.
func PersonalRecord(matchID, eventID string) string { return "event:" + matchID + ":" + eventID }

// versionOf is the schema version an event with payload p is written in.
func versionOf(p payload) int {
	if m, ok := p.(*MatchEvent); ok && m.Owner != "" {
		return VersionPersonal
	}
	return Version
}

// validateSealed checks a personal event's fields: a sealed value needs
// an owner and replaces the data, and is seal.SealedPrefix and unpadded
// base64url.
func (p *MatchEvent) validateSealed() error {
	if p.Sealed == "" {
		return nil
	}
	switch {
	case p.Owner == "":
		return invalid("sealed data needs an owner")
	case len(p.Data) > 0:
		return invalid("an event has data or sealed data, not both")
	case !strings.HasPrefix(p.Sealed, seal.SealedPrefix) || len(p.Sealed) == len(seal.SealedPrefix):
		return invalid("sealed data must start with %q", seal.SealedPrefix)
	}
	for i := len(seal.SealedPrefix); i < len(p.Sealed); i++ {
		c := p.Sealed[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return invalid("sealed data must be unpadded base64url after %q", seal.SealedPrefix)
		}
	}
	return nil
}
