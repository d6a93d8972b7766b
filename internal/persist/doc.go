// Package persist is the persistence service: it consumes the game events
// of the events stream (docs/events.md) with a durable JetStream pull
// consumer and writes them to the relational store, idempotently, and it
// keeps what it cannot use in the dead-letter stream, from which an
// operator can replay or purge it.
//
// # Consuming
//
// [Consumer.Run] creates (or updates) the durable pull consumer
// Config.Durable on the events stream: explicit acks, Config.AckWait,
// unlimited server-side deliveries (the consumer dead-letters by itself
// after Config.MaxDeliver deliveries), filter <prefix>.mj.events.>,
// deliver all, MaxAckPending 4 × Config.Batch. It then reads the stream
// continuously (asking for MaxAckPending messages and 256 more, so that the
// client's channel never fills: nats.go would drop the message that finds
// it full), cuts it into batches of up to Config.Batch messages (waiting at
// most Config.MaxWait) and splits each batch between two lanes, writers
// that run side by side: key moments (match.event) and the rest (starts,
// ends, poison). A lane writes each part, and any parts queued meanwhile
// (up to Config.Batch events), as follows:
//
//   - A message whose signature Config.Signer refuses (events.ErrUnsigned,
//     events.ErrBadSignature: not made by a game node of this deployment)
//     or that events.Parse refuses (events.ErrMalformed or
//     events.ErrInvalid) is poison: it is published to the dead-letter
//     stream (below), and once the stream acknowledged it the original is
//     terminated (Term), so the stream keeps flowing.
//   - match.started, match.event and match.ended become store changes (a
//     start record, a key-moment record, an end record with every result);
//     ApplyChanges is called once for the lane's events (one transaction)
//     and every message is acked only after the commit. ApplyChanges is
//     idempotent by event id, so a redelivered or republished event is
//     harmless: it is counted in Duplicates.
//   - A transient failure (any ApplyChanges error other than
//     store.ErrInvalid: the database is down, a serialization failure, a
//     write still running after Config.AckWait, which is cut) naks each
//     message with the delay Config.Backoff[deliveries-1] (the
//     last delay once there are more deliveries than delays), counts
//     Retried, and pauses the lane (Backoff[0], doubling per consecutive
//     failure, at most 5 s) so a dead database is not hammered.
//   - When ApplyChanges returns store.ErrInvalid, or fails while some
//     message of the batch has been delivered Config.MaxDeliver times, the
//     batch is isolated: its events are applied one at a time. An event
//     that fails with store.ErrInvalid, or fails in any way at its
//     MaxDeliver-th delivery, is dead-lettered with the error; the others
//     are acked (applied) or naked with backoff (after the first transient
//     failure of the isolation, the events not yet at MaxDeliver are naked
//     without another attempt).
//   - When Run's context ends, unprocessed fetched messages are naked
//     without delay (another instance takes them at once) and Run returns
//     nil. A transaction cut by the cancellation is rolled back; its events
//     are redelivered.
//
// Consumers order nothing: a naked message is redelivered after later ones
// were processed, which the store accepts (see store.ApplyChanges and
// store.RecomputeDerived).
//
// # Dead letters
//
// A dead letter is the original message's data, unchanged, published to
// <prefix>.mj.dlq.<type> (the event's type; for a poison message the
// "type" field if it can be read and is a valid subject token, otherwise
// "unknown") with these headers:
//
//	Mj-Error        why it was dead-lettered (one line, at most 1024 bytes)
//	Mj-Deliveries   how many times the consumer had received it
//	Mj-Subject      the subject it was published on (where Replay sends it)
//	Mj-Stream-Seq   its sequence in the events stream
//	Mj-Event-Id     the event id, when it could be read
//	Mj-Type         the event type, when it could be read
//	Mj-Match-Id     the match id, when it could be read
//	Mj-Msg-Id       the original Nats-Msg-Id, if any
//
// Other headers of the original are copied, and so is its signature
// (events.HeaderSignature, kept by Replay); its Nats-* and other Mj-*
// headers are not.
// The dead letter's own Nats-Msg-Id is "dlq-<events stream seq>", so a
// dead-lettering repeated after a lost Term is deduplicated.
//
// [DLQ] lists, reads, replays and purges dead letters. Replay republishes
// the original data to the original subject with the Nats-Msg-Id
// "replay-<dlq seq>-<event id>" ("replay-<dlq seq>" when the event id is
// unknown) and the header Mj-Replay-Of: <dlq seq>, then deletes the dead
// letter. The new id matters: the events stream would drop the original id
// as a duplicate inside its duplicate window. Replaying an event that was
// applied in the meantime is harmless (idempotent store), and a replayed
// event that still fails is dead-lettered again (a new dead letter).
package persist
