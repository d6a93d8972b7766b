package bots

import (
	"bytes"
	"errors"
	"fmt"
)

// The login storm reads its answers with parseAnswer rather than through
// net/http's Transport and the SDK's JSON decoding: those (the Transport's
// reader and writer goroutines per connection and the hand-offs between
// them, header maps, the full decode of the token pair) were more than
// half of the tool's CPU per login, about 80 µs against 37 µs without them
// on a 2-core machine (docs/benchmarks.md, "The load tool's cost per
// login"), CPU the server under test then lacked (authconn.go).

// maxAnswer bounds one answer, head and body, of the login storm.
const maxAnswer = 64 << 10

// httpAnswer is one HTTP/1.x answer.
type httpAnswer struct {
	status     int
	body       []byte // aliases the parsed bytes
	retryAfter int    // Retry-After in seconds; 0 when absent or not a number
	close      bool   // the server closes the connection after this answer
}

var errAnswer = errors.New("malformed HTTP answer")

// parseAnswer parses the answer at the start of b, which holds every byte
// read so far when eof is false and the whole stream when it is true. It
// returns the answer and its size, or n == 0 (and no error) when b holds
// no whole answer yet. It is strict: what it accepts, net/http reads the
// same. A chunked body is joined in place, in b.
func parseAnswer(b []byte, eof bool) (a httpAnswer, n int, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if eof || len(b) > maxAnswer {
			return a, 0, fmt.Errorf("%w: no whole head in %d bytes", errAnswer, len(b))
		}
		return a, 0, nil
	}
	h, err := parseHead(b[:end])
	if err != nil {
		return a, 0, err
	}
	a.status, a.retryAfter, a.close = h.status, h.retryAfter, h.close
	rest := b[end+4:]
	switch {
	case h.status == 204 || h.status == 304:
		if h.length > 0 || h.chunked {
			return a, 0, fmt.Errorf("%w: a body on a %d", errAnswer, h.status)
		}
		return a, end + 4, nil
	case h.chunked:
		body, size, err := joinChunks(rest)
		if err != nil || size == 0 {
			if err == nil && (eof || len(b) > maxAnswer) {
				err = fmt.Errorf("%w: chunked body cut short", errAnswer)
			}
			return httpAnswer{}, 0, err
		}
		a.body = body
		return a, end + 4 + size, nil
	case h.length >= 0:
		if len(rest) < h.length {
			if eof {
				return httpAnswer{}, 0, fmt.Errorf("%w: body of %d bytes cut at %d", errAnswer, h.length, len(rest))
			}
			return httpAnswer{}, 0, nil
		}
		a.body = rest[:h.length]
		return a, end + 4 + h.length, nil
	default: // the body runs to the end of the stream
		if !eof {
			return httpAnswer{}, 0, nil
		}
		a.body, a.close = rest, true
		return a, len(b), nil
	}
}

// answerHead is what parseAnswer needs of an answer's head.
type answerHead struct {
	status     int
	length     int // Content-Length; -1 when absent
	chunked    bool
	retryAfter int
	close      bool
}

// parseHead parses a status line and header lines (without the blank line
// that ends them).
func parseHead(b []byte) (answerHead, error) {
	h := answerHead{length: -1}
	line, b, more := bytes.Cut(b, []byte("\r\n"))
	// HTTP/1.0 or 1.1, a status of 200 to 599 (no 1xx: the storm sends no
	// Expect), then nothing or a space and a reason phrase.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		line[9] < '2' || line[9] > '5' || !isDigits(line[10:12]) || (len(line) > 12 && line[12] != ' ') || !headerText(line[12:]) {
		return h, fmt.Errorf("%w: status line %.40q", errAnswer, line)
	}
	minor, code := line[7], line[9:12]
	h.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	h.close = minor == '0'
	for more {
		line, b, more = bytes.Cut(b, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isToken(name) || !headerText(value) {
			return h, fmt.Errorf("%w: header line %.40q", errAnswer, line)
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if h.length >= 0 || len(value) == 0 || len(value) > 9 || !isDigits(value) {
				return h, fmt.Errorf("%w: Content-Length %.20q", errAnswer, value)
			}
			h.length = atoiDigits(value)
		case asciiEqualFold(name, "Transfer-Encoding"):
			if h.chunked || minor == '0' || !asciiEqualFold(value, "chunked") {
				return h, fmt.Errorf("%w: Transfer-Encoding %.20q", errAnswer, value)
			}
			h.chunked = true
		case asciiEqualFold(name, "Connection"):
			h.close = h.close && !asciiEqualFold(value, "keep-alive") || asciiEqualFold(value, "close")
		case asciiEqualFold(name, "Retry-After"):
			if len(value) > 0 && len(value) <= 9 && isDigits(value) {
				h.retryAfter = atoiDigits(value)
			}
		}
	}
	if h.chunked && h.length >= 0 {
		return h, fmt.Errorf("%w: both Content-Length and chunked", errAnswer)
	}
	return h, nil
}

// joinChunks reads a chunked body (no chunk extensions, no trailers) at
// the start of b and, once it is whole, moves the chunks' data together in
// place. size == 0 (and no error) means b holds no whole body yet.
func joinChunks(b []byte) (body []byte, size int, err error) {
	if _, size, err = walkChunks(b, false); err != nil || size == 0 {
		return nil, size, err
	}
	w, _, _ := walkChunks(b, true)
	return b[:w], size, nil
}

// walkChunks walks the chunks at the start of b, returning the size of
// their data and of the whole body (0 when b is cut short); with move, it
// copies the data to the start of b.
func walkChunks(b []byte, move bool) (w, size int, err error) {
	r := 0 // chunks read up to b[r:]
	for {
		eol := bytes.Index(b[r:], []byte("\r\n"))
		if eol < 0 {
			if len(b)-r > 8 {
				return 0, 0, fmt.Errorf("%w: chunk size line", errAnswer)
			}
			return 0, 0, nil
		}
		n, ok := parseHex(b[r : r+eol])
		if !ok {
			return 0, 0, fmt.Errorf("%w: chunk size %.10q", errAnswer, b[r:r+eol])
		}
		r += eol + 2
		if n == 0 {
			if len(b)-r < 2 {
				return 0, 0, nil
			}
			if b[r] != '\r' || b[r+1] != '\n' {
				return 0, 0, fmt.Errorf("%w: trailers after the last chunk", errAnswer)
			}
			return w, r + 2, nil
		}
		if w+n > maxAnswer {
			return 0, 0, fmt.Errorf("%w: chunked body over %d bytes", errAnswer, maxAnswer)
		}
		if len(b)-r < n+2 {
			return 0, 0, nil
		}
		if b[r+n] != '\r' || b[r+n+1] != '\n' {
			return 0, 0, fmt.Errorf("%w: chunk not ended by CRLF", errAnswer)
		}
		if move {
			copy(b[w:], b[r:r+n])
		}
		w += n
		r += n + 2
	}
}

// parseHex parses a chunk size: 1 to 6 hex digits.
func parseHex(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 6 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		d := hexDigit(c)
		if d < 0 {
			return 0, false
		}
		n = n<<4 | d
	}
	return n, true
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// atoiDigits is the value of at most 9 decimal digits.
func atoiDigits(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

// isToken says whether b is a header field name (RFC 9110 token).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7F || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

// headerText says whether b holds no control character but tab.
func headerText(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7F {
			return false
		}
	}
	return true
}

// asciiEqualFold compares b and s ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
