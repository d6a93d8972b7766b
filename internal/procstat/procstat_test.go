package procstat

import "testing"

func TestCPUTimeGrows(t *testing.T) {
	a, err := CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := range 50_000_000 {
		x += i ^ (x >> 3)
	}
	b, err := CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	if b <= a {
		t.Fatalf("CPU time did not grow after a busy loop (x=%d): %v then %v", x, a, b)
	}
}
