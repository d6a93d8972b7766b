package commonpw

import "testing"

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

// BenchmarkLoad measures the one-time decompression and sort (about 45 ms
// on the 2-core dev box) and the table it leaves (800,000 bytes).
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		load()
	}
	b.ReportMetric(float64(cap(hashes)*8), "table-bytes")
}
