package auth_test

import (
	"sync"
	"testing"

	"github.com/multijuego/multijuego/internal/auth"
)

// A Namer names as KeyedName does, from many goroutines at once; names
// differ by key and by value and carry 128 bits (22 base64url characters).
func TestNamerIsKeyedName(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	n := auth.NewNamer(key)
	values := []string{"203.0.113.7", "2001:db8:77:1::/64", "", "alice@example.com"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				for _, v := range values {
					if got, want := n.Name(v), auth.KeyedName(key, v); got != want {
						t.Errorf("Namer.Name(%q) = %q, want KeyedName's %q", v, got, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	a, b := auth.KeyedName(key, values[0]), auth.KeyedName([]byte("another key"), values[0])
	if len(a) != 22 || a == b || a == auth.KeyedName(key, values[1]) {
		t.Fatalf("names %q (other key %q): want 22 characters, distinct by key and value", a, b)
	}
}
