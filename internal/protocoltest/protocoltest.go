// Package protocoltest checks the wire protocol against its documentation
// in tests: it reads the byte-layout and field tables of docs/protocol.md,
// decodes bytes by such a table, and keeps golden frames (hex text in a
// testdata/ file) that a test compares with what the server sends.
//
// Golden files are rewritten from the code's output with the -update flag,
// which this package defines for the test binaries that import it:
//
//	go test ./games/arena ./games/tictactoe -run Golden -update
package protocoltest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/repotest"
	"github.com/multijuego/multijuego/match"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with what the code produces")

// DocPath is docs/protocol.md, relative to the module root.
const DocPath = "docs/protocol.md"

// Field is one row of a byte-layout table in docs/protocol.md:
//
//	| offset | size | type | field |
//
// Offset and Size are as written: a number, or an expression of a count
// ("12+n", "n") or "…" for the rest of the message. Name is the field's
// name, the first `code span` of the field column.
type Field struct {
	Offset, Size, Type, Name string
}

// FixedMatchID replaces the random match id of a frame kept as a golden
// file (see [StableFrame]): 32 characters, like a real one.
const FixedMatchID = "0123456789abcdef0123456789abcdef"

// Layout reads a layout table written in a test the way the document's
// reads: one field a line, "offset size type name", separated by spaces.
// It panics on a malformed line (the tables are the tests' own).
func Layout(table string) []Field {
	var out []Field
	for _, l := range strings.Split(table, "\n") {
		w := strings.Fields(l)
		switch len(w) {
		case 0:
		case 4:
			out = append(out, Field{Offset: w[0], Size: w[1], Type: w[2], Name: w[3]})
		default:
			panic(fmt.Sprintf("protocoltest: layout line %q is not offset size type name", l))
		}
	}
	return out
}

// FrameHeader is the match frame header as docs/protocol.md documents it;
// [StableFrame] and [FramePayload] read frames by it.
var FrameHeader = Layout(`
	0     1  uint8   kind
	1     2  uint16  op
	3     8  uint64  tick
	11    1  uint8   n
	12    n  ASCII   match_id
	12+n  …  bytes   payload
`)

// DocRows returns the cells of the first table after the heading whose
// text is heading (without the #s) in docs/protocol.md, header and
// separator rows left out.
func DocRows(t testing.TB, heading string) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repotest.Root(t), DocPath))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	i := 0
	for ; i < len(lines); i++ {
		if l := lines[i]; strings.HasPrefix(l, "#") && strings.TrimSpace(strings.TrimLeft(l, "#")) == heading {
			break
		}
	}
	if i == len(lines) {
		t.Fatalf("%s has no heading %q", DocPath, heading)
	}
	for i++; i < len(lines) && !strings.HasPrefix(lines[i], "|"); i++ {
		if strings.HasPrefix(lines[i], "#") {
			t.Fatalf("%s: no table under %q", DocPath, heading)
		}
	}
	var rows [][]string
	for n := 0; i < len(lines) && strings.HasPrefix(lines[i], "|"); i, n = i+1, n+1 {
		if n < 2 { // header and separator
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(strings.TrimSpace(lines[i]), "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}

// Name returns the first `code span` of a table cell, or "".
func Name(cell string) string {
	_, rest, ok := strings.Cut(cell, "`")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "`")
	return name
}

// DocLayout returns the byte-layout table under heading (see [Field]).
func DocLayout(t testing.TB, heading string) []Field {
	t.Helper()
	var out []Field
	for _, r := range DocRows(t, heading) {
		if len(r) != 4 {
			t.Fatalf("%s, %q: row %q has %d cells, want offset | size | type | field", DocPath, heading, r, len(r))
		}
		out = append(out, Field{Offset: r[0], Size: r[1], Type: r[2], Name: Name(r[3])})
	}
	return out
}

// CheckDocLayout fails the test unless the table under heading is want.
func CheckDocLayout(t testing.TB, heading string, want []Field) {
	t.Helper()
	got := DocLayout(t, heading)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s, %q:\n documents %v\n test has  %v", DocPath, heading, got, want)
	}
}

// Decode reads the fixed-size numeric fields of layout from b (little-
// endian): uintN as uint64, intN as int64, float32 as float32, by name.
// Fields of other types, or at offsets that are not numbers, are left out.
func Decode(t testing.TB, b []byte, layout []Field) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, f := range layout {
		off, err1 := strconv.Atoi(f.Offset)
		size, err2 := strconv.Atoi(f.Size)
		if err1 != nil || err2 != nil {
			continue
		}
		if off+size > len(b) {
			t.Fatalf("field %s (%s+%s) is past the end of %d bytes", f.Name, f.Offset, f.Size, len(b))
		}
		var u uint64
		switch size {
		case 1:
			u = uint64(b[off])
		case 2:
			u = uint64(binary.LittleEndian.Uint16(b[off:]))
		case 4:
			u = uint64(binary.LittleEndian.Uint32(b[off:]))
		case 8:
			u = binary.LittleEndian.Uint64(b[off:])
		default:
			t.Fatalf("field %s: size %d is not a number's", f.Name, size)
		}
		switch {
		case f.Type == "float32":
			out[f.Name] = math.Float32frombits(uint32(u))
		case strings.HasPrefix(f.Type, "uint"):
			out[f.Name] = u
		case strings.HasPrefix(f.Type, "int"):
			out[f.Name] = int64(u<<(64-8*size)) >> (64 - 8*size) // sign-extend
		}
	}
	return out
}

// StableFrame checks that frame is a match frame of matchID and op (read
// by [FrameHeader]) and returns a copy with the id replaced by
// [FixedMatchID], fit for a golden file.
func StableFrame(t testing.TB, frame []byte, matchID string, op match.OpCode) []byte {
	t.Helper()
	h := Decode(t, frame, FrameHeader)
	n := int(h["n"].(uint64))
	if h["kind"] != uint64(match.FrameKind) || h["op"] != uint64(op) || n != len(matchID) || len(frame) < 12+n || string(frame[12:12+n]) != matchID {
		t.Fatalf("not a frame of match %s with op %d: header %v", matchID, op, h)
	}
	if len(matchID) != len(FixedMatchID) {
		t.Fatalf("match id %q is not %d characters", matchID, len(FixedMatchID))
	}
	out := bytes.Clone(frame)
	copy(out[12:], FixedMatchID)
	return out
}

// FramePayload returns the payload of a match frame, read by
// [FrameHeader]: what follows the n-byte match id at offset 12.
func FramePayload(t testing.TB, frame []byte) []byte {
	t.Helper()
	n := int(Decode(t, frame, FrameHeader)["n"].(uint64))
	if len(frame) < 12+n {
		t.Fatalf("frame of %d bytes names a %d-byte match id", len(frame), n)
	}
	return frame[12+n:]
}

// JSONPaths lists the field paths of a value decoded from JSON, in the
// form the field tables of docs/protocol.md use: "a", "a.b", "a[].c" (the
// elements of an array are read from its first).
func JSONPaths(v any, path string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out = append(out, p)
			out = append(out, JSONPaths(v[k], p)...)
		}
	case []any:
		if len(v) > 0 {
			for _, p := range JSONPaths(v[0], "") {
				out = append(out, path+"[]."+p)
			}
		}
	}
	return out
}

// Golden compares got with the golden file path (hex text, see [FormatHex])
// and returns the golden bytes. With -update it first writes got there,
// under comment.
func Golden(t testing.TB, path, comment string, got []byte) []byte {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(FormatHex(comment, got)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	want, err := ParseHex(string(text))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s: the server's bytes differ from offset %d (len %d, golden %d)\nserver:\n%sgolden:\n%s(if the change is intended, update docs/protocol.md and run with -update)",
			path, i, len(got), len(want), hex.Dump(got), hex.Dump(want))
	}
	return want
}

// FormatHex writes b as hex text: the comment's lines prefixed with "# ",
// then 16 space-separated bytes per line.
func FormatHex(comment string, b []byte) string {
	var sb strings.Builder
	if comment = strings.TrimSpace(comment); comment != "" {
		for _, l := range strings.Split(comment, "\n") {
			sb.WriteString(strings.TrimSpace("# " + l))
			sb.WriteByte('\n')
		}
	}
	for i := 0; i < len(b); i += 16 {
		row := b[i:min(i+16, len(b))]
		for j, c := range row {
			if j > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(hex.EncodeToString([]byte{c}))
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// ParseHex reads hex text: pairs of hex digits separated by white space;
// from "#" to the end of a line is a comment.
func ParseHex(text string) ([]byte, error) {
	var digits strings.Builder
	for _, l := range strings.Split(text, "\n") {
		l, _, _ = strings.Cut(l, "#")
		digits.WriteString(strings.Join(strings.Fields(l), ""))
	}
	return hex.DecodeString(digits.String())
}

// CheckDocHex fails the test unless docs/protocol.md shows b in hex
// somewhere (white space and line breaks aside): the examples there are
// the golden frames.
func CheckDocHex(t testing.TB, what string, b []byte) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repotest.Root(t), DocPath))
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(doc)), "")
	if !strings.Contains(flat, hex.EncodeToString(b)) {
		t.Errorf("%s does not show %s as the server sends it:\n%s", DocPath, what, FormatHex("", b))
	}
}
