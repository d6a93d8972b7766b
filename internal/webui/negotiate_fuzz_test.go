package webui

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// refAccept is a plain reference parser of Accept-Encoding, written for
// clarity with strings.Split; the handler's allocation-free parser must
// agree with it on every input.
func refAccept(lines []string) acceptPrefs {
	var p acceptPrefs
	p.reset()
	p.present = len(lines) > 0
	qre := regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)
	for _, line := range lines {
		for _, member := range strings.Split(line, ",") {
			parts := strings.Split(member, ";")
			name := asciiLower(strings.Trim(parts[0], " \t"))
			q, ok := int16(1000), true
			for _, param := range parts[1:] {
				param = strings.Trim(param, " \t")
				if len(param) < 2 || asciiLower(param[:2]) != "q=" {
					continue
				}
				if !qre.MatchString(param[2:]) {
					ok = false
					break
				}
				f, _ := strconv.ParseFloat(param[2:], 64)
				q = int16(f*1000 + 0.5)
			}
			if !ok || name == "" {
				continue
			}
			slot := map[string]*int16{"br": &p.br, "gzip": &p.gzip, "x-gzip": &p.gzip, "identity": &p.ident, "*": &p.star}[name]
			if slot != nil && *slot == unset {
				*slot = q
			}
		}
	}
	return p
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{
		"", "gzip, deflate, br, zstd", "br;q=0.8, gzip;q=0.9, identity;q=0", "*;q=0", "x-gzip", "GZIP;Q=1.000",
		"br;q=1.0001", "br;q=0.", "gzip ; q = 0.5", "identity;q=0\nbr", ";;;,,,", "br;q=0;q=1", "\tbr\t;\tq=0.5\t",
	} {
		f.Add(s)
	}
	variants := []*variant{{coding: brCoding}, {coding: gzipCoding}, {coding: identity}}
	f.Fuzz(func(t *testing.T, header string) {
		lines := strings.Split(header, "\n")
		var got acceptPrefs
		got.reset()
		for _, l := range lines {
			got.parse(l)
		}
		if want := refAccept(lines); got != want {
			t.Fatalf("parse(%q) = %+v, reference %+v", header, got, want)
		}
		for _, q := range []int16{got.br, got.gzip, got.ident, got.star} {
			if q != unset && (q < 0 || q > 1000) {
				t.Fatalf("parse(%q): weight %d out of range", header, q)
			}
		}
		best := got.choose(variants)
		for _, v := range variants {
			if best == nil && got.q(v.coding) > 0 {
				t.Fatalf("%q: nothing chosen although %s has weight %d", header, v.coding, got.q(v.coding))
			}
			if best != nil && got.q(v.coding) > got.q(best.coding) {
				t.Fatalf("%q: chose %s (%d) over %s (%d)", header, best.coding, got.q(best.coding), v.coding, got.q(v.coding))
			}
		}
		if best != nil && got.q(best.coding) == 0 {
			t.Fatalf("%q: chose %s which the client refuses", header, best.coding)
		}
	})
}

func TestQValue(t *testing.T) {
	for s, want := range map[string]int16{"0": 0, "1": 1000, "0.5": 500, "0.05": 50, "0.005": 5, "0.": 0, "1.": 1000, "1.000": 1000, "0.999": 999} {
		if got, ok := qvalue(s); !ok || got != want {
			t.Errorf("qvalue(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "2", "1.001", "0.1234", ".5", "0,5", "-0", "0.5 ", "1e0", "01"} {
		if _, ok := qvalue(s); ok {
			t.Errorf("qvalue(%q) accepted", s)
		}
	}
}
