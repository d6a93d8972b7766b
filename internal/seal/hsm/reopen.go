//go:build cgo

package hsm

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/miekg/pkcs11"
)

// reopenOn are the token's answers that mean the session, the login or
// the token itself went away under this process, so that a new session,
// login and key lookup may succeed where the old session cannot:
//
//   - CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED: the session is gone
//     (the HSM restarted, or something in the process called
//     C_CloseAllSessions).
//   - CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED,
//     CKR_DEVICE_ERROR: the token went away or failed, which is how a
//     restarting or failing-over HSM, or a network HSM's client library
//     that lost its connection, answers.
//   - CKR_CRYPTOKI_NOT_INITIALIZED: the library lost its state (C_Finalize
//     was called in this process); it is initialized again.
//   - CKR_USER_NOT_LOGGED_IN: the login went (every session of the process
//     on the token was closed, or something called C_Logout).
//   - CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID: object handles
//     hold for one session or one run of the module; after a restart a key
//     has another handle, which looking the keys up again finds (or finds
//     the key gone, which is then the error).
//
// Not in the list: CKR_GENERAL_ERROR and CKR_FUNCTION_FAILED (SoftHSM2
// answers a ciphertext that does not authenticate with the first; neither
// says a session went, and reopening on them would double the work of
// every bad input), CKR_DEVICE_MEMORY and CKR_HOST_MEMORY (a new session
// needs memory too), CKR_SESSION_COUNT (a new session makes it worse),
// the CKR_PIN_ answers (a new login fails the same way), and CKR_CANCEL
// and CKR_OPERATION_ACTIVE (the session is there).
var reopenOn = []pkcs11.Error{
	pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
	pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_DEVICE_ERROR,
	pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
	pkcs11.CKR_USER_NOT_LOGGED_IN,
	pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID,
}

// sessionKept are the answers of reopenOn after which the session itself
// is still there: logging in and looking the keys up again on it is enough.
var sessionKept = []pkcs11.Error{pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID}

func tokenSays(err error, list []pkcs11.Error) bool {
	var perr pkcs11.Error
	return errors.As(err, &perr) && slices.Contains(list, perr)
}

// gone tells whether err means the session, the login or the token went.
func gone(err error) bool { return tokenSays(err, reopenOn) }

// Reopens counts the times the provider reopened its sessions (or logged
// in again) on the token after it answered that they went away.
func (p *Provider) Reopens() uint64 { return p.reopens.Load() }

// do runs op on a session of the pool. When op fails because the session,
// the login or the token went away, it reopens and runs op once more.
func (p *Provider) do(ctx context.Context, op func(pkcs11.SessionHandle) error) error {
	s, err := p.take(ctx)
	if err != nil {
		return err
	}
	defer p.give(s)
	seen := p.epoch.Load() // before fresh reads gen: reopen bumps gen, then epoch
	err = p.fresh(ctx, s)
	if err == nil {
		err = op(s.h)
	}
	if !gone(err) {
		return err
	}
	if rerr := p.reopen(ctx, s, seen, err); rerr != nil {
		return fmt.Errorf("hsm: token %q went away (%w) and reopening it failed: %w", p.opts.Token, err, rerr)
	}
	if err := op(s.h); err != nil {
		return fmt.Errorf("%w (again after reopening the sessions on token %q)", err, p.opts.Token)
	}
	return nil
}

func (p *Provider) lockReopen(ctx context.Context) error {
	select {
	case p.reopening <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("hsm: wait for the token's sessions to be reopened: %w", ctx.Err())
	}
}

func (p *Provider) unlockReopen() { <-p.reopening }

// fresh replaces s by a new session when it is of a generation before the
// last reopen. The old one is not closed: the token dropped it, and its
// handle may already be another session's.
func (p *Provider) fresh(ctx context.Context, s *session) error {
	if s.gen == p.gen.Load() {
		return nil
	}
	if err := p.lockReopen(ctx); err != nil {
		return err
	}
	defer p.unlockReopen()
	return p.renew(s)
}

// renew gives s a session of the current generation. Callers hold
// p.reopening.
func (p *Provider) renew(s *session) error {
	gen := p.gen.Load()
	if s.gen == gen {
		return nil
	}
	h, err := p.openSession(p.slot)
	if err != nil {
		return err
	}
	s.h, s.gen = h, gen
	return nil
}

// reopen makes s usable again after the token answered cause on it. seen
// is the epoch when the operation began: if another caller has reopened
// since, that reopen is used. Otherwise, when the session is still there
// (cause is of sessionKept), it logs in again and looks the keys up;
// else, or if that fails, it initializes the library again if needed,
// finds the token by its label, opens a session, logs in, looks the keys
// up, and makes that the new generation of sessions: the others are
// replaced as they are taken. A session the token kept through a full
// reopen (a device error it recovered from) stays open, unused, until the
// process ends: closing it could close another session that was given
// its handle.
func (p *Provider) reopen(ctx context.Context, s *session, seen uint64, cause error) error {
	if err := p.lockReopen(ctx); err != nil {
		return err
	}
	defer p.unlockReopen()
	if p.epoch.Load() != seen {
		return p.renew(s)
	}
	if tokenSays(cause, sessionKept) && s.gen == p.gen.Load() {
		if err := p.refresh(s.h); err == nil {
			p.reopened(cause, "logged in again")
			return nil
		}
	}
	modules.Lock()
	err := p.mod.initialize()
	modules.Unlock()
	if err != nil {
		return err
	}
	slot, err := p.findSlot()
	if err != nil {
		return err
	}
	h, err := p.openSession(slot)
	if err != nil {
		return err
	}
	if err := p.refresh(h); err != nil {
		p.mod.ctx.CloseSession(h)
		return err
	}
	p.slot = slot
	s.h, s.gen = h, p.gen.Add(1)
	p.reopened(cause, "opened new sessions")
	return nil
}

// refresh logs in on h and looks the keys up again.
func (p *Provider) refresh(h pkcs11.SessionHandle) error {
	if err := p.login(h); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.list(h)
}

func (p *Provider) reopened(cause error, what string) {
	p.epoch.Add(1)
	p.reopens.Add(1)
	p.log.Warn("hsm: the token's sessions went away; reopened them", "token", p.opts.Token, "did", what, "cause", cause.Error())
}
