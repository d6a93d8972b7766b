package webui_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzPaths serves arbitrary request paths: the handler answers 200 only
// with the exact file the path names (or its directory's index.html), 301
// only to add a directory's slash, and 404 otherwise; never a dot file,
// never anything out of a ".." or unclean path.
func FuzzPaths(f *testing.F) {
	for _, s := range []string{"/", "/admin", "/admin/", "/../index.html", "/.env", "/assets/game-5LQ3K2ZB.js", "//", "/docs/", "/a/./b", "/\x00", "", "index.html"} {
		f.Add(s)
	}
	files := fixture()
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, p string) {
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: p}, Header: http.Header{}}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		name, isDir := strings.TrimPrefix(p, "/"), strings.HasSuffix(p, "/")
		if isDir || p == "/" {
			name += "index.html"
		}
		servable := strings.HasPrefix(p, "/") && fs.ValidPath(name) && !hasDotSegment(name) && files[name] != nil
		switch rec.Code {
		case http.StatusOK:
			if !servable || rec.Body.String() != string(files[name].Data) {
				t.Fatalf("GET %q served %q (%d bytes); want 404", p, name, rec.Body.Len())
			}
		case http.StatusMovedPermanently:
			dir := strings.TrimPrefix(p, "/")
			if loc := rec.Header().Get("Location"); loc != p+"/" || !fs.ValidPath(dir) || hasDotSegment(dir) || files[dir+"/index.html"] == nil {
				t.Fatalf("GET %q redirected to %q", p, loc)
			}
		case http.StatusNotFound:
			if servable {
				t.Fatalf("GET %q: 404, want %s", p, name)
			}
		default:
			t.Fatalf("GET %q: status %d", p, rec.Code)
		}
	})
}

func hasDotSegment(name string) bool {
	for _, s := range strings.Split(name, "/") {
		if strings.HasPrefix(s, ".") {
			return true
		}
	}
	return false
}
