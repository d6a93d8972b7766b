// Package webui serves the browser files (demo game, admin console, SDK)
// from an fs.FS, in a way a CDN in front can cache without special rules.
//
// Every file is read once when the handler is built. Compressible files get
// a gzip variant, made then with the standard library, and a brotli variant
// if the files hold one made at build time (X.br beside X: the binary has
// no brotli encoder; web/build writes them for the embedded files); a
// variant is kept only when smaller. Each variant's strong ETag is the hash
// of its bytes. A request costs a map lookup and a write.
// Fingerprinted names (esbuild's [name]-[hash], e.g. game-5LQ3K2ZB.js) are
// cached for a year as immutable; everything else is revalidated (no-cache
// plus ETag). Every response carries the security headers: a
// Content-Security-Policy allowing only this origin and the configured
// realtime origins, nosniff, a referrer policy, COOP and frame denial.
package webui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/config"
)

// Config is the `web` part of the configuration tree.
type Config struct {
	Enabled         bool     `yaml:"enabled" help:"serve the demo game, the admin console (/admin/) and the browser SDK (/sdk/multijuego.js) embedded in the binary"`
	RealtimeOrigins []string `yaml:"realtime_origins" help:"other origins the pages may connect to, added to the Content-Security-Policy connect-src with their ws(s) form (comma-separated, e.g. https://rt.example.com); this server's own origin is always allowed"`
}

// DefaultConfig returns the defaults: serving on, same origin only.
func DefaultConfig() Config { return Config{Enabled: true} }

// Validate records every invalid key under prefix.
func (c Config) Validate(v *config.Validator, prefix string) {
	for _, o := range c.RealtimeOrigins {
		_, err := connectSources(o)
		v.Check(err == nil, prefix+".realtime_origins", "%v", err)
	}
}

// Cache-Control values.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
	cacheNone       = "no-store"
)

// BrotliSuffix names a file's brotli variant: for a compressible file X,
// X.br in the same fs.FS must be X compressed with brotli; it is served
// for X with Content-Encoding: br and is not a file of its own. Nothing
// checks that it decodes to X (the binary has no brotli code): whoever
// writes it must (web/build does; a test in web/ decodes them).
const BrotliSuffix = ".br"

// fileType is what the table knows about an extension.
type fileType struct {
	contentType string
	compress    bool // text-like: worth compressing
}

// types is the explicit content-type table; anything else is
// application/octet-stream and is not compressed. No sniffing.
var types = map[string]fileType{
	".html":        {"text/html; charset=utf-8", true},
	".js":          {"text/javascript; charset=utf-8", true},
	".mjs":         {"text/javascript; charset=utf-8", true},
	".css":         {"text/css; charset=utf-8", true},
	".json":        {"application/json", true},
	".map":         {"application/json", true},
	".webmanifest": {"application/manifest+json", true},
	".svg":         {"image/svg+xml", true},
	".txt":         {"text/plain; charset=utf-8", true},
	".wasm":        {"application/wasm", true},
	".ico":         {"image/x-icon", true}, // usually uncompressed bitmaps
	".png":         {"image/png", false},
	".jpg":         {"image/jpeg", false},
	".jpeg":        {"image/jpeg", false},
	".gif":         {"image/gif", false},
	".webp":        {"image/webp", false},
	".avif":        {"image/avif", false},
	".woff2":       {"font/woff2", false},
	".woff":        {"font/woff", false},
}

// Compressible reports whether files named so get compressed variants.
func Compressible(name string) bool { return typeOf(name).compress }

func typeOf(name string) fileType {
	if t, ok := types[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return fileType{"application/octet-stream", false}
}

// Fingerprinted reports whether a file name carries a content hash in
// esbuild's [name]-[hash] form: a dash and 8 characters of uppercase base32
// (A-Z, 2-7) right before an extension, as in game-5LQ3K2ZB.js or
// game-5LQ3K2ZB.js.map. Such a file never changes under its name.
func Fingerprinted(name string) bool {
	s := path.Base(name)
	for {
		i := strings.LastIndexByte(s, '.')
		if i < 0 {
			return false
		}
		s = s[:i]
		if n := len(s); n > 9 && s[n-9] == '-' && isBase32(s[n-8:]) {
			return true
		}
	}
}

func isBase32(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Header values are built once and shared by every response: the slices
// are full (len == cap), so a caller appending to one gets a copy, and
// net/http only reads them. This is what makes serving allocation-free.
type headerValue = []string

func hv(s string) headerValue { return []string{s}[:1:1] }

// variant is one stored encoding of a file.
type variant struct {
	coding   coding
	body     []byte
	etag     string // quoted, for If-None-Match
	hETag    headerValue
	hLength  headerValue
	hEncode  headerValue // nil for identity
	identity bool
}

// asset is one file and its variants, smallest first.
type asset struct {
	name     string
	variants []*variant
	identity *variant
	hType    headerValue
	hCache   headerValue
	hCORS    headerValue // non-nil for the SDK, which pages elsewhere import
	vary     bool        // more than one variant
}

// Handler serves the files of one fs.FS. It is safe for concurrent use and
// never touches the fs.FS after New.
type Handler struct {
	files     map[string]*asset // URL path ("/", "/admin/", "/assets/x-HASH.js") -> file
	redirects map[string]string // "/admin" -> "/admin/"
	security  []headerField
	bytes     [3]int // stored bytes: identity, gzip, br
}

type headerField struct {
	key   string
	value headerValue
}

// New reads every file of files (skipping dot files and directories) and
// builds the handler. cfg.Enabled is not consulted: the caller decides
// whether to mount it.
func New(files fs.FS, cfg Config) (*Handler, error) {
	if files == nil {
		return nil, errors.New("webui: no files")
	}
	csp, err := contentSecurityPolicy(cfg.RealtimeOrigins)
	if err != nil {
		return nil, fmt.Errorf("webui: realtime_origins: %w", err)
	}
	h := &Handler{
		files:     map[string]*asset{},
		redirects: map[string]string{},
		security: []headerField{
			{"Content-Security-Policy", hv(csp)},
			{"X-Content-Type-Options", hv("nosniff")},
			{"Referrer-Policy", hv("strict-origin-when-cross-origin")},
			{"Cross-Origin-Opener-Policy", hv("same-origin")},
			{"X-Frame-Options", hv("DENY")},
		},
	}
	bodies, err := readFiles(files)
	if err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	for name, body := range bodies {
		if base, ok := strings.CutSuffix(name, BrotliSuffix); ok && Compressible(base) {
			if _, ok := bodies[base]; ok {
				continue // a variant of base
			}
		}
		var br []byte
		if Compressible(name) {
			br = bodies[name+BrotliSuffix]
		}
		a, err := newAsset(name, body, br)
		if err != nil {
			return nil, fmt.Errorf("webui: %w", err)
		}
		h.add(a)
	}
	return h, nil
}

// readFiles reads every regular file of files, skipping dot files and dot
// directories.
func readFiles(files fs.FS) (map[string][]byte, error) {
	bodies := map[string][]byte{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		body, err := fs.ReadFile(files, name)
		bodies[name] = body
		return err
	})
	return bodies, err
}

// add puts a under its URL paths (a folder's index.html also at the
// folder's path, and the path without the slash redirected there).
func (h *Handler) add(a *asset) {
	for _, v := range a.variants {
		h.bytes[v.coding] += len(v.body)
	}
	h.files["/"+a.name] = a
	if path.Base(a.name) == "index.html" {
		dir := path.Dir(a.name)
		if dir == "." {
			h.files["/"] = a
		} else {
			h.files["/"+dir+"/"] = a
			h.redirects["/"+dir] = "/" + dir + "/"
		}
	}
}

// newAsset makes the variants of one file: identity, gzip and the given
// brotli bytes (empty: none), the compressed ones only for compressible
// types and only when smaller.
func newAsset(name string, body, br []byte) (*asset, error) {
	t := typeOf(name)
	a := &asset{name: name, hType: hv(t.contentType), hCache: hv(cacheRevalidate)}
	if Fingerprinted(name) {
		a.hCache = hv(cacheImmutable)
	}
	if strings.HasPrefix(name, "sdk/") {
		// Module scripts load in CORS mode: a game page on another origin
		// may import the SDK straight from here.
		a.hCORS = hv("*")
	}
	a.identity = newVariant(identity, body)
	a.variants = []*variant{a.identity}
	if t.compress {
		gz, err := compressGzip(body)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		if len(gz) < len(body) {
			a.variants = append(a.variants, newVariant(gzipCoding, gz))
		}
		if len(br) > 0 && len(br) < len(body) {
			a.variants = append(a.variants, newVariant(brCoding, br))
		}
	}
	sort.SliceStable(a.variants, func(i, j int) bool { return len(a.variants[i].body) < len(a.variants[j].body) })
	a.vary = len(a.variants) > 1
	return a, nil
}

// newVariant stores body under c. Its ETag is the hash of body (not of
// the identity bytes: two encoders' outputs are different representations),
// with the coding as a suffix for people reading headers.
func newVariant(c coding, body []byte) *variant {
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:15])
	if c != identity {
		etag += "-" + c.String()
	}
	etag += `"`
	v := &variant{coding: c, body: body, etag: etag, hETag: hv(etag), hLength: hv(strconv.Itoa(len(body))), identity: c == identity}
	if c != identity {
		v.hEncode = hv(c.String())
	}
	return v
}

func compressGzip(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression) // no name, no time: deterministic
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Stats describes what the handler holds, for a startup log line.
type Stats struct {
	Files                         int
	Bytes, GzipBytes, BrotliBytes int
}

// Stats returns the number of files and the bytes held per encoding.
func (h *Handler) Stats() Stats {
	n := 0
	for p, a := range h.files {
		if p == "/"+a.name {
			n++
		}
	}
	return Stats{Files: n, Bytes: h.bytes[identity], GzipBytes: h.bytes[gzipCoding], BrotliBytes: h.bytes[brCoding]}
}

// lookup resolves a URL path. Only the clean paths of loaded files are in
// the tables, so "..", "//", "/./", dot files and directories without an
// index.html can never resolve.
func (h *Handler) lookup(p string) (a *asset, redirect string) {
	if a, ok := h.files[p]; ok {
		return a, ""
	}
	return nil, h.redirects[p]
}

// ServeHTTP answers GET and HEAD from the stored files.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	for _, f := range h.security {
		hdr[f.key] = f.value
	}
	if r.TLS != nil {
		hdr["Strict-Transport-Security"] = hstsValue
	}
	a, redirect := h.lookup(r.URL.Path)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if a == nil && redirect == "" {
			h.notFound(w, r)
			return
		}
		hdr["Allow"] = allowValue
		plain(w, r, http.StatusMethodNotAllowed, "405 method not allowed: use GET or HEAD\n")
		return
	}
	if redirect != "" {
		if r.URL.RawQuery != "" {
			redirect += "?" + r.URL.RawQuery
		}
		hdr["Location"] = []string{redirect}
		hdr["Cache-Control"] = noCacheValue
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	if a == nil {
		h.notFound(w, r)
		return
	}
	v := a.identity
	if a.vary {
		hdr["Vary"] = varyValue
		var prefs acceptPrefs
		prefs.reset()
		for _, s := range r.Header["Accept-Encoding"] {
			prefs.parse(s)
		}
		if v = prefs.choose(a.variants); v == nil {
			plain(w, r, http.StatusNotAcceptable, "406 not acceptable: no acceptable content-coding (gzip, br or identity)\n")
			return
		}
	}
	hdr["Cache-Control"] = a.hCache
	hdr["Etag"] = v.hETag
	if a.hCORS != nil {
		hdr["Access-Control-Allow-Origin"] = a.hCORS
	}
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		if etagMatches(inm, v.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	hdr["Content-Type"] = a.hType
	if v.hEncode != nil {
		hdr["Content-Encoding"] = v.hEncode
	}
	if v.identity && r.Method == http.MethodGet && len(r.Header["Range"]) > 0 {
		// Ranges only over the identity bytes; ServeContent also handles
		// If-Range against the ETag set above.
		http.ServeContent(w, r, "", zeroTime, bytes.NewReader(v.body))
		return
	}
	hdr["Content-Length"] = v.hLength
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(v.body)
	}
}

var (
	zeroTime     time.Time
	hstsValue    = hv("max-age=31536000")
	allowValue   = hv("GET, HEAD")
	varyValue    = hv("Accept-Encoding")
	noCacheValue = hv(cacheRevalidate)
	noStoreValue = hv(cacheNone)
	htmlValue    = hv("text/html; charset=utf-8")
	textValue    = hv("text/plain; charset=utf-8")
)

const notFoundPage = `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>Not found</title>
<h1>404 Not found</h1>
<p>There is no page here. <a href="/">Back to the game</a>.</p>
</html>
`

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr["Content-Type"] = htmlValue
	hdr["Cache-Control"] = noStoreValue
	hdr["Content-Length"] = hv(strconv.Itoa(len(notFoundPage)))
	w.WriteHeader(http.StatusNotFound)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, notFoundPage)
	}
}

func plain(w http.ResponseWriter, r *http.Request, status int, msg string) {
	hdr := w.Header()
	hdr["Content-Type"] = textValue
	hdr["Cache-Control"] = noStoreValue
	hdr["Content-Length"] = hv(strconv.Itoa(len(msg)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, msg)
	}
}

// contentSecurityPolicy allows only this origin, plus the configured
// realtime origins for connections. 'self' already covers same-origin
// ws:// and wss:// in current browsers.
func contentSecurityPolicy(origins []string) (string, error) {
	connect := []string{"'self'"}
	for _, o := range origins {
		srcs, err := connectSources(o)
		if err != nil {
			return "", err
		}
		for _, s := range srcs {
			if !contains(connect, s) {
				connect = append(connect, s)
			}
		}
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src " +
		strings.Join(connect, " ") +
		"; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'", nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// connectSources turns one configured origin into its CSP sources: the
// origin itself and its WebSocket (or HTTP) twin, so both the HTTP API and
// the sockets on that host are allowed.
func connectSources(origin string) ([]string, error) {
	bad := func(why string) error {
		return fmt.Errorf("%q is not an origin (%s); example: https://rt.example.com", origin, why)
	}
	u, err := url.Parse(origin)
	if err != nil {
		return nil, bad("unparsable")
	}
	twin := map[string]string{"http": "ws", "https": "wss", "ws": "http", "wss": "https"}[u.Scheme]
	switch {
	case twin == "":
		return nil, bad("scheme must be http, https, ws or wss")
	case u.Host == "" || u.Opaque != "":
		return nil, bad("no host")
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, bad("only scheme://host[:port], no path, query or credentials")
	}
	host := u.Host
	if strings.HasPrefix(host, "*.") {
		host = host[2:] // CSP allows a leading wildcard label
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return nil, bad(fmt.Sprintf("character %q in the host", c))
		}
	}
	if host == "" || strings.HasPrefix(host, ".") || strings.HasPrefix(host, ":") {
		return nil, bad("no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, bad("port must be 1-65535")
		}
	}
	h := strings.ToLower(u.Host)
	return []string{u.Scheme + "://" + h, twin + "://" + h}, nil
}
