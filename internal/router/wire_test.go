package router

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/multijuego/multijuego/match"
)

// --- helpers ------------------------------------------------------------------

func wireInputs(ins []Input) []byte {
	var b []byte
	for _, in := range ins {
		b = appendInput(b, in.Presence, in.Op, in.Data)
	}
	return b
}

// wireNodeInputs is a node's input batch (each input names its match).
func wireNodeInputs(ins []Input) []byte {
	var b []byte
	for _, in := range ins {
		b = appendNodeInput(b, in.Match, in.Presence, in.Op, in.Data)
	}
	return b
}

// wireDecodeInputs returns the inputs decodeInputs handed over and its error.
func wireDecodeInputs(b []byte) ([]Input, error) {
	var got []Input
	err := decodeInputs(b, func(in Input) { got = append(got, in) })
	return got, err
}

func wireDecodeNodeInputs(b []byte) ([]Input, error) {
	var got []Input
	err := decodeNodeInputs(b, func(in Input) { got = append(got, in) })
	return got, err
}

func wireInputString(in Input) string {
	return fmt.Sprintf("{match %q, session %q, user %q, op %d, data %x}", in.Match, in.Presence.SessionID, in.Presence.UserID, in.Op, in.Data)
}

// wireNoMatch is ins without their match ids (what a match's batch carries).
func wireNoMatch(ins []Input) []Input {
	out := slices.Clone(ins)
	for i := range out {
		out[i].Match = ""
	}
	return out
}

// wireSameInputs compares what the wire carries (not Username, nor nil
// against empty Data).
func wireSameInputs(t *testing.T, what string, got, want []Input) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d inputs, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Match != w.Match || g.Presence.SessionID != w.Presence.SessionID || g.Presence.UserID != w.Presence.UserID ||
			g.Op != w.Op || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("%s: input %d: got %s, want %s", what, i, wireInputString(g), wireInputString(w))
		}
	}
}

func wireOuts(outs []Out) []byte {
	var b []byte
	for _, o := range outs {
		switch o.Kind {
		case kindFrame:
			b = appendFrame(b, o.Frame, o.Sessions)
		case kindClose:
			b = appendClose(b, o.Match, o.Presence, match.Reason(o.Reason))
		case kindInputFail:
			b = appendInputFail(b, o.Presence.SessionID, o.Op, o.Reason)
		case kindHost:
			b = appendHost(b, o.Match, o.Reason)
		default:
			panic(fmt.Sprintf("wireOuts: kind %d", o.Kind))
		}
	}
	return b
}

// wireDecodeOut returns copies of the entries decodeOut handed over (the
// *Out it passes is reused from one entry to the next) and its error.
func wireDecodeOut(b []byte) ([]Out, error) {
	var got []Out
	err := decodeOut(b, func(o *Out) {
		c := *o
		c.Sessions = slices.Clone(o.Sessions)
		got = append(got, c)
	})
	return got, err
}

func wireOutString(o Out) string {
	switch o.Kind {
	case kindFrame:
		return fmt.Sprintf("{frame %d bytes %.16x, sessions %q}", len(o.Frame), o.Frame, o.Sessions)
	case kindClose:
		return fmt.Sprintf("{close match %q, session %q, user %q, reason %q}", o.Match, o.Presence.SessionID, o.Presence.UserID, o.Reason)
	case kindInputFail:
		return fmt.Sprintf("{input fail session %q, op %d, name %q}", o.Presence.SessionID, o.Op, o.Reason)
	case kindHost:
		return fmt.Sprintf("{host match %q, node %q}", o.Match, o.Reason)
	}
	return fmt.Sprintf("{kind %d}", o.Kind)
}

func wireSameOut(a, b Out) bool {
	return a.Kind == b.Kind && bytes.Equal(a.Frame, b.Frame) && slices.Equal(a.Sessions, b.Sessions) &&
		a.Match == b.Match && a.Presence.SessionID == b.Presence.SessionID && a.Presence.UserID == b.Presence.UserID &&
		a.Reason == b.Reason && a.Op == b.Op
}

func wireSameOuts(t *testing.T, what string, got, want []Out) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !wireSameOut(got[i], want[i]) {
			t.Fatalf("%s: entry %d: got %s, want %s", what, i, wireOutString(got[i]), wireOutString(want[i]))
		}
	}
}

// wireWithin reports whether sub lies inside b's memory.
func wireWithin(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return p >= start && p+uintptr(len(sub)) <= start+uintptr(len(b))
}

func wirePresence(session, user string) match.Presence {
	return match.Presence{SessionID: session, UserID: user}
}

func wireBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// wireEnds are the offsets at which each entry of a batch built by append
// ends.
func wireEnds[E any](entries []E, appendOne func([]byte, E) []byte) []int {
	var b []byte
	var ends []int
	for _, e := range entries {
		b = appendOne(b, e)
		ends = append(ends, len(b))
	}
	return ends
}

// --- strings ------------------------------------------------------------------

func TestAppendStr(t *testing.T) {
	long := strings.Repeat("x", 254) + "yz" // 256 bytes
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"short", "gw-1/abc", "gw-1/abc"},
		{"max", strings.Repeat("m", maxStr), strings.Repeat("m", maxStr)},
		{"one over", long, long[:maxStr]},
		{"far over", strings.Repeat("q", 1000), strings.Repeat("q", maxStr)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := appendStr([]byte{0xAA}, tc.in)
			want := append([]byte{0xAA, byte(len(tc.want))}, tc.want...)
			if !bytes.Equal(b, want) {
				t.Fatalf("appendStr(%d bytes): got %d bytes (length byte %d), want %d bytes (length byte %d)",
					len(tc.in), len(b), b[1], len(want), want[1])
			}
			r := reader{b: b[1:]}
			if got := r.str(); got != tc.want || r.err != nil || len(r.b) != 0 {
				t.Fatalf("str: got %q (%d bytes), err %v, %d left; want %d bytes, nil, 0 left", got, len(got), r.err, len(r.b), len(tc.want))
			}
		})
	}
}

// --- inputs -------------------------------------------------------------------

func TestInputBatchRoundTrip(t *testing.T) {
	many := make([]Input, 500)
	for i := range many {
		many[i] = Input{Match: fmt.Sprintf("match-%d", i%5), Presence: wirePresence(fmt.Sprintf("gw-%d/s%d", i%3, i), fmt.Sprintf("u%d", i)),
			Op: match.OpCode(i), Data: wireBytes(i%40, byte(i))}
	}
	tests := []struct {
		name string
		in   []Input
	}{
		{"no inputs", nil},
		{"empty everything", []Input{{}}},
		{"empty data", []Input{{Presence: wirePresence("gw/1", "u1"), Op: 3, Data: []byte{}}}},
		{"nil data", []Input{{Presence: wirePresence("gw/1", "u1"), Op: 3}}},
		{"one byte", []Input{{Presence: wirePresence("gw/1", "u1"), Op: 1, Data: []byte{0}}}},
		{"max strings", []Input{{Match: strings.Repeat("m", maxStr), Presence: wirePresence(strings.Repeat("s", maxStr), strings.Repeat("u", maxStr)), Op: 2, Data: []byte("x")}}},
		{"max op", []Input{{Presence: wirePresence("gw/1", "u1"), Op: 0xFFFF, Data: []byte("x")}}},
		{"max data", []Input{{Match: "m1", Presence: wirePresence("gw/1", "u1"), Op: 7, Data: wireBytes(0xFFFF, 1)},
			{Match: "m2", Presence: wirePresence("gw/2", "u2"), Op: 8, Data: []byte("after")}}},
		{"binary ids", []Input{{Presence: wirePresence("\x00\xff/\n", "\x01"), Op: 9, Data: []byte{0, 0, 0}}}},
		{"many", many},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := wireInputs(tc.in)
			got, err := wireDecodeInputs(b)
			if err != nil {
				t.Fatalf("decodeInputs: got %v, want nil", err)
			}
			wireSameInputs(t, "decodeInputs", got, wireNoMatch(tc.in))
			if len(tc.in) == 0 && len(b) != 0 {
				t.Fatalf("empty batch: got %d bytes, want 0", len(b))
			}
			got, err = wireDecodeNodeInputs(wireNodeInputs(tc.in))
			if err != nil {
				t.Fatalf("decodeNodeInputs: got %v, want nil", err)
			}
			wireSameInputs(t, "decodeNodeInputs", got, tc.in)
		})
	}
}

func TestInputBatchTruncatesLongIDs(t *testing.T) {
	session, user := "gw/"+strings.Repeat("s", 300), strings.Repeat("u", 256)
	b := appendInput(nil, wirePresence(session, user), 4, []byte("data"))
	b = appendInput(b, wirePresence("gw/2", "u2"), 5, []byte("next"))
	got, err := wireDecodeInputs(b)
	if err != nil {
		t.Fatalf("decodeInputs: got %v, want nil", err)
	}
	wireSameInputs(t, "decodeInputs", got, []Input{
		{Presence: wirePresence(session[:maxStr], user[:maxStr]), Op: 4, Data: []byte("data")},
		{Presence: wirePresence("gw/2", "u2"), Op: 5, Data: []byte("next")},
	})
}

// TestInputBatchTruncated cuts a batch at every offset: the inputs wholly
// before the cut are delivered, and a cut inside an input (in any of its
// fields) is errWire.
func TestInputBatchTruncated(t *testing.T) {
	ins := []Input{
		{Presence: wirePresence("gw/a", "ua"), Op: 1, Data: []byte("first")},
		{Presence: wirePresence("gw/bb", "ubb"), Op: 0x0102, Data: []byte{}},
		{Presence: wirePresence("gw/ccc", "uc"), Op: 3, Data: []byte("third input")},
	}
	withMatch := slices.Clone(ins)
	withMatch[0].Match, withMatch[2].Match = "m-1", "match-three"
	for _, kind := range []struct {
		name   string
		one    func([]byte, Input) []byte
		decode func([]byte) ([]Input, error)
		want   []Input
	}{
		{"match batch", func(b []byte, in Input) []byte { return appendInput(b, in.Presence, in.Op, in.Data) }, wireDecodeInputs, ins},
		{"node batch", func(b []byte, in Input) []byte { return appendNodeInput(b, in.Match, in.Presence, in.Op, in.Data) },
			wireDecodeNodeInputs, withMatch},
	} {
		var b []byte
		for _, in := range kind.want {
			b = kind.one(b, in)
		}
		ends := wireEnds(kind.want, kind.one)
		for cut := 0; cut <= len(b); cut++ {
			whole := 0
			for whole < len(ends) && ends[whole] <= cut {
				whole++
			}
			var wantErr error
			if cut != 0 && !slices.Contains(ends, cut) {
				wantErr = errWire
			}
			got, err := kind.decode(b[:cut])
			if err != wantErr {
				t.Fatalf("%s cut at %d of %d: got error %v, want %v", kind.name, cut, len(b), err, wantErr)
			}
			wireSameInputs(t, fmt.Sprintf("%s cut at %d", kind.name, cut), got, kind.want[:whole])
		}
	}
}

func TestInputBatchCorrupt(t *testing.T) {
	good := []Input{
		{Presence: wirePresence("gw/a", "ua"), Op: 1, Data: []byte("one")},
		{Presence: wirePresence("gw/b", "ub"), Op: 2, Data: []byte("two")},
	}
	prefix := wireInputs(good)
	u16 := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	tests := []struct {
		name string
		tail []byte
	}{
		{"session longer than the batch", []byte{10, 'g', 'w'}},
		{"user longer than the batch", append([]byte{2, 'g', 'w'}, 200, 'u')},
		{"no op", []byte{0, 0}},
		{"half an op", []byte{0, 0, 1}},
		{"no data length", append([]byte{0, 0}, u16(1)...)},
		{"half a data length", append(append([]byte{0, 0}, u16(1)...), 5)},
		{"data longer than the batch", append(append(append([]byte{0, 0}, u16(1)...), u16(10)...), "short"...)},
		{"data length 0xFFFF and nothing", append(append([]byte{0, 0}, u16(1)...), u16(0xFFFF)...)},
		{"a lone zero byte", []byte{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append(slices.Clone(prefix), tc.tail...)
			got, err := wireDecodeInputs(b)
			if err != errWire {
				t.Fatalf("decodeInputs: got error %v, want errWire", err)
			}
			wireSameInputs(t, "inputs before the corrupt one", got, good)
		})
	}
}

func TestNodeInputBatchCorrupt(t *testing.T) {
	good := []Input{{Match: "m1", Presence: wirePresence("gw/a", "ua"), Op: 1, Data: []byte("one")}}
	b := append(wireNodeInputs(good), 40, 'm')
	got, err := wireDecodeNodeInputs(b)
	if err != errWire {
		t.Fatalf("decodeNodeInputs, match id longer than the batch: got error %v, want errWire", err)
	}
	wireSameInputs(t, "inputs before the corrupt one", got, good)
}

// TestInputDataAliasesBatch: Data is the batch's own memory, capped at its
// length, so appending to it cannot overwrite the next input.
func TestInputDataAliasesBatch(t *testing.T) {
	b := appendInput(nil, wirePresence("gw/a", "ua"), 1, []byte("abc"))
	b = appendInput(b, wirePresence("gw/b", "ub"), 2, []byte("xyz"))
	orig := slices.Clone(b)
	var got []Input
	if err := decodeInputs(b, func(in Input) { got = append(got, in) }); err != nil {
		t.Fatalf("decodeInputs: got %v, want nil", err)
	}
	for i, in := range got {
		if !wireWithin(in.Data, b) {
			t.Fatalf("input %d: got Data outside the batch, want an alias of it", i)
		}
		if cap(in.Data) != len(in.Data) {
			t.Fatalf("input %d: got cap(Data) %d, want len %d", i, cap(in.Data), len(in.Data))
		}
	}
	_ = append(got[0].Data, "!!!!!!!!"...)
	if !bytes.Equal(b, orig) {
		t.Fatalf("appending to the first input's Data changed the batch: got %x, want %x", b, orig)
	}
}

// --- output -------------------------------------------------------------------

func TestOutBatchRoundTrip(t *testing.T) {
	manySessions := make([]string, 1000)
	for i := range manySessions {
		manySessions[i] = fmt.Sprintf("gw-1/s%d", i)
	}
	var mixed []Out
	for i := range 300 {
		switch i % 4 {
		case 0:
			mixed = append(mixed, Out{Kind: kindFrame, Frame: wireBytes(i, byte(i)), Sessions: manySessions[:i%7]})
		case 1:
			mixed = append(mixed, Out{Kind: kindClose, Match: fmt.Sprintf("m%d", i), Presence: wirePresence(fmt.Sprintf("gw/s%d", i), "u"), Reason: "left"})
		case 2:
			mixed = append(mixed, Out{Kind: kindInputFail, Presence: wirePresence(fmt.Sprintf("gw/s%d", i), ""), Op: match.OpCode(i), Reason: "rate_limited"})
		case 3:
			mixed = append(mixed, Out{Kind: kindHost, Match: fmt.Sprintf("m%d", i), Reason: fmt.Sprintf("node-%d", i%2)})
		}
	}
	max := strings.Repeat("z", maxStr)
	tests := []struct {
		name string
		out  []Out
	}{
		{"no entries", nil},
		{"frame without sessions", []Out{{Kind: kindFrame, Frame: []byte("frame")}}},
		{"empty frame", []Out{{Kind: kindFrame, Frame: []byte{}, Sessions: []string{"gw/1"}}}},
		{"frame, two sessions", []Out{{Kind: kindFrame, Frame: []byte("frame"), Sessions: []string{"gw/1", "gw/2"}}}},
		{"frame, empty session id", []Out{{Kind: kindFrame, Frame: []byte("f"), Sessions: []string{""}}}},
		{"frame, many sessions", []Out{{Kind: kindFrame, Frame: []byte("frame"), Sessions: manySessions}}},
		{"frame, max session ids", []Out{{Kind: kindFrame, Frame: []byte("f"), Sessions: []string{max, max}}}},
		{"frame of maxFrame bytes", []Out{{Kind: kindFrame, Frame: wireBytes(maxFrame, 3), Sessions: []string{"gw/1"}},
			{Kind: kindClose, Match: "m", Presence: wirePresence("gw/1", "u"), Reason: "ended"}}},
		{"close", []Out{{Kind: kindClose, Match: "m1", Presence: wirePresence("gw/1", "u1"), Reason: string(match.Reason("kicked"))}}},
		{"close, empty strings", []Out{{Kind: kindClose}}},
		{"close, max strings", []Out{{Kind: kindClose, Match: max, Presence: wirePresence(max, max), Reason: max}}},
		{"input fail", []Out{{Kind: kindInputFail, Presence: wirePresence("gw/1", ""), Op: 0xFFFF, Reason: "queue_full"}}},
		{"input fail, max strings", []Out{{Kind: kindInputFail, Presence: wirePresence(max, ""), Op: 1, Reason: max}}},
		{"host", []Out{{Kind: kindHost, Match: "m1", Reason: "node-2"}}},
		{"host forgotten", []Out{{Kind: kindHost, Match: "m1", Reason: ""}}},
		{"host, max strings", []Out{{Kind: kindHost, Match: max, Reason: max}}},
		{"mixed, many", mixed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := wireOuts(tc.out)
			got, err := wireDecodeOut(b)
			if err != nil {
				t.Fatalf("decodeOut: got %v, want nil", err)
			}
			wireSameOuts(t, "decodeOut", got, tc.out)
		})
	}
}

func TestOutBatchTruncatesLongStrings(t *testing.T) {
	long := func(c string) string { return strings.Repeat(c, 300) }
	b := appendClose(nil, long("m"), wirePresence(long("s"), long("u")), match.Reason(long("r")))
	b = appendInputFail(b, long("f"), 6, long("n"))
	b = appendFrame(b, []byte("frame"), []string{long("a"), "gw/b"})
	got, err := wireDecodeOut(b)
	if err != nil {
		t.Fatalf("decodeOut: got %v, want nil", err)
	}
	cut := func(s string) string { return s[:maxStr] }
	wireSameOuts(t, "decodeOut", got, []Out{
		{Kind: kindClose, Match: cut(long("m")), Presence: wirePresence(cut(long("s")), cut(long("u"))), Reason: cut(long("r"))},
		{Kind: kindInputFail, Presence: wirePresence(cut(long("f")), ""), Op: 6, Reason: cut(long("n"))},
		{Kind: kindFrame, Frame: []byte("frame"), Sessions: []string{cut(long("a")), "gw/b"}},
	})
}

// TestOutBatchTruncated cuts a batch of every kind of entry at every
// offset: the entries wholly before the cut are delivered, and a cut inside
// one is errWire.
func TestOutBatchTruncated(t *testing.T) {
	outs := []Out{
		{Kind: kindFrame, Frame: []byte("frame one"), Sessions: []string{"gw/1", "gw/22"}},
		{Kind: kindClose, Match: "m-1", Presence: wirePresence("gw/1", "u1"), Reason: "left"},
		{Kind: kindInputFail, Presence: wirePresence("gw/22", ""), Op: 0x0201, Reason: "full"},
		{Kind: kindFrame, Frame: []byte{}, Sessions: nil},
		{Kind: kindHost, Match: "m-2", Reason: "node-b"},
		{Kind: kindFrame, Frame: []byte("f3"), Sessions: []string{"gw/3"}},
	}
	b := wireOuts(outs)
	ends := wireEnds(outs, func(b []byte, o Out) []byte { return append(b, wireOuts([]Out{o})...) })
	for cut := 0; cut <= len(b); cut++ {
		whole := 0
		for whole < len(ends) && ends[whole] <= cut {
			whole++
		}
		var wantErr error
		if cut != 0 && !slices.Contains(ends, cut) {
			wantErr = errWire
		}
		got, err := wireDecodeOut(b[:cut])
		if err != wantErr {
			t.Fatalf("cut at %d of %d: got error %v, want %v", cut, len(b), err, wantErr)
		}
		wireSameOuts(t, fmt.Sprintf("cut at %d", cut), got, outs[:whole])
	}
}

func TestOutBatchCorrupt(t *testing.T) {
	good := []Out{
		{Kind: kindFrame, Frame: []byte("frame"), Sessions: []string{"gw/1"}},
		{Kind: kindClose, Match: "m", Presence: wirePresence("gw/1", "u"), Reason: "ended"},
	}
	prefix := wireOuts(good)
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	frameHeader := func(n uint32) []byte { return append([]byte{kindFrame}, u32(n)...) }
	tests := []struct {
		name string
		tail []byte
	}{
		{"kind 0", []byte{0}},
		{"kind 5", []byte{5, 0, 0, 0, 0, 0, 0}},
		{"kind 0xFF", []byte{0xFF}},
		{"frame over maxFrame, bytes present", appendFrame(nil, make([]byte, maxFrame+1), []string{"gw/1"})},
		{"frame length 0xFFFFFFFF", append(frameHeader(0xFFFFFFFF), "abc"...)},
		{"frame longer than the batch", append(frameHeader(100), "abc"...)},
		{"frame without session count", append(frameHeader(1), 'x')},
		{"more sessions than the batch holds", append(append(frameHeader(1), 'x'), 3, 0, 1, 'a')},
		{"session longer than the batch", append(append(frameHeader(1), 'x'), 1, 0, 9, 'a')},
		{"close without reason", append([]byte{kindClose}, 1, 'm', 1, 's', 1, 'u')},
		{"close, match longer than the batch", []byte{kindClose, 50, 'm'}},
		{"input fail without op", append([]byte{kindInputFail}, 1, 's', 1)},
		{"input fail, name longer than the batch", append([]byte{kindInputFail}, 1, 's', 1, 0, 4, 'n')},
		{"host without node", []byte{kindHost, 1, 'm'}},
		{"host, node longer than the batch", []byte{kindHost, 1, 'm', 9, 'n'}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append(slices.Clone(prefix), tc.tail...)
			got, err := wireDecodeOut(b)
			if err != errWire {
				t.Fatalf("decodeOut: got error %v, want errWire", err)
			}
			wireSameOuts(t, "entries before the corrupt one", got, good)
		})
	}
}

// TestOutFrameAliasesBatch: Frame is the batch's own memory, capped at its
// length.
func TestOutFrameAliasesBatch(t *testing.T) {
	b := appendFrame(nil, []byte("abc"), []string{"gw/1"})
	b = appendFrame(b, []byte("xyz"), nil)
	n := 0
	err := decodeOut(b, func(o *Out) {
		n++
		if !wireWithin(o.Frame, b) {
			t.Errorf("entry %d: got Frame outside the batch, want an alias of it", n)
		}
		if cap(o.Frame) != len(o.Frame) {
			t.Errorf("entry %d: got cap(Frame) %d, want len %d", n, cap(o.Frame), len(o.Frame))
		}
	})
	if err != nil || n != 2 {
		t.Fatalf("decodeOut: got %d entries, %v; want 2, nil", n, err)
	}
}

// --- fuzzing ------------------------------------------------------------------

func FuzzDecodeInputs(f *testing.F) {
	f.Add([]byte{})
	f.Add(wireInputs([]Input{{}}))
	f.Add(wireInputs([]Input{{Presence: wirePresence("gw/1", "u1"), Op: 1, Data: []byte("data")}}))
	f.Add(wireInputs([]Input{
		{Presence: wirePresence("gw-a/s1", "user-1"), Op: 2, Data: []byte{0, 1, 2}},
		{Presence: wirePresence("gw-b/s2", "user-2"), Op: 0xFFFF},
		{Presence: wirePresence(strings.Repeat("s", maxStr), strings.Repeat("u", maxStr)), Op: 3, Data: wireBytes(300, 9)},
	}))
	f.Add(append(wireInputs([]Input{{Presence: wirePresence("gw/1", "u1"), Op: 1, Data: []byte("x")}}), 5, 'a'))
	f.Add(wireNodeInputs([]Input{{Match: "m1", Presence: wirePresence("gw/1", "u1"), Op: 1, Data: []byte("data")},
		{Match: "", Presence: wirePresence("gw/2", "u2"), Op: 2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		wireFuzzInputs(t, b, "decodeInputs", wireDecodeInputs, wireInputs)
		wireFuzzInputs(t, b, "decodeNodeInputs", wireDecodeNodeInputs, wireNodeInputs)
	})
}

// wireFuzzInputs checks one input decoder on b: errWire or nil, no change
// to b, Data capped aliases of b, nothing held beyond b's size, and the
// delivered inputs re-encode to the part of b they came from (the
// encoding is canonical), which decodes to them again.
func wireFuzzInputs(t *testing.T, b []byte, name string, decode func([]byte) ([]Input, error), encode func([]Input) []byte) {
	t.Helper()
	input := slices.Clone(b)
	got, err := decode(b)
	if err != nil && !errors.Is(err, errWire) {
		t.Fatalf("%s: got error %v, want nil or errWire", name, err)
	}
	if !bytes.Equal(b, input) {
		t.Fatalf("%s changed its input", name)
	}
	retained := 0
	for i, in := range got {
		if !wireWithin(in.Data, b) || cap(in.Data) != len(in.Data) {
			t.Fatalf("%s: input %d: got Data (len %d, cap %d) not a capped alias of the batch, want one", name, i, len(in.Data), cap(in.Data))
		}
		retained += len(in.Match) + len(in.Presence.SessionID) + len(in.Presence.UserID) + len(in.Data)
	}
	if retained > len(b) {
		t.Fatalf("%s: decoded inputs hold %d bytes, want at most the batch's %d", name, retained, len(b))
	}
	re := encode(got)
	if !bytes.HasPrefix(b, re) {
		t.Fatalf("%s: re-encoded inputs: got %x, want a prefix of the batch %x", name, re, b)
	}
	if err == nil && len(re) != len(b) {
		t.Fatalf("%s: re-encoded a whole batch: got %d bytes, want %d", name, len(re), len(b))
	}
	again, err := decode(re)
	if err != nil {
		t.Fatalf("%s of the re-encoded inputs: got %v, want nil", name, err)
	}
	wireSameInputs(t, name+" round trip", again, got)
}

func FuzzDecodeOut(f *testing.F) {
	f.Add([]byte{})
	f.Add(wireOuts([]Out{{Kind: kindFrame, Frame: []byte("frame"), Sessions: []string{"gw/1", "gw/2"}}}))
	f.Add(wireOuts([]Out{
		{Kind: kindFrame, Frame: []byte{1, 2, 3}, Sessions: nil},
		{Kind: kindClose, Match: "m1", Presence: wirePresence("gw/1", "u1"), Reason: "left"},
		{Kind: kindInputFail, Presence: wirePresence("gw/2", ""), Op: 7, Reason: "rate_limited"},
		{Kind: kindHost, Match: "m1", Reason: "node-1"},
	}))
	f.Add(wireOuts([]Out{{Kind: kindClose, Match: strings.Repeat("m", maxStr), Presence: wirePresence(strings.Repeat("s", maxStr), "u"), Reason: "ended"}}))
	f.Add([]byte{kindFrame, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{kindFrame, 0, 0, 0, 0, 0xFF, 0xFF, 0})
	f.Add([]byte{5})
	f.Fuzz(func(t *testing.T, b []byte) {
		input := slices.Clone(b)
		got, err := wireDecodeOut(b)
		if err != nil && !errors.Is(err, errWire) {
			t.Fatalf("decodeOut: got error %v, want nil or errWire", err)
		}
		if !bytes.Equal(b, input) {
			t.Fatalf("decodeOut changed its input")
		}
		retained := 0
		for i, o := range got {
			if o.Kind != kindFrame && o.Kind != kindClose && o.Kind != kindInputFail && o.Kind != kindHost {
				t.Fatalf("entry %d: got kind %d, want a known kind", i, o.Kind)
			}
			if !wireWithin(o.Frame, b) || cap(o.Frame) != len(o.Frame) {
				t.Fatalf("entry %d: got Frame (len %d, cap %d) not a capped alias of the batch, want one", i, len(o.Frame), cap(o.Frame))
			}
			if len(o.Frame) > maxFrame {
				t.Fatalf("entry %d: got a %d-byte frame, want at most maxFrame %d", i, len(o.Frame), maxFrame)
			}
			retained += 1 + len(o.Frame) + len(o.Match) + len(o.Presence.SessionID) + len(o.Presence.UserID) + len(o.Reason)
			for _, s := range o.Sessions {
				retained += 1 + len(s)
			}
		}
		if retained > len(b) {
			t.Fatalf("decoded entries hold %d bytes, want at most the batch's %d", retained, len(b))
		}
		re := wireOuts(got)
		if !bytes.HasPrefix(b, re) {
			t.Fatalf("re-encoded entries: got %x, want a prefix of the batch %x", re, b)
		}
		if err == nil && len(re) != len(b) {
			t.Fatalf("re-encoded a whole batch: got %d bytes, want %d", len(re), len(b))
		}
		again, err := wireDecodeOut(re)
		if err != nil {
			t.Fatalf("decoding the re-encoded entries: got %v, want nil", err)
		}
		wireSameOuts(t, "round trip", again, got)
	})
}
