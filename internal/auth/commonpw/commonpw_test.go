package commonpw

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// sortedListSHA256 is the sha256 of the source list (README.md) sorted
// bytewise, a password a line each ended by a newline: `LC_ALL=C sort`.
const sortedListSHA256 = "fced6183c1e677c34ec9f47b8ece99c70c72cc0f6bcf6d5e198076f70e346a87"

// The embedded file is the README's list, every password of it, sorted.
func TestEmbeddedIsTheSource(t *testing.T) {
	var words []string
	if err := unpack(bytes.NewReader(listGz), func(w string) { words = append(words, w) }); err != nil {
		t.Fatal(err)
	}
	if len(words) != 100_000 || !slices.IsSorted(words) || len(slices.Compact(slices.Clone(words))) != len(words) {
		t.Fatalf("%d passwords, sorted %v: want 100000 distinct, sorted", len(words), slices.IsSorted(words))
	}
	sum := sha256.Sum256([]byte(strings.Join(words, "\n") + "\n"))
	if got := hex.EncodeToString(sum[:]); got != sortedListSHA256 {
		t.Fatalf("the embedded list's sha256 is %s, want %s (README.md)", got, sortedListSHA256)
	}
}

func TestPackRoundTrip(t *testing.T) {
	in := "password\npassw0rd\n\npassword\n123456\n1234567890123456\n1234567890123457\nzz\nPassword\n"
	var packed bytes.Buffer
	if err := Pack(strings.NewReader(in), &packed); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := unpack(bytes.NewReader(packed.Bytes()), func(w string) { got = append(got, w) }); err != nil {
		t.Fatal(err)
	}
	want := []string{"123456", "1234567890123456", "1234567890123457", "Password", "passw0rd", "password", "zz"}
	if !slices.Equal(got, want) {
		t.Fatalf("round trip: got %q, want %q", got, want)
	}
	for _, bad := range []string{"x\n", "0a\n5b\n", "\n", "0a\n1\n"} {
		var buf bytes.Buffer
		packRaw(t, &buf, bad)
		if err := unpack(&buf, func(string) {}); err == nil {
			t.Errorf("unpack(%q) succeeded", bad)
		}
	}
}

// packRaw gzips s as it is, for malformed front coding.
func packRaw(t *testing.T, buf *bytes.Buffer, s string) {
	t.Helper()
	zw := gzip.NewWriter(buf)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestListSize(t *testing.T) {
	// The hardening issue asks for at least the 100,000 most common
	// passwords; the file is SecLists' top 100,000, all distinct.
	if n := Len(); n < 100_000 {
		t.Fatalf("list holds %d passwords, want at least 100000", n)
	}
}

func TestCommon(t *testing.T) {
	for _, p := range []string{
		"123456", "password", "qwerty", "iloveyou", "dragon", "letmein", "trustno1",
		"PASSWORD", "Password", "QwErTy", // case-insensitively
		"password1", "12345678", "football", "baseball1",
	} {
		if !Common(p) {
			t.Errorf("Common(%q) = false, want true", p)
		}
	}
	for _, p := range []string{
		"", "correct horse battery staple", "Xq7!vR2#pLm9", "multijuego-4f9c2a71", "ñandú-pájaro-123",
	} {
		if Common(p) {
			t.Errorf("Common(%q) = true, want false", p)
		}
	}
}

func TestMemory(t *testing.T) {
	Len()
	// 8 bytes a password: the slice is the whole cost after the first check.
	if got := cap(hashes) * 8; got > 1<<20 {
		t.Fatalf("hash table is %d bytes, want at most 1 MiB", got)
	}
}

// BenchmarkCommon measures one check (after the one-time load).
func BenchmarkCommon(b *testing.B) {
	Len()
	pw := []string{"Xq7!vR2#pLm9", "password1", "correct horse battery staple", "Dragon"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		Common(pw[i&3])
		i++
	}
}

// BenchmarkLoad measures the one-time decompression and sort and the
// table it leaves (800,000 bytes).
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		load()
	}
	b.ReportMetric(float64(cap(hashes)*8), "table-bytes")
}
