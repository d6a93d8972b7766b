package router

import (
	"encoding/json"
	"strings"
	"testing"
)

func FuzzDecodeSocketOpened(f *testing.F) {
	f.Add([]byte(`{"a":"acc","s":"gw1/s1","t":1767225600000000000}`))
	f.Add([]byte(`{"a":"","s":"gw1/s1","t":1}`))
	f.Add([]byte(`{"a":"acc","s":"gw1/s1","t":-5}`))
	f.Add([]byte(`{"a":"` + strings.Repeat("a", 129) + `","s":"x","t":1}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeSocketOpened(b)
		if err != nil {
			return
		}
		if m.Account == "" || len(m.Account) > 128 || m.Session == "" || len(m.Session) > 128 || m.Opened <= 0 || len(b) > maxSocketMsg {
			t.Fatalf("decodeSocketOpened(%q) = %+v, want an error", b, m)
		}
		re, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeSocketOpened(re)
		if err != nil || again != m {
			t.Fatalf("round trip of %+v: got %+v, %v", m, again, err)
		}
	})
}
