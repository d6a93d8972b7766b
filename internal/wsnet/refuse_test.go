package wsnet

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/logtest"
)

func upgradeRequest() *http.Request {
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	r.Header.Set("Sec-WebSocket-Version", "13")
	return r
}

// TestRefusedConnectionsAreLogged: a connection the transport cannot take
// after Authorize accepted it is answered with a status and logged with
// its reason, not dropped silently.
func TestRefusedConnectionsAreLogged(t *testing.T) {
	var logs logtest.Buffer
	h := newTestHandler(false)
	s, err := NewServer(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Authorize: func(*Request) (any, error) { return nil, nil }}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// A ResponseWriter that cannot be hijacked (as under HTTP/2).
	w := httptest.NewRecorder()
	s.ServeHTTP(w, upgradeRequest())
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("not hijackable: status %d, want 500", w.Code)
	}
	if got := logs.String(); !strings.Contains(got, "connection refused") || !strings.Contains(got, "cannot be hijacked") {
		t.Fatalf("not hijackable: log %q", got)
	}

	// A server shutting down.
	_ = s.Close()
	w = httptest.NewRecorder()
	s.ServeHTTP(w, upgradeRequest())
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("closed: status %d, want 503", w.Code)
	}
	if got := logs.String(); !strings.Contains(got, "reason=\"server closed\"") {
		t.Fatalf("closed: log %q", got)
	}
	select {
	case c := <-h.opened:
		t.Fatalf("refused connection opened: %v", c)
	default:
	}
}

func TestUnknownBackendRefused(t *testing.T) {
	if _, err := NewServer(Config{Backend: "kqueue"}, newTestHandler(false)); err == nil || !strings.Contains(err.Error(), "Config.Backend") {
		t.Fatalf("got %v, want an error naming Config.Backend", err)
	}
}
