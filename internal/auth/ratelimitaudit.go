package auth

import (
	"context"
	"fmt"
	"time"
)

// AuditRateLimited is a rate-limit trip: the first request of a subject
// that a gateway limit refused in a window (internal/gateway trips.go).
const AuditRateLimited = "rate_limited"

// RecordRateLimited writes a rate_limited row for limit (ip.CLASS or
// account.CLASS) and subject, unless one was written for them within
// window on any node (a key-value mark, like the login throttle's).
// retry is the refusal's Retry-After.
func (s *Service) RecordRateLimited(ctx context.Context, limit, subject, accountID string, window, retry time.Duration, m Meta) {
	key := fmt.Sprintf("ratelimit:audited:%s:%d:%s", limit, len(subject), subject)
	n, err := s.throttle.c.Incr(ctx, key, 1, window)
	if err != nil {
		s.throttle.failed("incr", err)
		return
	}
	if n == 1 {
		s.audit(ctx, AuditRateLimited, accountID, "", m, map[string]any{"limit": limit, "subject": subject, "retry_after_s": int(max(retry, time.Second).Round(time.Second) / time.Second)})
	}
}
