package bots

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

// unmask turns a client frame into the server's view of it, to check
// appendFrame with parseFrame.
func unmask(t *testing.T, f []byte) []byte {
	t.Helper()
	if f[1]&0x80 == 0 {
		t.Fatal("client frame not masked")
	}
	hdr, l := 2, int(f[1]&0x7F)
	switch l {
	case 126:
		hdr, l = 4, int(binary.BigEndian.Uint16(f[2:]))
	case 127:
		hdr, l = 10, int(binary.BigEndian.Uint64(f[2:]))
	}
	key := f[hdr : hdr+4]
	out := append([]byte{f[0], 0}, f[2:hdr]...)
	out[1] = f[1] & 0x7F
	for i, c := range f[hdr+4:] {
		out = append(out, c^key[i&3])
	}
	if len(out)-hdr != l {
		t.Fatalf("length %d, header says %d", len(out)-hdr, l)
	}
	return out
}

func TestFrames(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{0xA5, 1, 2}, n/3+1)[:n]
		f := unmask(t, appendFrame(nil, opBinary, payload, 0xDEADBEEF))
		fin, op, got, size, err := parseFrame(append(f, 0x81)) // a byte of the next frame
		if err != nil || !fin || op != opBinary || !bytes.Equal(got, payload) || size != len(f) {
			t.Fatalf("n=%d: fin=%v op=%d len=%d size=%d/%d err=%v", n, fin, op, len(got), size, len(f), err)
		}
		for cut := range min(len(f), 12) {
			if _, _, _, size, err := parseFrame(f[:cut]); size != 0 || err != nil {
				t.Fatalf("n=%d: a frame cut at %d parsed: %d %v", n, cut, size, err)
			}
		}
	}
	if _, _, _, _, err := parseFrame([]byte{0x82, 0x81, 0, 0, 0, 0, 1}); err == nil {
		t.Error("a masked server frame was accepted")
	}
	if _, _, _, _, err := parseFrame([]byte{0x82, 127, 0xFF, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("an absurd length was accepted")
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add([]byte{0x82, 0x02, 1, 2})
	f.Add([]byte{0x81, 126, 0, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, payload, n, err := parseFrame(b)
		if err == nil && n > 0 && (n > len(b) || len(payload) > n) {
			t.Fatalf("size %d of %d bytes, payload %d", n, len(b), len(payload))
		}
	})
}

func TestHistogram(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		h.record(int64(i) * 100) // 0.1 .. 100 ms
	}
	l := h.latency()
	if math.Abs(l.P50-50) > 0.1 || math.Abs(l.P90-90) > 0.1 || math.Abs(l.P99-99) > 0.1 || l.Max != 100 || l.Count != 1000 {
		t.Fatalf("%+v", l)
	}
	o := newHistogram()
	o.record(10_000_000) // past the last bucket
	h.merge(o)
	if h.latency().Max != 10_000 {
		t.Fatalf("max %v", h.latency().Max)
	}
}

const metrics = `# HELP multijuego_match_tick_seconds Duration of one match tick.
# TYPE multijuego_match_tick_seconds histogram
multijuego_match_tick_seconds_bucket{mode="arena",le="0.001"} %d
multijuego_match_tick_seconds_bucket{mode="arena",le="0.005"} %d
multijuego_match_tick_seconds_bucket{mode="arena",le="+Inf"} %d
multijuego_match_tick_seconds_bucket{mode="tictactoe",le="0.001"} 7
multijuego_match_tick_seconds_bucket{mode="tictactoe",le="0.005"} 7
multijuego_match_tick_seconds_bucket{mode="tictactoe",le="+Inf"} 7
multijuego_match_tick_seconds_sum{mode="arena"} 1
`

func TestServerTicks(t *testing.T) {
	parse := func(a, b, c int) promHistogram {
		h, err := parseTickHistogram(strings.NewReader(sprintf(metrics, a, b, c)), "arena")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	before, after := parse(100, 100, 100), parse(1100, 1190, 1200)
	// 1000 ticks under 1 ms, 90 in 1..5 ms, 10 above 5 ms.
	st := tickDelta(before, after)
	if st.Ticks != 1100 || st.P50 != 0.55 || st.P90 != 0.99 || st.P99 != 4.96 { // linear inside a bucket
		t.Fatalf("%+v", st)
	}
	if _, err := parseTickHistogram(strings.NewReader("other 1\n"), "arena"); err == nil {
		t.Fatal("no histogram, no error")
	}
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
