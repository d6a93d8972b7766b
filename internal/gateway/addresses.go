package gateway

import (
	"crypto/rand"

	"github.com/multijuego/multijuego/internal/auth"
)

// Client addresses in the shared store (issue 19): the keys the gateway
// writes to Redis or the key-value store for a client address, the
// rate-limit buckets (limits.go) and the match-limit lists
// (matchlimit.go), name it by a keyed hash (auth.KeyedName, as the auth
// role's login throttles do), so that a dump or a MONITOR of the store
// shows no address. The key is the deployment's (Deps.AddressKey: the app
// reads gateway.address_key_file or derives one from the keys directory);
// every gateway with the same key names an address alike, so the limits
// still hold across them. The rate-limit audit rows name the subject the
// same way; their ip field keeps the address, sealed by the store.
//
// What stays in this process's memory (the tarpit per address, the sockets
// per address, the allow and deny lists) keeps addresses as they are.

// addressNamer names addresses under key, or when there is none under a
// random key of this process's own (its per-address limits then count per
// gateway).
func addressNamer(key []byte) *auth.Namer {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return auth.NewNamer(key)
}

// addressName is how a client address (or an IPv6 /64: ipSubject)
// appears in the shared store.
func (s *Server) addressName(addr string) string { return s.addressNamer.Name(addr) }
