package webui_test

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/andybalholm/brotli"

	"github.com/multijuego/multijuego/internal/config"
	"github.com/multijuego/multijuego/internal/webui"
)

var (
	indexHTML = "<!doctype html><html><head><title>multijuego</title><script type=module src=/assets/game-5LQ3K2ZB.js></script></head><body>" +
		strings.Repeat("<p>arena and tic-tac-toe</p>\n", 40) + "</body></html>\n"
	adminHTML = "<!doctype html><title>admin</title>" + strings.Repeat("<tr><td>match</td></tr>\n", 40)
	gameJS    = strings.Repeat("export function move(dx, dy) { return { op: 1, dx, dy }; }\n", 200)
	styleCSS  = strings.Repeat("body { margin: 0; font-family: system-ui, sans-serif; }\n", 50)
	sdkJS     = strings.Repeat("export class Client { constructor(url) { this.url = url; } }\n", 50)
	pngBytes  = "\x89PNG\r\n\x1a\n" + strings.Repeat("\x00", 2000) // compressible bytes, but PNG is never recompressed
)

// fixture is a site with the brotli variants web/build would write.
func fixture() fstest.MapFS { return withBrotli(plainFixture()) }

func plainFixture() fstest.MapFS {
	return fstest.MapFS{
		"index.html":                   {Data: []byte(indexHTML)},
		"admin/index.html":             {Data: []byte(adminHTML)},
		"assets/game-5LQ3K2ZB.js":      {Data: []byte(gameJS)},
		"assets/game-5LQ3K2ZB.js.map":  {Data: []byte(`{"version":3,"sources":["game.ts"]}` + strings.Repeat(" ", 400))},
		"assets/style-ABCDEFGH.css":    {Data: []byte(styleCSS)},
		"assets/module.mjs":            {Data: []byte("export {};\n")},
		"sdk/multijuego.js":            {Data: []byte(sdkJS)},
		"favicon.svg":                  {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
		"favicon.ico":                  {Data: []byte("\x00\x00\x01\x00")},
		"logo.png":                     {Data: []byte(pngBytes)},
		"img/photo.webp":               {Data: []byte("RIFF" + strings.Repeat("W", 500))},
		"fonts/inter-ABCDEFGH.woff2":   {Data: []byte("wOF2" + strings.Repeat("f", 500))},
		"data.json":                    {Data: []byte(`{"ok":true}`)},
		"robots.txt":                   {Data: []byte("hi")},
		"wasm/game.wasm":               {Data: []byte("\x00asm" + strings.Repeat("\x01", 500))},
		"download.bin":                 {Data: []byte(strings.Repeat("binary", 100))},
		".env":                         {Data: []byte("SECRET=1")},
		".git/config":                  {Data: []byte("[core]")},
		"assets/.hidden.js":            {Data: []byte("secret")},
		"docs/readme.txt":              {Data: []byte("no index here")},
		"play/index.html":              {Data: []byte("<!doctype html><title>play</title>")},
		"assets/NOTHASHED-abcdefgh.js": {Data: []byte("x")},
	}
}

// withBrotli adds X.br beside every compressible file X, as web/build does.
func withBrotli(files fstest.MapFS) fstest.MapFS {
	var names []string
	for name := range files {
		if webui.Compressible(name) {
			names = append(names, name)
		}
	}
	for _, name := range names {
		var buf bytes.Buffer
		w := brotli.NewWriterLevel(&buf, brotli.BestCompression)
		_, _ = w.Write(files[name].Data) // a bytes.Buffer does not fail
		_ = w.Close()
		files[name+webui.BrotliSuffix] = &fstest.MapFile{Data: buf.Bytes()}
	}
	return files
}

func newHandler(t testing.TB, origins ...string) *webui.Handler {
	t.Helper()
	h, err := webui.New(fixture(), webui.Config{Enabled: true, RealtimeOrigins: origins})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// serve runs one request; hdr is name, value pairs.
func serve(h http.Handler, method, target string, hdr ...string) result {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return result{rec.Code, rec.Result().Header, rec.Body.Bytes()}
}

func TestContentTypes(t *testing.T) {
	h := newHandler(t)
	for _, tc := range []struct{ path, want string }{
		{"/", "text/html; charset=utf-8"},
		{"/index.html", "text/html; charset=utf-8"},
		{"/admin/", "text/html; charset=utf-8"},
		{"/assets/game-5LQ3K2ZB.js", "text/javascript; charset=utf-8"},
		{"/assets/module.mjs", "text/javascript; charset=utf-8"},
		{"/assets/style-ABCDEFGH.css", "text/css; charset=utf-8"},
		{"/assets/game-5LQ3K2ZB.js.map", "application/json"},
		{"/data.json", "application/json"},
		{"/favicon.svg", "image/svg+xml"},
		{"/favicon.ico", "image/x-icon"},
		{"/logo.png", "image/png"},
		{"/img/photo.webp", "image/webp"},
		{"/fonts/inter-ABCDEFGH.woff2", "font/woff2"},
		{"/robots.txt", "text/plain; charset=utf-8"},
		{"/wasm/game.wasm", "application/wasm"},
		{"/download.bin", "application/octet-stream"},
	} {
		r := serve(h, "GET", tc.path)
		if r.status != 200 || r.header.Get("Content-Type") != tc.want {
			t.Errorf("GET %s: %d %q, want 200 %q", tc.path, r.status, r.header.Get("Content-Type"), tc.want)
		}
	}
}

func TestFingerprinted(t *testing.T) {
	for name, want := range map[string]bool{
		"assets/game-5LQ3K2ZB.js":       true,
		"game-5LQ3K2ZB.js.map":          true,
		"style-ABCDEFGH.css":            true,
		"chunk-with-dashes-234567AB.js": true,
		"game.js":                       false,
		"game-5lq3k2zb.js":              false, // lowercase: not esbuild's alphabet
		"game-5LQ3K2Z1.js":              false, // 1 is not base32
		"game-5LQ3K2Z.js":               false, // 7 characters
		"game_5LQ3K2ZB.js":              false,
		"-5LQ3K2ZB.js":                  false, // no name
		"5LQ3K2ZB":                      false,
		"index.html":                    false,
		"sdk/multijuego.js":             false,
	} {
		if got := webui.Fingerprinted(name); got != want {
			t.Errorf("Fingerprinted(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCacheControl(t *testing.T) {
	h := newHandler(t)
	for path, want := range map[string]string{
		"/assets/game-5LQ3K2ZB.js":      "public, max-age=31536000, immutable",
		"/assets/game-5LQ3K2ZB.js.map":  "public, max-age=31536000, immutable",
		"/assets/style-ABCDEFGH.css":    "public, max-age=31536000, immutable",
		"/fonts/inter-ABCDEFGH.woff2":   "public, max-age=31536000, immutable",
		"/":                             "no-cache",
		"/index.html":                   "no-cache",
		"/admin/":                       "no-cache",
		"/sdk/multijuego.js":            "no-cache",
		"/favicon.svg":                  "no-cache",
		"/assets/module.mjs":            "no-cache",
		"/assets/NOTHASHED-abcdefgh.js": "no-cache",
		"/nope":                         "no-store",
	} {
		r := serve(h, "GET", path)
		if got := r.header.Get("Cache-Control"); got != want {
			t.Errorf("GET %s: Cache-Control %q, want %q", path, got, want)
		}
		if r.status == 200 && !strings.HasPrefix(r.header.Get("ETag"), `"`) {
			t.Errorf("GET %s: ETag %q, want a strong ETag", path, r.header.Get("ETag"))
		}
	}
}

func TestETagAndNotModified(t *testing.T) {
	h := newHandler(t)
	first := serve(h, "GET", "/")
	etag := first.header.Get("ETag")
	if first.status != 200 || len(etag) < 10 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		t.Fatalf("GET /: %d ETag %q", first.status, etag)
	}
	if again := serve(h, "GET", "/index.html"); again.header.Get("ETag") != etag {
		t.Fatalf("/ and /index.html: ETags %q and %q, want equal (same file)", etag, again.header.Get("ETag"))
	}
	if other := serve(h, "GET", "/admin/"); other.header.Get("ETag") == etag {
		t.Fatalf("index and admin pages share ETag %q", etag)
	}
	for _, tc := range []struct {
		inm  []string
		want int
	}{
		{[]string{etag}, 304},
		{[]string{"W/" + etag}, 304}, // weak comparison
		{[]string{`"other", ` + etag}, 304},
		{[]string{`"other"`, etag}, 304}, // two header lines
		{[]string{`*`}, 304},
		{[]string{`"other"`}, 200},
		{[]string{strings.Trim(etag, `"`)}, 200}, // unquoted: malformed
		{[]string{`"other" ` + etag}, 200},       // no comma: malformed from there on
		{[]string{""}, 200},
	} {
		var hdr []string
		for _, v := range tc.inm {
			hdr = append(hdr, "If-None-Match", v)
		}
		r := serve(h, "GET", "/", hdr...)
		if r.status != tc.want {
			t.Errorf("If-None-Match %q: %d, want %d", tc.inm, r.status, tc.want)
		}
		if r.status == 304 {
			if len(r.body) != 0 || r.header.Get("ETag") != etag || r.header.Get("Cache-Control") != "no-cache" || r.header.Get("Content-Security-Policy") == "" {
				t.Errorf("304: body %d bytes, headers %v", len(r.body), r.header)
			}
		}
	}
	// Each encoding is its own representation with its own ETag.
	gz := serve(h, "GET", "/", "Accept-Encoding", "gzip")
	if gz.header.Get("Content-Encoding") != "gzip" || gz.header.Get("ETag") == etag {
		t.Fatalf("gzip: encoding %q ETag %q (identity %q)", gz.header.Get("Content-Encoding"), gz.header.Get("ETag"), etag)
	}
	if r := serve(h, "GET", "/", "Accept-Encoding", "gzip", "If-None-Match", etag); r.status != 200 {
		t.Errorf("gzip request with the identity ETag: %d, want 200", r.status)
	}
	if r := serve(h, "GET", "/", "Accept-Encoding", "gzip", "If-None-Match", gz.header.Get("ETag")); r.status != 304 {
		t.Errorf("gzip request with the gzip ETag: %d, want 304", r.status)
	}
	// The hash of the content, not of anything local: every node agrees.
	h2 := newHandler(t)
	if r := serve(h2, "GET", "/", "Accept-Encoding", "gzip"); r.header.Get("ETag") != gz.header.Get("ETag") || !bytes.Equal(r.body, gz.body) {
		t.Errorf("a second handler over the same files gives ETag %q, want %q, and identical bytes", r.header.Get("ETag"), gz.header.Get("ETag"))
	}
}

func decode(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "":
		return b
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	default:
		t.Fatalf("unexpected Content-Encoding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	return out
}

func TestEncodingNegotiation(t *testing.T) {
	h := newHandler(t)
	for _, tc := range []struct {
		accept []string // header lines; nil: no header
		want   string   // Content-Encoding; "406" for Not Acceptable
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"gzip, deflate, br, zstd"}, "br"}, // Chromium: equal weights, smallest wins
		{[]string{"gzip, deflate"}, "gzip"},
		{[]string{"br"}, "br"},
		{[]string{"BR"}, "br"},
		{[]string{"x-gzip"}, "gzip"},
		{[]string{"gzip", "br"}, "br"}, // two header lines
		{[]string{"gzip;q=1.0, br;q=0.5"}, "gzip"},
		{[]string{"gzip;q=0.5, br;q=0.4"}, ""}, // identity is implicitly 1
		{[]string{"gzip;q=0.5, br;q=0.4, identity;q=0.1"}, "gzip"},
		{[]string{"gzip ; q=0.8 , br ; Q=0.9, identity;q=0.5"}, "br"},
		{[]string{"gzip ; q=0.8 , br ; Q=0.9"}, ""},
		{[]string{"br;q=0, gzip"}, "gzip"},
		{[]string{"br;q=0.0, gzip;q=0.000"}, ""},
		{[]string{"*"}, "br"},
		{[]string{"*;q=0.5, gzip"}, "gzip"},
		{[]string{"br;q=0, *"}, "gzip"},
		{[]string{"br;level=5;q=1"}, "br"}, // other parameters are ignored
		{[]string{"br;q=2"}, ""},           // malformed weight: member ignored
		{[]string{"br;q=1.5"}, ""},
		{[]string{"br;q=0.1234"}, ""},
		{[]string{"br;q="}, ""},
		{[]string{"br;q=0.5;q=oops"}, ""},
		{[]string{"identity;q=0, gzip"}, "gzip"},
		{[]string{"identity;q=0"}, "406"},
		{[]string{"*;q=0"}, "406"},
		{[]string{"*;q=0, identity"}, ""},
		{[]string{"identity;q=0, br;q=0, gzip;q=0"}, "406"},
		{[]string{"gzip;q=0, gzip"}, ""}, // the first mention counts
		{[]string{"compress, deflate"}, ""},
		{[]string{",,, ;q=1, br"}, "br"},
	} {
		var hdr []string
		for _, v := range tc.accept {
			hdr = append(hdr, "Accept-Encoding", v)
		}
		for _, path := range []string{"/", "/assets/game-5LQ3K2ZB.js"} {
			r := serve(h, "GET", path, hdr...)
			if r.header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s %q: Vary %q, want Accept-Encoding", path, tc.accept, r.header.Get("Vary"))
			}
			if tc.want == "406" {
				if r.status != 406 {
					t.Errorf("%s %q: %d, want 406", path, tc.accept, r.status)
				}
				continue
			}
			enc := r.header.Get("Content-Encoding")
			if r.status != 200 || enc != tc.want {
				t.Errorf("%s %q: %d Content-Encoding %q, want 200 %q", path, tc.accept, r.status, enc, tc.want)
				continue
			}
			if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
				t.Errorf("%s %q: Content-Length %s for %d bytes", path, tc.accept, cl, len(r.body))
			}
			want := indexHTML
			if path != "/" {
				want = gameJS
			}
			if got := decode(t, enc, r.body); string(got) != want {
				t.Errorf("%s %q: decoded body differs from the file (%d bytes, want %d)", path, tc.accept, len(got), len(want))
			}
			if enc != "" && len(r.body) >= len(want) {
				t.Errorf("%s %q: %s body %d bytes, not smaller than %d", path, tc.accept, enc, len(r.body), len(want))
			}
		}
	}
}

// A brotli variant comes only from an X.br file beside X (the binary
// cannot make one): it is served for X, never as a file of its own, and
// without it X has gzip and identity only.
func TestBrotliVariantFiles(t *testing.T) {
	h := newHandler(t)
	for _, p := range []string{"/assets/game-5LQ3K2ZB.js.br", "/index.html.br", "/sdk/multijuego.js.br"} {
		if r := serve(h, "GET", p); r.status != 404 {
			t.Errorf("%s: %d, want 404 (a variant, not a file)", p, r.status)
		}
	}
	br := serve(h, "GET", "/assets/game-5LQ3K2ZB.js", "Accept-Encoding", "br")
	gz := serve(h, "GET", "/assets/game-5LQ3K2ZB.js", "Accept-Encoding", "gzip")
	id := serve(h, "GET", "/assets/game-5LQ3K2ZB.js")
	if br.header.Get("Content-Encoding") != "br" || string(decode(t, "br", br.body)) != gameJS {
		t.Fatalf("br: Content-Encoding %q, body not the file", br.header.Get("Content-Encoding"))
	}
	if e := br.header.Get("ETag"); e == gz.header.Get("ETag") || e == id.header.Get("ETag") || !strings.HasSuffix(e, `-br"`) {
		t.Errorf("ETags br %q, gzip %q, identity %q: want three distinct tags", e, gz.header.Get("ETag"), id.header.Get("ETag"))
	}

	plain, err := webui.New(plainFixture(), webui.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if st := plain.Stats(); st.BrotliBytes != 0 || st.GzipBytes == 0 {
		t.Errorf("without .br files: Stats %+v, want gzip only", st)
	}
	for accept, want := range map[string]string{"br": "", "br, gzip": "gzip"} {
		r := serve(plain, "GET", "/assets/game-5LQ3K2ZB.js", "Accept-Encoding", accept)
		if r.status != 200 || r.header.Get("Content-Encoding") != want || r.header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("without .br files, Accept-Encoding %q: %d %q, want 200 %q with Vary", accept, r.status, r.header.Get("Content-Encoding"), want)
		}
	}

	// A .br with no file beside it to be a variant of, or beside a type
	// that is never compressed, is a file like any other.
	files := plainFixture()
	files["orphan.js.br"] = &fstest.MapFile{Data: []byte("x")}
	files["logo.png.br"] = &fstest.MapFile{Data: []byte("y")}
	files["index.html.br"] = &fstest.MapFile{Data: []byte(indexHTML)} // not smaller: unused
	other, err := webui.New(files, webui.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"/orphan.js.br": "x", "/logo.png.br": "y"} {
		if r := serve(other, "GET", p); r.status != 200 || string(r.body) != want || r.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("%s: %d %q %q, want 200 %q as application/octet-stream", p, r.status, r.body, r.header.Get("Content-Type"), want)
		}
	}
	if r := serve(other, "GET", "/", "Accept-Encoding", "br"); r.header.Get("Content-Encoding") != "" {
		t.Errorf("a .br no smaller than its file: served with Content-Encoding %q", r.header.Get("Content-Encoding"))
	}
}

// Already-compressed formats, and files compression would not shrink, are
// stored once: no Content-Encoding, no Vary.
func TestNoCompressionForCompressedTypes(t *testing.T) {
	h := newHandler(t)
	for _, path := range []string{"/logo.png", "/img/photo.webp", "/fonts/inter-ABCDEFGH.woff2", "/download.bin", "/robots.txt", "/data.json"} {
		r := serve(h, "GET", path, "Accept-Encoding", "br, gzip")
		if r.status != 200 || r.header.Get("Content-Encoding") != "" || r.header.Get("Vary") != "" {
			t.Errorf("%s: %d Content-Encoding %q Vary %q, want 200 identity without Vary", path, r.status, r.header.Get("Content-Encoding"), r.header.Get("Vary"))
		}
		// identity;q=0 cannot be honoured with a single representation;
		// it is served as it is rather than refused.
		if r := serve(h, "GET", path, "Accept-Encoding", "identity;q=0"); r.status != 200 {
			t.Errorf("%s with identity;q=0: %d, want 200", path, r.status)
		}
	}
	if r := serve(h, "GET", "/logo.png"); string(r.body) != pngBytes {
		t.Errorf("/logo.png: body differs")
	}
}

func TestHead(t *testing.T) {
	h := newHandler(t)
	for _, ae := range []string{"", "br"} {
		get := serve(h, "GET", "/assets/game-5LQ3K2ZB.js", "Accept-Encoding", ae)
		head := serve(h, "HEAD", "/assets/game-5LQ3K2ZB.js", "Accept-Encoding", ae)
		if head.status != 200 || len(head.body) != 0 {
			t.Fatalf("HEAD: %d with %d body bytes", head.status, len(head.body))
		}
		for _, k := range []string{"Content-Length", "Content-Type", "Content-Encoding", "ETag", "Cache-Control", "Vary", "Content-Security-Policy"} {
			if head.header.Get(k) != get.header.Get(k) {
				t.Errorf("Accept-Encoding %q: HEAD %s %q, GET %q", ae, k, head.header.Get(k), get.header.Get(k))
			}
		}
		if get.header.Get("Content-Length") != strconv.Itoa(len(get.body)) {
			t.Errorf("GET Content-Length %s for %d bytes", get.header.Get("Content-Length"), len(get.body))
		}
	}
	if r := serve(h, "HEAD", "/nope"); r.status != 404 || len(r.body) != 0 {
		t.Errorf("HEAD /nope: %d, %d body bytes; want 404 and none", r.status, len(r.body))
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHandler(t)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, path := range []string{"/", "/index.html", "/admin"} {
			r := serve(h, m, path)
			if r.status != 405 || r.header.Get("Allow") != "GET, HEAD" || r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s %s: %d Allow %q, want 405 with Allow: GET, HEAD", m, path, r.status, r.header.Get("Allow"))
			}
		}
		if r := serve(h, m, "/nope"); r.status != 404 {
			t.Errorf("%s /nope: %d, want 404", m, r.status)
		}
	}
}

func TestRange(t *testing.T) {
	h := newHandler(t)
	r := serve(h, "GET", "/assets/game-5LQ3K2ZB.js", "Range", "bytes=0-9")
	if r.status != 206 || string(r.body) != gameJS[:10] || r.header.Get("Content-Range") != "bytes 0-9/"+strconv.Itoa(len(gameJS)) {
		t.Fatalf("Range: %d %q %q", r.status, r.body, r.header.Get("Content-Range"))
	}
	// A compressed answer ignores Range: the whole representation.
	r = serve(h, "GET", "/assets/game-5LQ3K2ZB.js", "Range", "bytes=0-9", "Accept-Encoding", "gzip")
	if r.status != 200 || string(decode(t, "gzip", r.body)) != gameJS {
		t.Fatalf("Range with gzip: %d", r.status)
	}
}

func TestPaths(t *testing.T) {
	h := newHandler(t)
	for _, tc := range []struct {
		path     string
		status   int
		body     string // for 200
		location string // for 301
	}{
		{"/", 200, indexHTML, ""},
		{"/index.html", 200, indexHTML, ""},
		{"/admin/", 200, adminHTML, ""},
		{"/admin/index.html", 200, adminHTML, ""},
		{"/admin", 301, "", "/admin/"},
		{"/admin?tab=dlq", 301, "", "/admin/?tab=dlq"},
		{"/play", 301, "", "/play/"},
		{"/play/", 200, "<!doctype html><title>play</title>", ""},
		{"/docs", 404, "", ""},  // a directory without index.html
		{"/docs/", 404, "", ""}, // no listings
		{"/docs/readme.txt", 200, "no index here", ""},
		{"/assets/", 404, "", ""},
		{"/assets", 404, "", ""},
		{"/index.html/", 404, "", ""},
		{"/.env", 404, "", ""},
		{"/.git/config", 404, "", ""},
		{"/.git/", 404, "", ""},
		{"/assets/.hidden.js", 404, "", ""},
		{"/../index.html", 404, "", ""},
		{"/assets/../index.html", 404, "", ""},
		{"/%2e%2e/index.html", 404, "", ""},
		{"/./index.html", 404, "", ""},
		{"//index.html", 404, "", ""},
		{"/admin//", 404, "", ""},
		{"/ADMIN/", 404, "", ""},
		{"/index.html%00", 404, "", ""},
		{"/..%5cindex.html", 404, "", ""},
		{"/nope", 404, "", ""},
	} {
		r := serve(h, "GET", tc.path)
		if r.status != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.path, r.status, tc.status)
			continue
		}
		switch tc.status {
		case 200:
			if string(r.body) != tc.body {
				t.Errorf("GET %s: body %.40q, want %.40q", tc.path, r.body, tc.body)
			}
		case 301:
			if r.header.Get("Location") != tc.location {
				t.Errorf("GET %s: Location %q, want %q", tc.path, r.header.Get("Location"), tc.location)
			}
		case 404:
			if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" || !bytes.Contains(r.body, []byte("404")) || r.header.Get("Content-Security-Policy") == "" {
				t.Errorf("GET %s: 404 page %q (%s)", tc.path, r.body, ct)
			}
		}
	}
}

// The handler never reads the file system after New: nothing outside the
// root, and nothing added later, is reachable.
func TestDirFSTraversal(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "dist")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "secret.txt"), "secret")
	write(filepath.Join(root, "index.html"), "hello")
	if err := os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	h, err := webui.New(os.DirFS(root), webui.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(root, "late.txt"), "late")
	for _, p := range []string{"/../secret.txt", "/%2e%2e/secret.txt", "/link.txt", "/late.txt", "/..", "/../dist/index.html"} {
		if r := serve(h, "GET", p); r.status != 404 {
			t.Errorf("GET %s: %d %q, want 404", p, r.status, r.body)
		}
	}
	if r := serve(h, "GET", "/"); r.status != 200 || string(r.body) != "hello" {
		t.Errorf("GET /: %d %q", r.status, r.body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newHandler(t, "https://rt.example.com", "wss://eu.example.com:8443")
	wantCSP := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self' https://rt.example.com wss://rt.example.com wss://eu.example.com:8443 https://eu.example.com:8443; " +
		"object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
	inm := serve(h, "GET", "/").header.Get("ETag")
	for _, tc := range []struct {
		method, path string
		hdr          []string
		status       int
	}{
		{"GET", "/", nil, 200},
		{"GET", "/assets/game-5LQ3K2ZB.js", []string{"Accept-Encoding", "br"}, 200},
		{"HEAD", "/logo.png", nil, 200},
		{"GET", "/", []string{"If-None-Match", inm}, 304},
		{"GET", "/admin", nil, 301},
		{"GET", "/nope", nil, 404},
		{"POST", "/", nil, 405},
		{"GET", "/", []string{"Accept-Encoding", "identity;q=0"}, 406},
	} {
		r := serve(h, tc.method, tc.path, tc.hdr...)
		if r.status != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, r.status, tc.status)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy":    wantCSP,
			"X-Content-Type-Options":     "nosniff",
			"Referrer-Policy":            "strict-origin-when-cross-origin",
			"Cross-Origin-Opener-Policy": "same-origin",
			"X-Frame-Options":            "DENY",
			"Strict-Transport-Security":  "", // not over plain HTTP
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s %s (%d): %s %q, want %q", tc.method, tc.path, r.status, k, got, want)
			}
		}
	}
	// HSTS only when this server terminates TLS.
	req := httptest.NewRequest("GET", "https://game.example.com/", nil)
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("over TLS: Strict-Transport-Security %q, want max-age=31536000", got)
	}
	// Without configured origins the page may connect to itself only.
	r := serve(newHandler(t), "GET", "/")
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'; ") {
		t.Errorf("default CSP %q, want connect-src 'self' only", csp)
	}
}

// The SDK is an ES module other origins may import: module scripts load in
// CORS mode.
func TestSDKIsImportableCrossOrigin(t *testing.T) {
	h := newHandler(t)
	if r := serve(h, "GET", "/sdk/multijuego.js"); r.header.Get("Access-Control-Allow-Origin") != "*" || string(r.body) != sdkJS {
		t.Errorf("/sdk/multijuego.js: Access-Control-Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	if r := serve(h, "GET", "/"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/: Access-Control-Allow-Origin %q, want none", r.header.Get("Access-Control-Allow-Origin"))
	}
}

func TestRealtimeOriginsValidation(t *testing.T) {
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://rt.example.com", true},
		{"http://127.0.0.1:8080", true},
		{"wss://rt.example.com", true},
		{"https://*.example.com", true},
		{"https://[::1]:8443", true},
		{"https://rt.example.com/", true},
		{"ftp://rt.example.com", false},
		{"rt.example.com", false},
		{"https://", false},
		{"https://rt.example.com/path", false},
		{"https://rt.example.com?x=1", false},
		{"https://user:pw@rt.example.com", false},
		{"https://rt.example.com:99999", false},
		{"https://rt.example.com; script-src *", false},
		{"https://rt.example.com 'unsafe-inline'", false},
		{"https://*", false},
		{"", false},
	} {
		var v config.Validator
		webui.Config{RealtimeOrigins: []string{tc.origin}}.Validate(&v, "web")
		verr := v.Err()
		_, nerr := webui.New(fixture(), webui.Config{RealtimeOrigins: []string{tc.origin}})
		if (verr == nil) != tc.ok || (nerr == nil) != tc.ok {
			t.Errorf("origin %q: Validate %v, New %v; want ok=%v", tc.origin, verr, nerr, tc.ok)
		}
		if verr != nil && (!strings.Contains(verr.Error(), "web.realtime_origins") || !strings.Contains(verr.Error(), "example: https://")) {
			t.Errorf("origin %q: error %q should name the key and show an example", tc.origin, verr)
		}
	}
}

func TestNew(t *testing.T) {
	if _, err := webui.New(nil, webui.DefaultConfig()); err == nil {
		t.Error("New(nil) succeeded")
	}
	if _, err := webui.New(failingFS{fixture()}, webui.DefaultConfig()); err == nil || !strings.Contains(err.Error(), "logo.png") {
		t.Errorf("New over an unreadable file: %v, want an error naming it", err)
	}
	h := newHandler(t)
	st := h.Stats()
	if st.Files != 19 || st.Bytes == 0 || st.GzipBytes == 0 || st.BrotliBytes == 0 || st.BrotliBytes >= st.Bytes {
		t.Errorf("Stats = %+v; want 19 files (dot files skipped) and smaller compressed sizes", st)
	}
	if !webui.DefaultConfig().Enabled {
		t.Error("serving is off by default")
	}
}

// failingFS cannot read logo.png.
type failingFS struct{ fstest.MapFS }

func (f failingFS) Open(name string) (fs.File, error) {
	if name == "logo.png" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f.MapFS.Open(name)
}

func (f failingFS) ReadFile(name string) ([]byte, error) {
	if name == "logo.png" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f.MapFS.ReadFile(name)
}
