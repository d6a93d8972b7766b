package auth

import (
	"context"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// The audit chainer: every auditChainEvery, each auth node tries to chain
// the audit rows written since (store.ChainAudit); one node at a time gets
// to, the others find the chain busy and wait for the next tick. A tick
// chains at most auditChainBatches batches of auditChainBatch rows; a
// backlog beyond that waits for the next tick (VerifyAudit reports it).
const (
	auditChainEvery   = time.Second
	auditChainBatch   = 1000
	auditChainBatches = 20
	// auditHeadLogEvery is how often a node that chained logs the head
	// (at info, "audit chain head"): logs shipped elsewhere then hold
	// anchors for `multijuego audit verify SEQ:HASH`.
	auditHeadLogEvery = 10 * time.Minute
)

// chainAudit runs the chainer until ctx ends, and then chains once more
// (for at most 5 seconds) what the node's last requests wrote.
func (s *Service) chainAudit(ctx context.Context) {
	t := time.NewTicker(auditChainEvery)
	defer t.Stop()
	var lastErr, lastHead time.Time
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := s.ChainAuditOnce(final); err != nil {
				s.log.Error("chain audit log at shutdown", "err", err)
			}
			return
		case <-t.C:
		}
		n, head, err := s.chainOnce(ctx)
		if err != nil && ctx.Err() == nil && time.Since(lastErr) >= time.Minute {
			lastErr = time.Now() // a store that is down is logged once a minute, not every tick
			s.log.Error("chain audit log", "err", err)
		}
		if err == nil && n > 0 && time.Since(lastHead) >= auditHeadLogEvery {
			lastHead = time.Now()
			s.log.Info("audit chain head", "head", head.String())
		}
	}
}

// ChainAuditOnce chains what one tick of the chainer would, and returns
// how many rows it chained (0 when another node holds the chain).
func (s *Service) ChainAuditOnce(ctx context.Context) (int, error) {
	n, _, err := s.chainOnce(ctx)
	return n, err
}

// chainOnce is ChainAuditOnce that also returns the head it left.
func (s *Service) chainOnce(ctx context.Context) (int, store.AuditHead, error) {
	total := 0
	var head store.AuditHead
	for range auditChainBatches {
		n, h, busy, err := s.st.ChainAudit(ctx, auditChainBatch)
		total, head = total+n, h
		if err != nil || busy || n < auditChainBatch {
			return total, head, err
		}
	}
	return total, head, nil
}

// VerifyAudit walks the audit chain (store.VerifyAudit).
func (s *Service) VerifyAudit(ctx context.Context, anchor store.AuditHead) (store.AuditReport, error) {
	return s.st.VerifyAudit(ctx, anchor)
}
