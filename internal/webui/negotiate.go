package webui

import "strings"

// coding is a content-coding the handler stores.
type coding int

const (
	identity coding = iota
	gzipCoding
	brCoding
)

func (c coding) String() string {
	switch c {
	case gzipCoding:
		return "gzip"
	case brCoding:
		return "br"
	}
	return "identity"
}

// unset marks a coding the Accept-Encoding header does not name.
const unset = -1

// acceptPrefs are the q-values, in thousandths (0-1000), that the
// Accept-Encoding header gives to the codings the handler knows and to "*".
// Parsing allocates nothing.
type acceptPrefs struct {
	present               bool // some Accept-Encoding line was seen
	br, gzip, ident, star int16
}

func (p *acceptPrefs) reset() { *p = acceptPrefs{br: unset, gzip: unset, ident: unset, star: unset} }

// parse adds one Accept-Encoding field line (RFC 9110 §12.5.3):
// comma-separated codings, each with an optional ";q=" weight. Coding names
// are case-insensitive; x-gzip means gzip. When a coding is named twice the
// first mention counts. Members with a malformed weight are ignored, as are
// codings the handler does not store.
func (p *acceptPrefs) parse(s string) {
	p.present = true
	for len(s) > 0 {
		var member string
		if i := strings.IndexByte(s, ','); i >= 0 {
			member, s = s[:i], s[i+1:]
		} else {
			member, s = s, ""
		}
		name, params := member, ""
		if i := strings.IndexByte(member, ';'); i >= 0 {
			name, params = member[:i], member[i+1:]
		}
		name = trimOWS(name)
		q, ok := weight(params)
		if !ok || name == "" {
			continue
		}
		var slot *int16
		switch {
		case equalFold(name, "br"):
			slot = &p.br
		case equalFold(name, "gzip"), equalFold(name, "x-gzip"):
			slot = &p.gzip
		case equalFold(name, "identity"):
			slot = &p.ident
		case name == "*":
			slot = &p.star
		default:
			continue
		}
		if *slot == unset {
			*slot = q
		}
	}
}

// weight reads the parameters after a coding: q=qvalue, where qvalue is
// "0" or "1" optionally followed by "." and up to three digits (a "1" only
// by zeros). Other parameters are ignored; no q means 1.
func weight(params string) (int16, bool) {
	q := int16(1000)
	for len(params) > 0 {
		var param string
		if i := strings.IndexByte(params, ';'); i >= 0 {
			param, params = params[:i], params[i+1:]
		} else {
			param, params = params, ""
		}
		param = trimOWS(param)
		if len(param) < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=' {
			continue
		}
		v, ok := qvalue(param[2:])
		if !ok {
			return 0, false
		}
		q = v
	}
	return q, true
}

func qvalue(s string) (int16, bool) {
	if len(s) == 0 || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	v := int16(s[0]-'0') * 1000
	if len(s) == 1 {
		return v, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := int16(100)
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || (v == 1000 && c != '0') {
			return 0, false
		}
		v += int16(c-'0') * scale
		scale /= 10
	}
	return v, true
}

// q is the weight the client gives to c.
func (p *acceptPrefs) q(c coding) int16 {
	if !p.present {
		if c == identity { // no header: no coding wanted
			return 1000
		}
		return 0
	}
	var named int16
	switch c {
	case brCoding:
		named = p.br
	case gzipCoding:
		named = p.gzip
	default:
		named = p.ident
	}
	if named != unset {
		return named
	}
	if p.star != unset {
		return p.star
	}
	if c == identity {
		return 1000 // acceptable unless refused by name or by *;q=0
	}
	return 0
}

// choose picks the variant with the highest weight; variants are sorted
// smallest first, so among equals the smallest wins. Nil when the client
// accepts none of them.
func (p *acceptPrefs) choose(vs []*variant) *variant {
	var best *variant
	var bestQ int16
	for _, v := range vs {
		if q := p.q(v.coding); q > bestQ {
			best, bestQ = v, q
		}
	}
	return best
}

// etagMatches is the weak comparison of If-None-Match (RFC 9110 §13.1.2):
// "*" or any listed entity-tag whose opaque part equals etag's, W/ or not.
// A malformed list matches nothing from the fault on.
func etagMatches(lines []string, etag string) bool {
	for _, s := range lines {
		for {
			s = trimOWS(s)
			if s == "" {
				break
			}
			if s[0] == '*' {
				return true
			}
			if len(s) >= 2 && s[0] == 'W' && s[1] == '/' {
				s = s[2:]
			}
			if len(s) < 2 || s[0] != '"' {
				break
			}
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				break
			}
			if s[:end+2] == etag {
				return true
			}
			s = trimOWS(s[end+2:])
			if s == "" || s[0] != ',' {
				break
			}
			s = s[1:]
		}
	}
	return false
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFold compares an ASCII token case-insensitively.
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
