package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/multijuego/multijuego/internal/kv"
)

// AuditThrottled is written once per throttled subject and window, when the
// throttle starts refusing it: not once per refused attempt, which would let
// a flood fill the audit log (the attempts are counted in
// multijuego_auth_logins_throttled_total).
const AuditThrottled = "throttled"

// ScopeDeviceIP is the device-login limit per client IP (device_ip_failures).
const ScopeDeviceIP = "device_ip"

func (t *Throttle) deviceMissKey(ip string) string { return "throttle:devmiss:" + t.name(ip) }

// auditedKey marks a refusal of subject in scope as written to the audit
// log for its window.
func (t *Throttle) auditedKey(scope, subject string) string {
	subject = t.name(subject)
	return fmt.Sprintf("throttle:audited:%s:%d:%s", scope, len(subject), subject)
}

// deviceAllowed says whether ip may try a device login: it may not once it
// has named device_ip_failures unknown devices in the failure window that it
// could not sign up (its sign-up limit spent). Device ids are credentials;
// without this, an address whose sign-up limit is spent could go on
// guessing ids (wrong ones are refused, a right one logs in) as fast as it
// can send. Sign-ups (a new device that makes a guest account) are held to
// the sign-up limit, so they are not counted here.
func (s *Service) deviceAllowed(ctx context.Context, ip string, now time.Time) (time.Duration, bool) {
	n, reset := s.throttle.count(ctx, s.throttle.deviceMissKey(ip))
	if n >= s.throttle.limit(s.cfg.DeviceIPFailures) {
		return retryAfter(reset, now, s.cfg.FailureWindow), false
	}
	return 0, true
}

// deviceMiss records a device login from ip that named an unknown device
// and could not sign up.
func (s *Service) deviceMiss(ctx context.Context, ip string) {
	if _, err := s.throttle.c.Incr(ctx, s.throttle.deviceMissKey(ip), 1, s.cfg.FailureWindow); err != nil {
		s.throttle.failed("incr", err)
	}
}

// refuseThrottled counts a refused attempt and, the first time a subject is
// refused in a window, writes one audit event: scope names the limit,
// subject what it limits (the IP, or the submitted account identifier),
// accountID the account when known. retry is how long the refusal lasts,
// which bounds the window of the once-only mark.
func (s *Service) refuseThrottled(ctx context.Context, scope, subject, accountID string, retry time.Duration, m Meta) error {
	s.throttle.Refused.Add(1)
	key := s.throttle.auditedKey(scope, subject)
	n, err := s.throttle.c.Incr(ctx, key, 1, max(retry, time.Second))
	if err != nil {
		s.throttle.failed("incr", err)
	}
	if err == nil && n == 1 {
		detail := map[string]any{"scope": scope, "retry_after_s": int(max(retry, time.Second).Round(time.Second) / time.Second)}
		s.audit(ctx, AuditThrottled, accountID, "", m, detail)
	}
	return rateLimited(retry)
}

// loginThrottled is refuseThrottled for the password limits: the account
// is resolved from the identifier only for the audit row, once a window.
func (s *Service) loginThrottled(ctx context.Context, scope, ident string, byEmail bool, retry time.Duration, m Meta) error {
	subject := ident
	if scope == ScopeIP {
		subject = m.IP
	} else if scope == ScopeAccountIP {
		subject = ident + " " + m.IP
	}
	accountID := ""
	if scope != ScopeIP {
		if _, err := s.throttle.c.Get(ctx, s.throttle.auditedKey(scope, subject)); errors.Is(err, kv.ErrNotFound) {
			a, _ := s.lookup(ctx, ident, byEmail)
			accountID = a.ID
		}
	}
	return s.refuseThrottled(ctx, scope, subject, accountID, retry, m)
}
