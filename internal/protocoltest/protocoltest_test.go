package protocoltest_test

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/multijuego/multijuego/internal/protocoltest"
	"github.com/multijuego/multijuego/match"
)

// The frame header the helpers read by is the one docs/protocol.md shows.
func TestFrameHeaderIsDocumented(t *testing.T) {
	protocoltest.CheckDocLayout(t, "Match frame header", protocoltest.FrameHeader)
}

func TestDecode(t *testing.T) {
	layout := protocoltest.Layout(`
		0  1  int8     a
		1  2  int16    b
		3  4  uint32   c
		7  4  float32  d
		11 …  bytes    rest
	`)
	b := []byte{0xff, 0x00, 0x80, 0x78, 0x56, 0x34, 0x12}
	b = append(b, 0x00, 0x00, 0x96, 0xc3, 9, 9)
	got := protocoltest.Decode(t, b, layout)
	want := map[string]any{"a": int64(-1), "b": int64(math.MinInt16), "c": uint64(0x12345678), "d": float32(-300)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %v, want %v", got, want)
	}
}

func TestHexRoundTrip(t *testing.T) {
	b := bytes.Repeat([]byte{0x00, 0x7f, 0x80, 0xff, 0x12}, 7)
	text := protocoltest.FormatHex("a frame\nof two lines", b)
	back, err := protocoltest.ParseHex(text)
	if err != nil || !bytes.Equal(back, b) {
		t.Fatalf("ParseHex(FormatHex) = % x, %v\n%s", back, err, text)
	}
	if _, err := protocoltest.ParseHex("01 0"); err == nil {
		t.Error("odd hex digits accepted")
	}
}

func TestStableFrame(t *testing.T) {
	id := "fedcba9876543210fedcba9876543210"
	frame := append([]byte{match.FrameKind, 2, 0, 5, 0, 0, 0, 0, 0, 0, 0, 32}, id...)
	frame = append(frame, 'h', 'i')
	got := protocoltest.StableFrame(t, frame, id, 2)
	if !bytes.Equal(got[12:44], []byte(protocoltest.FixedMatchID)) || !bytes.Equal(frame[12:44], []byte(id)) {
		t.Errorf("StableFrame = %q (the frame %q must be left alone)", got, frame)
	}
	if p := protocoltest.FramePayload(t, got); string(p) != "hi" {
		t.Errorf("FramePayload = %q", p)
	}
}

func TestJSONPaths(t *testing.T) {
	v := map[string]any{"b": 1.0, "a": []any{map[string]any{"y": "", "x": map[string]any{"z": true}}}}
	got := protocoltest.JSONPaths(v, "")
	want := []string{"a", "a[].x", "a[].x.z", "a[].y", "b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSONPaths = %v, want %v", got, want)
	}
}
