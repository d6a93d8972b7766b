package wsnet

import (
	"bytes"
	"crypto/tls"
	"errors"
	"testing"
)

// pair returns the two ends of a TLS 1.3 connection's record layer: the
// server's and the client's, with each one's rx the other's tx.
func pair(t testing.TB, id uint16) (server, client *recordConn) {
	t.Helper()
	s, ok := suiteOf(id)
	if !ok {
		t.Fatalf("suite %#x", id)
	}
	cs := bytes.Repeat([]byte{1}, s.hash().Size())
	ss := bytes.Repeat([]byte{2}, s.hash().Size())
	half := func(secret []byte) *halfConn {
		h, err := newHalf(s, secret, 3)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	return &recordConn{rx: half(cs), tx: half(ss)}, &recordConn{rx: half(ss), tx: half(cs)}
}

// readAll opens the records of b on r; control records go to handleControl.
func readAll(t *testing.T, r *recordConn, b []byte) []byte {
	t.Helper()
	var out []byte
	for len(b) > 0 {
		n, err := recordLen(b)
		if err != nil || n == 0 || n > len(b) {
			t.Fatalf("record length %d of %d: %v", n, len(b), err)
		}
		p, typ, err := r.rx.open(b[:n])
		if err != nil {
			t.Fatal(err)
		}
		if typ == recordAppData {
			out = append(out, p...)
		} else if err := r.handleControl(typ, p); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	return out
}

var suites = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}

// Both ways, every suite, payloads up to several records, parts sealed
// into one record, and a KeyUpdate asked by the client: the server's next
// records come after its own KeyUpdate, under the next secret, and both
// sides read on.
func TestRecordLayerRoundTripAndKeyUpdate(t *testing.T) {
	for _, id := range suites {
		srv, cli := pair(t, id)
		for _, n := range []int{0, 1, maxPlaintext - 1, maxPlaintext, maxPlaintext + 1, 70000} {
			p := bytes.Repeat([]byte{byte(n)}, n)
			rec, err := srv.sealTx(nil, p[:n/2], p[n/2:])
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, cli, rec); !bytes.Equal(got, p) {
				t.Fatalf("%#x: %d bytes back of %d", id, len(got), n)
			}
			rec, _ = cli.sealTx(nil, p)
			if got := readAll(t, srv, rec); !bytes.Equal(got, p) {
				t.Fatalf("%#x: client to server: %d of %d", id, len(got), n)
			}
		}
		// The client updates its keys and asks the server to do the same.
		ku := cli.tx.seal(nil, []byte{handshakeKeyUpd, 0, 0, 1, 1}, recordHandshake)
		if err := cli.tx.update(); err != nil {
			t.Fatal(err)
		}
		ku, _ = cli.sealTx(ku, []byte("after update"))
		if got := readAll(t, srv, ku); string(got) != "after update" {
			t.Fatalf("after the client's KeyUpdate: %q", got)
		}
		if !srv.updateTx.Load() {
			t.Fatal("KeyUpdate with update_requested did not ask for one back")
		}
		rec, _ := srv.sealTx(nil, []byte("server after update"))
		if got := readAll(t, cli, rec); string(got) != "server after update" || srv.updateTx.Load() {
			t.Fatalf("after the server's KeyUpdate: %q", got)
		}
	}
}

// What the record layer refuses: a flipped bit, a replayed record (wrong
// sequence), a plaintext record type, an oversized length, an alert.
func TestRecordLayerRefuses(t *testing.T) {
	srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
	rec, _ := cli.sealTx(nil, []byte("hello"))
	bad := bytes.Clone(rec)
	bad[len(bad)-1] ^= 1
	if _, _, err := srv.rx.open(bad); !errors.Is(err, errRecordMAC) {
		t.Fatalf("flipped bit: %v", err)
	}
	if _, _, err := srv.rx.open(bytes.Clone(rec)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.rx.open(bytes.Clone(rec)); !errors.Is(err, errRecordMAC) {
		t.Fatalf("replay: %v", err)
	}
	if _, _, err := srv.rx.open([]byte{recordHandshake, 3, 3, 0, 1, 0}); !errors.Is(err, errRecordType) {
		t.Fatalf("plaintext handshake record: %v", err)
	}
	if _, err := recordLen([]byte{recordAppData, 3, 3, 0xff, 0xff}); !errors.Is(err, errRecordOverflow) {
		t.Fatalf("oversized: %v", err)
	}
	if err := srv.handleControl(recordAlert, []byte{1, alertCloseNotify}); !errors.Is(err, errCloseNotify) {
		t.Fatalf("close_notify: %v", err)
	}
	if err := srv.handleControl(recordAlert, []byte{2, 40}); !errors.Is(err, errAlert) {
		t.Fatalf("fatal alert: %v", err)
	}
	if err := srv.handleControl(recordHandshake, []byte{4, 0, 0, 0}); !errors.Is(err, errRecordType) {
		t.Fatalf("NewSessionTicket from a client: %v", err)
	}
}

// FuzzRecordOpen: any bytes as a record are refused or opened, never a
// panic or a read past the record.
func FuzzRecordOpen(f *testing.F) {
	srv, cli := pair(f, tls.TLS_AES_128_GCM_SHA256)
	rec, _ := cli.sealTx(nil, []byte("seed"))
	f.Add(rec)
	f.Add([]byte{recordAppData, 3, 3, 0, 17, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := recordLen(b)
		if err != nil || n == 0 || n > len(b) {
			return
		}
		seq := srv.rx.seq
		p, typ, err := srv.rx.open(bytes.Clone(b[:n]))
		if err == nil {
			srv.rx.seq = seq // keep the seed openable
			if len(p) > maxPlaintext || typ == 0 {
				t.Fatalf("opened %d bytes, type %d", len(p), typ)
			}
		}
	})
}
