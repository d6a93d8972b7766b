// Package commonpw tells whether a password is one of the 100,000 most
// common passwords of public breach corpora (see README.md in this
// directory for the list's source and licence).
//
// The list ships inside the binary sorted, front-coded and gzip-compressed
// (154 KB; see Pack). The first check decompresses it once into a sorted
// slice of 64-bit keyed hashes (800 KB); every check after that is one
// hash and a binary search, well under a microsecond (BenchmarkCommon).
package commonpw

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"
	"sync"
)

//go:embed top100k.fc.gz
var listGz []byte

var (
	once   sync.Once
	seed   maphash.Seed
	hashes []uint64
)

func load() {
	seed = maphash.MakeSeed()
	hs := make([]uint64, 0, 100_000)
	err := unpack(bytes.NewReader(listGz), func(w string) {
		hs = append(hs, maphash.String(seed, w))
	})
	if err != nil {
		panic("commonpw: embedded list: " + err.Error()) // the embedded file is fixed at build time; a test reads it
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

// maxShared is the longest prefix a front-coded line reuses: one digit.
const maxShared = 9

// Pack writes the passwords of r (one a line; empty lines skipped) to w
// as the embedded list is made: sorted bytewise, duplicates dropped,
// front-coded (each line is a digit n, 0-9, then the password without
// the n leading bytes it shares with the one before) and compressed with
// gzip at its best level, with no name or time (the same input gives the
// same bytes). Sorting and front coding take the gzip-compressed list
// from 375 KB to 154 KB of binary.
func Pack(r io.Reader, w io.Writer) error {
	var words []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if s := sc.Text(); s != "" {
			words = append(words, s)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	slices.Sort(words)
	words = slices.Compact(words)
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(zw)
	prev := ""
	for _, s := range words {
		n := 0
		for n < maxShared && n < len(prev) && n < len(s) && prev[n] == s[n] {
			n++
		}
		bw.WriteByte(byte('0' + n))
		bw.WriteString(s[n:])
		bw.WriteByte('\n')
		prev = s
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return zw.Close()
}

// unpack reads what Pack wrote and calls add with each password, in
// order; a line that is not front-coded, or a password not after the one
// before, is an error.
func unpack(r io.Reader, add func(string)) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(zr)
	var buf []byte
	prev := ""
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(b) == 0 || b[0] < '0' || b[0] > '0'+maxShared || int(b[0]-'0') > len(buf) {
			return fmt.Errorf("line %d: not front-coded", line)
		}
		buf = append(buf[:b[0]-'0'], b[1:]...)
		w := string(buf)
		if w <= prev {
			return fmt.Errorf("line %d: not after the password before (sorted, distinct, not empty)", line)
		}
		add(w)
		prev = w
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return zr.Close()
}
