package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrStoreInUse is returned by Open when another server holds the
// embedded store directory.
var ErrStoreInUse = errors.New("the embedded NATS store is in use")

// Snapshots go through the JetStream API, the same one `nats stream
// backup` and `nats stream restore` use: the server takes a consistent
// copy of a stream's files, its consumers' state included, while it keeps
// serving, and streams it as chunks that the receiver acknowledges (flow
// control); a restore sends the chunks back to a server that has no such
// stream. Protocol as nats-server's jetstream_api.go implements it.
const (
	apiSnapshot = "$JS.API.STREAM.SNAPSHOT."
	apiRestore  = "$JS.API.STREAM.RESTORE."
	// snapshotChunk is the chunk size asked for (the server's default).
	snapshotChunk = 128 << 10
	// snapshotIdle is how long a snapshot or restore may go without a
	// chunk moving before it is given up.
	snapshotIdle = 30 * time.Second
)

// SnapshotInfo is what a stream snapshot restores with: the stream's
// configuration and its state when the snapshot was taken, as the server
// described them (JSON, passed back verbatim), and the counts read from
// the state.
type SnapshotInfo struct {
	Stream   string          `json:"stream"`
	Config   json.RawMessage `json:"config"`
	State    json.RawMessage `json:"state"`
	Messages uint64          `json:"messages"`
	FirstSeq uint64          `json:"first_seq"`
	LastSeq  uint64          `json:"last_seq"`
	// Consumers is the number of consumers whose state the snapshot holds.
	Consumers int `json:"consumers"`
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d)", e.Description, e.ErrCode) }

type streamState struct {
	Msgs      uint64 `json:"messages"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	Consumers int    `json:"consumer_count"`
}

// Streams are the names of the bus's streams: the events stream, then the
// dead-letter stream.
func (b *Bus) Streams() []string { return []string{b.EventsStream(), b.DLQStream()} }

// Snapshot writes a consistent snapshot of stream, with its consumers'
// state, to w (the server's format: an s2-compressed archive of the
// stream's files). progress, if not nil, is called with the bytes written
// so far after each chunk. The connection needs the operator role.
func (b *Bus) Snapshot(ctx context.Context, stream string, w io.Writer, progress func(int64)) (SnapshotInfo, error) {
	info := SnapshotInfo{Stream: stream}
	inbox := b.nc.NewInbox()
	// The chunks wait in the subscription's buffer while w is written;
	// the server sends at most its window (8 MiB) unacknowledged.
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return info, fmt.Errorf("events: snapshot %s: %w", stream, err)
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, 64<<20)
	req, _ := json.Marshal(map[string]any{"deliver_subject": inbox, "chunk_size": snapshotChunk})
	var resp struct {
		Error  *apiError       `json:"error"`
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}
	if err := b.apiRequest(ctx, apiSnapshot+stream, req, &resp); err != nil {
		return info, fmt.Errorf("events: snapshot %s: %w", stream, err)
	}
	if resp.Error != nil {
		return info, fmt.Errorf("events: snapshot %s: %w", stream, resp.Error)
	}
	info.Config, info.State = resp.Config, resp.State
	var st streamState
	if err := json.Unmarshal(resp.State, &st); err != nil {
		return info, fmt.Errorf("events: snapshot %s: state: %w", stream, err)
	}
	info.Messages, info.FirstSeq, info.LastSeq, info.Consumers = st.Msgs, st.FirstSeq, st.LastSeq, st.Consumers
	var total int64
	for {
		wait, cancel := context.WithTimeout(ctx, snapshotIdle)
		m, err := sub.NextMsgWithContext(wait)
		cancel()
		if err != nil {
			return info, fmt.Errorf("events: snapshot %s after %d bytes: %w", stream, total, err)
		}
		if len(m.Data) == 0 {
			// The end: a status 204, or the server's error (nats.go
			// parses the status line into these two headers).
			if s := m.Header.Get("Status"); s != "" && s != "204" {
				return info, fmt.Errorf("events: snapshot %s failed on the server: %s %s", stream, s, m.Header.Get("Description"))
			}
			return info, nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return info, fmt.Errorf("events: snapshot %s: %w", stream, err)
		}
		total += int64(len(m.Data))
		if m.Reply != "" { // the last, short chunk asks for no ack
			if err := m.Respond(nil); err != nil {
				return info, fmt.Errorf("events: snapshot %s: ack: %w", stream, err)
			}
		}
		if progress != nil {
			progress(total)
		}
	}
}

// Restore creates a stream from a snapshot that Snapshot wrote, read from
// r. The stream must not exist (open the bus with NoStreams). progress, if
// not nil, is called with the bytes sent so far after each chunk. The
// connection needs the operator role.
func (b *Bus) Restore(ctx context.Context, info SnapshotInfo, r io.Reader, progress func(int64)) error {
	req, _ := json.Marshal(map[string]json.RawMessage{"config": info.Config, "state": info.State})
	var resp struct {
		Error          *apiError `json:"error"`
		DeliverSubject string    `json:"deliver_subject"`
	}
	if err := b.apiRequest(ctx, apiRestore+info.Stream, req, &resp); err != nil {
		return fmt.Errorf("events: restore %s: %w", info.Stream, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("events: restore %s: %w", info.Stream, resp.Error)
	}
	buf := make([]byte, snapshotChunk)
	var total int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			// Each chunk is a request: the server answers when it has
			// taken it, with an error if it failed.
			var cresp struct {
				Error *apiError `json:"error"`
			}
			if err := b.apiRequest(ctx, resp.DeliverSubject, buf[:n], &cresp); err != nil {
				return fmt.Errorf("events: restore %s after %d bytes: %w", info.Stream, total, err)
			}
			if cresp.Error != nil {
				return fmt.Errorf("events: restore %s after %d bytes: %w", info.Stream, total, cresp.Error)
			}
			total += int64(n)
			if progress != nil {
				progress(total)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("events: restore %s: %w", info.Stream, rerr)
		}
	}
	// An empty chunk ends the transfer; the answer comes when the server
	// has rebuilt the stream.
	var done struct {
		Error *apiError    `json:"error"`
		State *streamState `json:"state"` // the stream's info, inline
	}
	if err := b.apiRequest(ctx, resp.DeliverSubject, nil, &done); err != nil {
		return fmt.Errorf("events: restore %s: %w", info.Stream, err)
	}
	if done.Error != nil {
		return fmt.Errorf("events: restore %s: %w", info.Stream, done.Error)
	}
	if done.State == nil {
		return fmt.Errorf("events: restore %s: the server did not describe the restored stream", info.Stream)
	}
	if got := done.State; got.Msgs != info.Messages || got.LastSeq != info.LastSeq {
		return fmt.Errorf("events: restore %s: %d messages up to sequence %d restored, the snapshot had %d up to %d",
			info.Stream, got.Msgs, got.LastSeq, info.Messages, info.LastSeq)
	}
	return nil
}

// apiRequest sends a request and decodes its JSON answer into out, waiting
// at most snapshotIdle.
func (b *Bus) apiRequest(ctx context.Context, subject string, data []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, snapshotIdle)
	defer cancel()
	m, err := b.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return err
	}
	if len(m.Data) == 0 {
		return nil
	}
	return json.Unmarshal(m.Data, out)
}
