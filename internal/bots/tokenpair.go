package bots

import (
	"encoding/json"
	"errors"
	"fmt"
)

// checkTokenPair checks that b, the body of a login's 2xx, is one JSON
// object whose access_token and refresh_token are non-empty strings, the
// last of a repeated name counting, as encoding/json reads it. It
// validates the JSON as strictly as encoding/json but decodes nothing
// else: the login storm checks that a login gave a session, not what the
// session is.
func checkTokenPair(b []byte) error {
	s := jsonScan{b: b}
	s.space()
	if !s.next('{') {
		return s.fail("not a JSON object")
	}
	var access, refresh bool
	s.space()
	if !s.next('}') {
		for {
			s.space()
			k0 := s.i
			escaped, ok := s.str()
			if !ok {
				return s.fail("bad object key")
			}
			key := b[k0+1 : s.i-1]
			if escaped { // rare: compare the decoded name
				var name string
				_ = json.Unmarshal(b[k0:s.i], &name)
				key = []byte(name)
			}
			s.space()
			if !s.next(':') {
				return s.fail("no colon after a key")
			}
			s.space()
			v0 := s.i
			if !s.value(1) {
				return s.fail("bad value")
			}
			// A string of one or more bytes (escapes included) is not
			// empty once decoded.
			str := b[v0] == '"' && s.i-v0 > 2
			switch string(key) {
			case "access_token":
				access = str
			case "refresh_token":
				refresh = str
			}
			s.space()
			if s.next('}') {
				break
			}
			if !s.next(',') {
				return s.fail("no comma or } after a value")
			}
		}
	}
	s.space()
	if s.i != len(b) {
		return s.fail("data after the object")
	}
	switch {
	case !access:
		return errors.New("no access_token in the answer")
	case !refresh:
		return errors.New("no refresh_token in the answer")
	}
	return nil
}

// jsonMaxDepth is encoding/json's limit on nested arrays and objects.
const jsonMaxDepth = 10000

// jsonScan validates JSON (RFC 8259) from b[i:].
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) fail(what string) error {
	return fmt.Errorf("unreadable answer: %s at byte %d", what, s.i)
}

func (s *jsonScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c if it comes next.
func (s *jsonScan) next(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// value consumes one value at nesting depth (1 for the top object's).
func (s *jsonScan) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '{' || c == '[':
		return s.container(depth + 1)
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return true
		}
	}
	return false
}

// container consumes an object or an array opening at depth.
func (s *jsonScan) container(depth int) bool {
	if depth > jsonMaxDepth {
		return false
	}
	object := s.b[s.i] == '{'
	end := byte(']')
	if object {
		end = '}'
	}
	s.i++
	s.space()
	if s.next(end) {
		return true
	}
	for {
		s.space()
		if object {
			if _, ok := s.str(); !ok {
				return false
			}
			s.space()
			if !s.next(':') {
				return false
			}
			s.space()
		}
		if !s.value(depth) {
			return false
		}
		s.space()
		if s.next(end) {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// str consumes a string, saying whether it holds an escape.
func (s *jsonScan) str() (escaped, ok bool) {
	if !s.next('"') {
		return false, false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return escaped, true
		case c < ' ':
			return false, false
		case c == '\\':
			escaped = true
			if s.i >= len(s.b) {
				return false, false
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(s.b)-s.i < 4 {
					return false, false
				}
				for _, h := range s.b[s.i : s.i+4] {
					if hexDigit(h) < 0 {
						return false, false
					}
				}
				s.i += 4
			default:
				return false, false
			}
		}
	}
	return false, false
}

// number consumes a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScan) number() bool {
	s.next('-')
	switch {
	case s.next('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.next('.') && s.digits() == 0 {
		return false
	}
	if s.next('e') || s.next('E') {
		if !s.next('+') {
			s.next('-')
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

// digits consumes decimal digits and says how many.
func (s *jsonScan) digits() int {
	i0 := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - i0
}
