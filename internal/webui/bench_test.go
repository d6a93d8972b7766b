package webui_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discard is a ResponseWriter that keeps one header map, so the benchmark
// measures the handler and not a recorder.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(status int)      { d.status = status }
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

func BenchmarkServeFingerprinted(b *testing.B) {
	h := newHandler(b)
	for _, bc := range []struct{ name, accept, inm string }{
		{"identity", "", ""},
		{"br", "gzip, deflate, br, zstd", ""},
		{"not-modified", "gzip, deflate, br, zstd", "probe"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/assets/game-5LQ3K2ZB.js", nil)
			if bc.accept != "" {
				req.Header.Set("Accept-Encoding", bc.accept)
			}
			w := &discard{h: http.Header{}}
			if bc.inm != "" {
				h.ServeHTTP(w, req)
				req.Header.Set("If-None-Match", w.h.Get("ETag"))
			}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
			if want := map[bool]int{true: 304, false: 200}[bc.inm != ""]; w.status != want {
				b.Fatalf("status %d, want %d", w.status, want)
			}
		})
	}
}
