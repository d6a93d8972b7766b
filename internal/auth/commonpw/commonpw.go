// Package commonpw tells whether a password is one of the 100,000 most
// common passwords of public breach corpora (see README.md in this
// directory for the list's source and licence).
//
// The list ships gzip-compressed inside the binary (375 KB). The first check
// decompresses it once into a sorted slice of 64-bit keyed hashes (800 KB);
// every check after that is one hash and a binary search, well under a
// microsecond (BenchmarkCommon).
package commonpw

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
)

//go:embed top100k.txt.gz
var listGz []byte

var (
	once   sync.Once
	seed   maphash.Seed
	hashes []uint64
)

func load() {
	seed = maphash.MakeSeed()
	zr, err := gzip.NewReader(bytes.NewReader(listGz))
	if err != nil {
		panic("commonpw: embedded list: " + err.Error()) // the embedded file is fixed at build time; a test reads it
	}
	hs := make([]uint64, 0, 100_000)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := sc.Text(); w != "" {
			hs = append(hs, maphash.String(seed, w))
		}
	}
	if err := sc.Err(); err != nil {
		panic("commonpw: embedded list: " + err.Error())
	}
	slices.Sort(hs)
	hashes = slices.Compact(hs)
}

// Len returns how many distinct passwords the list holds (it loads the list).
func Len() int {
	once.Do(load)
	return len(hashes)
}

// Common reports whether p, or p in lower case, is on the list. A false
// positive needs a 64-bit hash collision with one of 100,000 entries (odds
// about 1 in 10^14 per check).
func Common(p string) bool {
	once.Do(load)
	if has(p) {
		return true
	}
	if l := strings.ToLower(p); l != p {
		return has(l)
	}
	return false
}

func has(p string) bool {
	_, found := slices.BinarySearch(hashes, maphash.String(seed, p))
	return found
}
