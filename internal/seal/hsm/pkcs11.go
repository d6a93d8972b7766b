//go:build cgo

package hsm

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/multijuego/multijuego/internal/seal"
)

// Provider is the seal.Provider on a PKCS#11 token. It is safe for
// concurrent use: each operation takes one of a bounded pool of sessions
// (a PKCS#11 session runs one operation at a time).
type Provider struct {
	mod      *module
	opts     Options
	log      *slog.Logger
	sessions chan *session

	// reopening is held (a token in it) while the sessions are reopened
	// or one of them is replaced; it guards slot. gen counts the reopens
	// that replaced the sessions, epoch every reopen, reopens the ones
	// that succeeded (reopen.go).
	reopening chan struct{}
	slot      uint
	gen       atomic.Uint64
	epoch     atomic.Uint64
	reopens   atomic.Uint64

	mu      sync.Mutex
	keys    map[uint32][]pkcs11.ObjectHandle
	current uint32
	listed  time.Time
}

// session is one of the pool's sessions, with the generation of sessions
// it was opened in: one of an older generation is replaced when taken.
type session struct {
	h   pkcs11.SessionHandle
	gen uint64
}

var _ seal.Provider = (*Provider)(nil)

// Open loads the module, logs in to the token labelled opts.Token and
// makes the first KEK when the token has none. ctx bounds the wait for a
// session only: PKCS#11 calls cannot be interrupted.
func Open(ctx context.Context, opts Options) (*Provider, error) {
	opts = opts.withDefaults()
	mod, err := loadModule(opts.Module)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Provider{mod: mod, opts: opts, log: log, sessions: make(chan *session, opts.Sessions), reopening: make(chan struct{}, 1)}
	if err := p.start(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Provider) start(ctx context.Context) error {
	slot, err := p.findSlot()
	if err != nil {
		return err
	}
	p.slot = slot
	for i := range p.opts.Sessions {
		h, err := p.openSession(slot)
		if err != nil {
			return err
		}
		p.sessions <- &session{h: h}
		if i > 0 {
			continue
		}
		if err := p.login(h); err != nil {
			return err
		}
	}
	s, err := p.take(ctx)
	if err != nil {
		return err
	}
	defer p.give(s)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.list(s.h); err != nil {
		return err
	}
	if len(p.keys) == 0 {
		return p.generate(s.h, 1)
	}
	return nil
}

func (p *Provider) openSession(slot uint) (pkcs11.SessionHandle, error) {
	h, err := p.mod.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, fmt.Errorf("hsm: open a session on token %q: %w", p.opts.Token, err)
	}
	return h, nil
}

// login logs in on h. A login holds for every session of the process on
// the token, until the last of them closes.
func (p *Provider) login(h pkcs11.SessionHandle) error {
	err := p.mod.ctx.Login(h, pkcs11.CKU_USER, p.opts.PIN)
	if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		return fmt.Errorf("hsm: log in to token %q: %w", p.opts.Token, err)
	}
	return nil
}

func (p *Provider) findSlot() (uint, error) {
	slots, err := p.mod.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("hsm: list slots: %w", err)
	}
	var labels []string
	for _, slot := range slots {
		info, err := p.mod.ctx.GetTokenInfo(slot)
		if err != nil {
			return 0, fmt.Errorf("hsm: token info of slot %d: %w", slot, err)
		}
		label := strings.TrimRight(info.Label, " \x00")
		if label == p.opts.Token {
			return slot, nil
		}
		labels = append(labels, label)
	}
	return 0, fmt.Errorf("hsm: no token labelled %q in %s (tokens: %q)", p.opts.Token, p.opts.Module, labels)
}

// Close closes the sessions and, with the last provider of the process on
// this module, finalizes it. Call it once no operation is running.
// Sessions the token already dropped are not an error; those of a
// generation before the last reopen are left alone (see reopen).
func (p *Provider) Close() error {
	var errs []error
	for len(p.sessions) > 0 {
		s := <-p.sessions
		if s.gen != p.gen.Load() {
			continue
		}
		if err := p.mod.ctx.CloseSession(s.h); err != nil && !gone(err) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, p.mod.release())
	return errors.Join(errs...)
}

func (p *Provider) take(ctx context.Context) (*session, error) {
	select {
	case s := <-p.sessions:
		return s, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("hsm: wait for a session: %w", ctx.Err())
	}
}

func (p *Provider) give(s *session) { p.sessions <- s }

func keyTemplate(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// list reads the KEKs in the token. Callers hold p.mu.
func (p *Provider) list(s pkcs11.SessionHandle) error {
	c := p.mod.ctx
	if err := c.FindObjectsInit(s, keyTemplate(p.opts.KeyLabel)); err != nil {
		return fmt.Errorf("hsm: find keys: %w", err)
	}
	var found []pkcs11.ObjectHandle
	for {
		objs, _, err := c.FindObjects(s, 64)
		if err != nil {
			c.FindObjectsFinal(s)
			return fmt.Errorf("hsm: find keys: %w", err)
		}
		found = append(found, objs...)
		if len(objs) < 64 {
			break
		}
	}
	if err := c.FindObjectsFinal(s); err != nil {
		return fmt.Errorf("hsm: find keys: %w", err)
	}
	keys := map[uint32][]pkcs11.ObjectHandle{}
	var current uint32
	for _, o := range found {
		attrs, err := c.GetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil {
			return fmt.Errorf("hsm: read a key's id: %w", err)
		}
		id := attrs[0].Value
		if len(id) != 4 {
			return fmt.Errorf("hsm: a key labelled %q has id %x, not a 4-byte version: give multijuego's keys a label of their own (seal.pkcs11.key_label)", p.opts.KeyLabel, id)
		}
		v := binary.BigEndian.Uint32(id)
		keys[v] = append(keys[v], o)
		current = max(current, v)
	}
	p.keys, p.current, p.listed = keys, current, time.Now()
	return nil
}

// generate makes KEK version v in the token and makes it current. Callers
// hold p.mu.
func (p *Provider) generate(s pkcs11.SessionHandle, v uint32) error {
	id := binary.BigEndian.AppendUint32(nil, v)
	tmpl := append(keyTemplate(p.opts.KeyLabel),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, seal.KeySize),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
	)
	o, err := p.mod.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
	if err != nil {
		return fmt.Errorf("hsm: generate key-encryption key %d: %w", v, err)
	}
	p.keys[v] = append(p.keys[v], o)
	p.current = max(p.current, v)
	return nil
}

// Rotate makes a new KEK in the token and makes it current; keys wrapped
// under older ones stay readable. It returns the new version's name.
// Other processes use it within Options.Refresh.
func (p *Provider) Rotate(ctx context.Context) (string, error) {
	var v uint32
	err := p.do(ctx, func(s pkcs11.SessionHandle) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if err := p.list(s); err != nil {
			return err
		}
		v = p.current + 1
		return p.generate(s, v)
	})
	if err != nil {
		return "", err
	}
	return versionName(v), nil
}

// currentKey is the KEK Wrap uses, looked up again when the list is older
// than Options.Refresh.
func (p *Provider) currentKey(s pkcs11.SessionHandle) (uint32, pkcs11.ObjectHandle, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.listed) > p.opts.Refresh {
		if err := p.list(s); err != nil {
			return 0, 0, err
		}
	}
	hs := p.keys[p.current]
	if len(hs) == 0 {
		return 0, 0, fmt.Errorf("hsm: no key labelled %q in token %q", p.opts.KeyLabel, p.opts.Token)
	}
	return p.current, hs[0], nil
}

// handles are the objects of KEK version v, looked up again when v is not
// known yet (another process rotated).
func (p *Provider) handles(s pkcs11.SessionHandle, v uint32) ([]pkcs11.ObjectHandle, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if hs, ok := p.keys[v]; ok {
		return hs, nil
	}
	if err := p.list(s); err != nil {
		return nil, err
	}
	return p.keys[v], nil
}

// Wrap implements seal.Provider.
func (p *Provider) Wrap(ctx context.Context, plain, aad []byte) ([]byte, error) {
	var out []byte
	err := p.do(ctx, func(s pkcs11.SessionHandle) (err error) {
		out, err = p.wrap(s, plain, aad)
		return err
	})
	return out, err
}

func (p *Provider) wrap(s pkcs11.SessionHandle, plain, aad []byte) ([]byte, error) {
	v, h, err := p.currentKey(s)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, ivLen)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	params := pkcs11.NewGCMParams(iv, aad, tagLen*8)
	defer params.Free()
	c := p.mod.ctx
	if err := c.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
		return nil, fmt.Errorf("hsm: wrap: %w", err)
	}
	ct, err := c.Encrypt(s, plain)
	if err != nil {
		return nil, fmt.Errorf("hsm: wrap: %w", err)
	}
	if used := params.IV(); len(used) == ivLen {
		iv = used // an HSM that chooses its own IV reports it here
	}
	out := make([]byte, headerLen, headerLen+len(ct))
	out[0], out[1] = magic, formatV1
	binary.BigEndian.PutUint32(out[2:6], v)
	copy(out[6:headerLen], iv)
	return append(out, ct...), nil
}

// Unwrap implements seal.Provider.
func (p *Provider) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	v, err := versionOf(wrapped)
	if err != nil {
		return nil, err
	}
	var plain []byte
	err = p.do(ctx, func(s pkcs11.SessionHandle) (err error) {
		plain, err = p.unwrap(s, v, wrapped, aad)
		return err
	})
	return plain, err
}

func (p *Provider) unwrap(s pkcs11.SessionHandle, v uint32, wrapped, aad []byte) ([]byte, error) {
	hs, err := p.handles(s, v)
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("%w: key-encryption key %d is not in token %q", seal.ErrOpen, v, p.opts.Token)
	}
	for _, h := range hs {
		plain, err := p.decrypt(s, h, wrapped[6:headerLen], wrapped[headerLen:], aad)
		if err == nil {
			return plain, nil
		}
		if !errors.Is(err, seal.ErrOpen) || len(hs) == 1 {
			return nil, err
		}
	}
	return nil, seal.ErrOpen
}

// notOpening are the token's answers to a ciphertext that does not
// authenticate. SoftHSM2 says CKR_GENERAL_ERROR, which a failing device
// could say too: the token's answer stays in the error's text.
var notOpening = []pkcs11.Error{pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE, pkcs11.CKR_GENERAL_ERROR}

func (p *Provider) decrypt(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, iv, ct, aad []byte) ([]byte, error) {
	params := pkcs11.NewGCMParams(iv, aad, tagLen*8)
	defer params.Free()
	c := p.mod.ctx
	if err := c.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
		return nil, fmt.Errorf("hsm: unwrap: %w", err)
	}
	plain, err := c.Decrypt(s, ct)
	var perr pkcs11.Error
	if errors.As(err, &perr) && slices.Contains(notOpening, perr) {
		return nil, fmt.Errorf("%w (the token says %v)", seal.ErrOpen, perr)
	}
	if err != nil {
		return nil, fmt.Errorf("hsm: unwrap: %w", err)
	}
	return plain, nil
}

// Version implements seal.Provider.
func (p *Provider) Version(wrapped []byte) (string, error) {
	v, err := versionOf(wrapped)
	if err != nil {
		return "", err
	}
	return versionName(v), nil
}

// Current implements seal.Provider.
func (p *Provider) Current(ctx context.Context) (string, error) {
	var v uint32
	err := p.do(ctx, func(s pkcs11.SessionHandle) (err error) {
		v, _, err = p.currentKey(s)
		return err
	})
	if err != nil {
		return "", err
	}
	return versionName(v), nil
}

// module is a loaded PKCS#11 library. C_Initialize and C_Finalize act on
// the whole process, so providers on one library share one module,
// finalized when the last of them closes.
type module struct {
	path string
	ctx  *pkcs11.Ctx
	refs int
}

// modules are the loaded libraries by path: process-wide, like the
// library's own state.
var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: map[string]*module{}}

func loadModule(path string) (*module, error) {
	modules.Lock()
	defer modules.Unlock()
	if m := modules.m[path]; m != nil {
		m.refs++
		return m, nil
	}
	c := pkcs11.New(path)
	if c == nil {
		return nil, fmt.Errorf("hsm: cannot load the PKCS#11 module %s", path)
	}
	m := &module{path: path, ctx: c, refs: 1}
	if err := m.initialize(); err != nil {
		c.Destroy()
		return nil, err
	}
	modules.m[path] = m
	return m, nil
}

func (m *module) release() error {
	modules.Lock()
	defer modules.Unlock()
	if m.refs--; m.refs > 0 {
		return nil
	}
	delete(modules.m, m.path)
	err := m.ctx.Finalize()
	m.ctx.Destroy()
	if errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED)) {
		err = nil // finalized already (by another user of the library in this process)
	}
	return err
}

// initialize initializes the library: at load, and again when a call
// says it is not (C_Finalize was called in this process). Already
// initialized is fine: another user of the library in this process did.
func (m *module) initialize() error {
	err := m.ctx.Initialize()
	if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		return fmt.Errorf("hsm: initialize %s: %w", m.path, err)
	}
	return nil
}
