// Package events carries game events from game nodes to the persistence
// service through NATS JetStream.
//
// An [Event] is a versioned envelope (id, type, schema version, match,
// time, node) around a typed payload ([MatchStarted], [MatchEvent],
// [MatchEnded]). [Encode] and [Decode] are its only wire form; Decode is
// strict and says whether a message is malformed ([ErrMalformed]) or fails
// validation ([ErrInvalid]), so a consumer can dead-letter it.
//
// A [Bus] is the JetStream connection and its two streams (events and dead
// letters), on an embedded nats-server or an external one. A [Publisher]
// queues events without blocking the match goroutines and publishes them in
// the background, deduplicated by event id; match results are never dropped
// (see docs/events.md for the exact guarantees).
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/multijuego/multijuego/match"
)

// Version is the schema version of every event but personal ones, which
// are VersionPersonal (version 1 and a match.event's owner and sealed
// fields: personal.go). This package writes and reads both.
const (
	Version         = 1
	VersionPersonal = 2
)

// Event types.
const (
	TypeMatchStarted = "match.started"
	TypeMatchEvent   = "match.event"
	TypeMatchEnded   = "match.ended"
)

// Limits checked by Encode and Decode.
const (
	MaxEventBytes  = 512 << 10 // an encoded event; under NATS's default 1 MiB max_payload
	MaxIDLen       = 128       // match ids, node names, account ids
	MaxNameLen     = 64        // modes, reasons, match.event names, stat names
	MaxLabelLen    = match.MaxLabelLen
	MaxPlayers     = 256 // MatchStarted.Players and MatchEnded.Results
	MaxStats       = 64  // stats per player result
	MaxPlacement   = MaxPlayers
	uuidStringSize = 36
)

var (
	// ErrMalformed: the bytes are not an event at all: not JSON, trailing
	// data, unknown or mistyped fields, a payload of the wrong shape.
	ErrMalformed = errors.New("events: malformed event")
	// ErrInvalid: a well-formed event that breaks a rule: missing field,
	// unknown type or version, out-of-range value, too large.
	ErrInvalid = errors.New("events: invalid event")
)

// Event is the envelope every event travels in.
type Event struct {
	// ID is a UUIDv7 (time-ordered), in canonical lowercase form. It is the
	// JetStream message id (deduplication) and the consumer's idempotency
	// key.
	ID string `json:"id"`
	// Type is one of the Type constants; it selects Data's payload.
	Type string `json:"type"`
	// Version is the schema version, [Version].
	Version int `json:"version"`
	// MatchID is the match the event is about.
	MatchID string `json:"match_id"`
	// Time is when the event was made, in UTC.
	Time time.Time `json:"time"`
	// Node is the game node that made it.
	Node string `json:"node"`
	// Data is the typed payload as JSON: [MatchStarted], [MatchEvent] or
	// [MatchEnded].
	Data json.RawMessage `json:"data"`

	// wire is the encoding the New functions made, kept with a copy of
	// the fields it encodes: Encode returns it while they are unchanged
	// instead of checking and encoding the event a second time.
	wire *wireForm
}

// wireForm is an event's checked wire form and the fields it came from.
type wireForm struct {
	id, typ, matchID, node string
	version                int
	time                   time.Time
	data                   []byte // a copy: the caller may reuse ev.Data's array
	b                      []byte
}

// encodes reports whether w is the encoding of ev as it is now.
func (w *wireForm) encodes(ev *Event) bool {
	return ev.ID == w.id && ev.Type == w.typ && ev.Version == w.version && ev.MatchID == w.matchID &&
		ev.Node == w.node && ev.Time.Equal(w.time) && bytes.Equal(ev.Data, w.data)
}

// MatchStarted is the payload of TypeMatchStarted.
type MatchStarted struct {
	Mode    string   `json:"mode"`
	Label   string   `json:"label,omitzero"`
	Players []string `json:"players"` // account ids seated at the start (may be empty)
}

// MatchEvent is the payload of TypeMatchEvent: a key moment a handler
// chooses to record (a goal, a level reached). Data is game-defined JSON.
// A personal event (match.Dispatcher.EmitPersonal) names its Owner and
// carries its data Sealed under the owner's data key instead (see
// personal.go); with sealing turned off it carries Owner and Data.
type MatchEvent struct {
	Name   string          `json:"name"`
	Data   json.RawMessage `json:"data,omitzero"`
	Owner  string          `json:"owner,omitzero"`
	Sealed string          `json:"sealed,omitzero"`
}

// MatchEnded is the payload of TypeMatchEnded: a match's results.
type MatchEnded struct {
	Mode       string         `json:"mode"`
	Label      string         `json:"label,omitzero"`
	Reason     string         `json:"reason"`
	StartedAt  time.Time      `json:"started_at"`
	EndedAt    time.Time      `json:"ended_at"`
	DurationMs int64          `json:"duration_ms"`
	Results    []PlayerResult `json:"results"` // best first; empty when nobody was ranked
}

// PlayerResult is one ranked player's outcome.
type PlayerResult struct {
	AccountID string             `json:"account_id"`
	Placement int                `json:"placement"` // 1 = best; tied players share a placement
	Score     int64              `json:"score"`
	Stats     map[string]float64 `json:"stats,omitzero"`
}

// payload is implemented by the three payload types.
type payload interface {
	eventType() string
	validate() error
	normalize()
}

func (MatchStarted) eventType() string { return TypeMatchStarted }
func (MatchEvent) eventType() string   { return TypeMatchEvent }
func (MatchEnded) eventType() string   { return TypeMatchEnded }

// NewMatchStarted makes a match.started event with a new random id.
func NewMatchStarted(matchID, node string, p MatchStarted) (Event, error) {
	return newEvent("", matchID, node, &p)
}

// NewMatchEvent makes a match.event event with a new random id.
func NewMatchEvent(matchID, node string, p MatchEvent) (Event, error) {
	return newEvent("", matchID, node, &p)
}

// NewMatchEnded makes a match.ended event with a new random id.
func NewMatchEnded(matchID, node string, p MatchEnded) (Event, error) {
	return newEvent("", matchID, node, &p)
}

// EndedFromSummary is the match.ended payload for a match engine's
// summary ([match.Config.OnEnd]); account ids are the players'
// Presence.UserID.
func EndedFromSummary(s match.Summary) MatchEnded {
	e := MatchEnded{
		Mode: s.Mode, Label: s.Label, Reason: s.Results.Reason,
		StartedAt: s.Created, EndedAt: s.Ended,
		DurationMs: s.Ended.Sub(s.Created).Milliseconds(),
		Results:    make([]PlayerResult, 0, len(s.Results.Players)),
	}
	if e.Reason == "" {
		e.Reason = string(match.ReasonMatchEnded)
	}
	for _, r := range s.Results.Players {
		e.Results = append(e.Results, PlayerResult{AccountID: r.Presence.UserID, Placement: r.Placement,
			Score: r.Score, Stats: maps.Clone(r.Stats)})
	}
	return e
}

// newEvent makes an event with id, or a new random UUIDv7 if id is empty.
func newEvent(id, matchID, node string, p payload) (Event, error) {
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return Event{}, fmt.Errorf("events: new id: %w", err)
		}
		id = u.String()
	}
	var err error
	p.normalize()
	ev := Event{ID: id, Type: p.eventType(), Version: versionOf(p), MatchID: matchID,
		Time: time.Now().UTC(), Node: node}
	if err := ev.validate(); err != nil {
		return Event{}, err
	}
	if err := p.validate(); err != nil {
		return Event{}, err
	}
	if ev.Data, err = encodePayload(p); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// ev is checked and its Data canonical: its wire form is the envelope
	// as it is, which Encode would otherwise re-check and re-encode.
	if b := appendEnvelope(make([]byte, 0, envelopeSize+len(ev.Data)), &ev); len(b) <= MaxEventBytes {
		ev.wire = &wireForm{id: ev.ID, typ: ev.Type, version: ev.Version, matchID: ev.MatchID, node: ev.Node,
			time: ev.Time, data: bytes.Clone(ev.Data), b: b}
	}
	return ev, nil
}

// Encode returns an event's wire form (compact JSON) after checking it
// exactly as Decode would: what Encode accepts, Decode accepts. For an
// event from a New function whose fields were not changed since, that
// check and encoding were done when it was made.
func Encode(ev Event) ([]byte, error) {
	if w := ev.wire; w != nil && w.encodes(&ev) {
		return bytes.Clone(w.b), nil
	}
	ev, err := canonical(ev)
	if err != nil {
		return nil, err
	}
	b := appendEnvelope(nil, &ev)
	if len(b) > MaxEventBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(b), MaxEventBytes)
	}
	return b, nil
}

// Decode parses and checks an event. The returned event's Data is the
// payload's canonical encoding (compact, times in UTC), so
// Decode(Encode(Decode(b))) equals Decode(b). Errors wrap ErrMalformed or
// ErrInvalid.
func Decode(b []byte) (Event, error) {
	if len(b) > MaxEventBytes {
		return Event{}, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(b), MaxEventBytes)
	}
	var ev Event
	if err := strictUnmarshal(b, &ev); err != nil {
		return Event{}, err
	}
	return canonical(ev)
}

// DecodeData decodes and checks an event's payload; T must be the payload
// type of ev.Type. Events from Decode need no further checks, but
// DecodeData checks anyway.
func DecodeData[T MatchStarted | MatchEvent | MatchEnded](ev Event) (T, error) {
	var v T
	p := any(&v).(payload)
	if p.eventType() != ev.Type {
		return v, fmt.Errorf("%w: %s event has no %T payload", ErrInvalid, ev.Type, v)
	}
	if err := strictUnmarshal(ev.Data, &v); err != nil {
		return v, fmt.Errorf("%s data: %w", ev.Type, err)
	}
	if err := p.validate(); err != nil {
		return v, err
	}
	p.normalize()
	return v, nil
}

// Parse is Decode for a consumer that needs the payload too: one pass
// over the data instead of Decode's and DecodeData's. It returns the event
// (Time in UTC, Data as received) and its checked, normalised payload:
// *MatchStarted, *MatchEvent or *MatchEnded as ev.Type says. It refuses
// what Decode refuses.
func Parse(b []byte) (Event, any, error) {
	if len(b) > MaxEventBytes {
		return Event{}, nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(b), MaxEventBytes)
	}
	var ev Event
	if err := strictUnmarshal(b, &ev); err != nil {
		return Event{}, nil, err
	}
	p, err := parsePayload(ev)
	if err != nil {
		return Event{}, nil, err
	}
	ev.Time = ev.Time.UTC()
	return ev, p, nil
}

// parsePayload validates ev and decodes, checks and normalises its payload.
func parsePayload(ev Event) (payload, error) {
	if err := ev.validate(); err != nil {
		return nil, err
	}
	var p payload
	switch ev.Type {
	case TypeMatchStarted:
		p = new(MatchStarted)
	case TypeMatchEvent:
		p = new(MatchEvent)
	default:
		p = new(MatchEnded)
	}
	if len(ev.Data) == 0 {
		return nil, fmt.Errorf("%w: data is required", ErrInvalid)
	}
	if err := strictUnmarshal(ev.Data, p); err != nil {
		return nil, fmt.Errorf("%s data: %w", ev.Type, err)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if v := versionOf(p); ev.Version != v {
		return nil, invalid("version %d for this payload (want %d: version 2 is a personal match.event's, and only theirs)", ev.Version, v)
	}
	p.normalize()
	return p, nil
}

// canonical validates ev and returns it with Time in UTC and Data
// re-encoded from its typed payload.
func canonical(ev Event) (Event, error) {
	p, err := parsePayload(ev)
	if err != nil {
		return Event{}, err
	}
	data, err := encodePayload(p)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	ev.Data = data
	ev.Time = ev.Time.UTC()
	return ev, nil
}

// envelopeSize is about the size of an envelope without its data: enough
// that appending the data rarely grows the buffer.
const envelopeSize = 192

// appendEnvelope appends ev's wire form to b: what marshal(&ev) makes, without its
// reflection and without checking Data again. ev must be checked, with Time in UTC
// and Data a payload's canonical encoding (from encodePayload), which is what JSON
// v2 would write for it. TestAppendEnvelopeIsMarshal and FuzzNewMatchEvent hold
// the two encodings equal.
func appendEnvelope(b []byte, ev *Event) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, ev.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, ev.Type)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(ev.Version), 10)
	b = append(b, `,"match_id":`...)
	b = appendString(b, ev.MatchID)
	b = append(b, `,"time":"`...)
	b = ev.Time.AppendFormat(b, time.RFC3339Nano) // JSON v2's default format for a time.Time
	b = append(b, `","node":`...)
	b = appendString(b, ev.Node)
	b = append(b, `,"data":`...)
	b = append(b, ev.Data...)
	return append(b, '}')
}

// appendString appends s as a JSON string in its minimal form (RFC 8785),
// as JSON v2 writes it. s is a checked field: valid UTF-8.
func appendString(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}

// encodePayload is marshal(p) for a checked and normalised payload. A key
// moment, the most frequent event, is written by hand when its data has
// no escape sequence: JSON v2 rewrites escapes to their minimal form,
// but data that is valid and compact (which validate and normalize make
// sure of) and has none is already written as JSON v2 writes it.
func encodePayload(p payload) ([]byte, error) {
	if m, ok := p.(*MatchEvent); ok && m.Owner == "" && m.Sealed == "" && bytes.IndexByte(m.Data, '\\') < 0 {
		b := make([]byte, 0, len(`{"name":"","data":}`)+len(m.Name)+len(m.Data))
		b = append(b, `{"name":`...)
		b = appendString(b, m.Name)
		if len(m.Data) > 0 {
			b = append(b, `,"data":`...)
			b = append(b, m.Data...)
		}
		return append(b, '}'), nil
	}
	return marshal(p)
}

// The wire form is read and written with JSON v2 (github.com/go-json-experiment/json,
// the module behind Go's encoding/json/v2): three to five times faster than
// encoding/json here, and stricter: member names match exactly, a name
// given twice and invalid UTF-8 are errors.
var (
	strictOpts = jsonv2.JoinOptions(jsonv2.RejectUnknownMembers(true))
	encodeOpts = jsonv2.JoinOptions(jsonv2.Deterministic(true)) // map keys sorted: one encoding per event
)

// marshal is the canonical encoding: compact, map keys sorted.
func marshal(v any) ([]byte, error) { return jsonv2.Marshal(v, encodeOpts) }

// strictUnmarshal decodes one JSON value into v: unknown fields and
// trailing data are ErrMalformed, as is anything that is not a JSON object.
func strictUnmarshal(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := jsonv2.Unmarshal(b, v, strictOpts); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

func (ev *Event) validate() error {
	switch {
	case ev.Version != Version && ev.Version != VersionPersonal:
		return invalid("unsupported version %d (want %d or %d)", ev.Version, Version, VersionPersonal)
	case ev.Type != TypeMatchStarted && ev.Type != TypeMatchEvent && ev.Type != TypeMatchEnded:
		return invalid("unknown type %q", ev.Type)
	case ev.Time.IsZero():
		return invalid("time is required")
	case ev.Time.UTC().Year() < 1970 || ev.Time.UTC().Year() > 9999:
		return invalid("time %s out of range", ev.Time)
	}
	if err := checkUUIDv7(ev.ID); err != nil {
		return err
	}
	if err := checkString("match_id", ev.MatchID, MaxIDLen, true); err != nil {
		return err
	}
	return checkString("node", ev.Node, MaxIDLen, true)
}

// checkUUIDv7 accepts the canonical form of a UUIDv7 of the RFC 4122
// variant: lowercase hex in groups 8-4-4-4-12, version digit 7, variant
// digit 8, 9, a or b.
func checkUUIDv7(s string) error {
	if len(s) != uuidStringSize || s[14] != '7' || !strings.ContainsRune("89ab", rune(s[19])) {
		return invalid("id must be a UUIDv7 in canonical form")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return invalid("id must be a UUIDv7 in canonical form")
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return invalid("id must be a UUIDv7 in canonical form")
			}
		}
	}
	return nil
}

// checkString: valid UTF-8 without control characters, at most max bytes,
// non-empty when required.
func checkString(field, s string, max int, required bool) error {
	switch {
	case s == "" && required:
		return invalid("%s is required", field)
	case len(s) > max:
		return invalid("%s longer than %d bytes", field, max)
	case !utf8.ValidString(s):
		return invalid("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid("%s contains a control character", field)
		}
	}
	return nil
}

func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return invalid("%s is required", field)
	}
	if t.UTC().Year() < 1970 || t.UTC().Year() > 9999 {
		return invalid("%s %s out of range", field, t)
	}
	return nil
}

func (p *MatchStarted) validate() error {
	if err := checkString("mode", p.Mode, MaxNameLen, true); err != nil {
		return err
	}
	if len(p.Label) > MaxLabelLen || !utf8.ValidString(p.Label) {
		return invalid("label must be valid UTF-8 of at most %d bytes", MaxLabelLen)
	}
	if len(p.Players) > MaxPlayers {
		return invalid("%d players, more than %d", len(p.Players), MaxPlayers)
	}
	seen := make(map[string]struct{}, len(p.Players))
	for i, id := range p.Players {
		if err := checkString(fmt.Sprintf("players[%d]", i), id, MaxIDLen, true); err != nil {
			return err
		}
		if _, dup := seen[id]; dup {
			return invalid("players[%d]: account %q listed twice", i, id)
		}
		seen[id] = struct{}{}
	}
	return nil
}

func (p *MatchStarted) normalize() {
	if p.Players == nil {
		p.Players = []string{}
	}
	p.Players = slices.Clone(p.Players)
}

func (p *MatchEvent) validate() error {
	if err := checkString("name", p.Name, MaxNameLen, true); err != nil {
		return err
	}
	if len(p.Data) > 0 && !jsontext.Value(p.Data).IsValid() {
		return fmt.Errorf("%w: match.event data is not JSON", ErrMalformed)
	}
	if err := checkString("owner", p.Owner, MaxIDLen, false); err != nil {
		return err
	}
	return p.validateSealed()
}

func (p *MatchEvent) normalize() {
	if len(p.Data) == 0 {
		p.Data = nil
		return
	}
	v := jsontext.Value(bytes.Clone(p.Data)) // never change the caller's bytes
	if v.Compact() == nil {
		p.Data = json.RawMessage(v)
	}
	if string(p.Data) == "null" {
		p.Data = nil
	}
}

func (p *MatchEnded) validate() error {
	if err := checkString("mode", p.Mode, MaxNameLen, true); err != nil {
		return err
	}
	if len(p.Label) > MaxLabelLen || !utf8.ValidString(p.Label) {
		return invalid("label must be valid UTF-8 of at most %d bytes", MaxLabelLen)
	}
	if err := checkString("reason", p.Reason, MaxNameLen, true); err != nil {
		return err
	}
	if err := checkTime("started_at", p.StartedAt); err != nil {
		return err
	}
	if err := checkTime("ended_at", p.EndedAt); err != nil {
		return err
	}
	if p.EndedAt.Before(p.StartedAt) {
		return invalid("ended_at is before started_at")
	}
	if p.DurationMs < 0 {
		return invalid("duration_ms is negative")
	}
	if len(p.Results) > MaxPlayers {
		return invalid("%d results, more than %d", len(p.Results), MaxPlayers)
	}
	seen := make(map[string]struct{}, len(p.Results))
	for i, r := range p.Results {
		if err := checkString(fmt.Sprintf("results[%d].account_id", i), r.AccountID, MaxIDLen, true); err != nil {
			return err
		}
		if _, dup := seen[r.AccountID]; dup {
			return invalid("results[%d]: account %q listed twice", i, r.AccountID)
		}
		seen[r.AccountID] = struct{}{}
		if r.Placement < 1 || r.Placement > MaxPlacement {
			return invalid("results[%d].placement %d not in 1..%d", i, r.Placement, MaxPlacement)
		}
		if len(r.Stats) > MaxStats {
			return invalid("results[%d]: %d stats, more than %d", i, len(r.Stats), MaxStats)
		}
		for _, k := range slices.Sorted(maps.Keys(r.Stats)) {
			if err := checkString(fmt.Sprintf("results[%d].stats key", i), k, MaxNameLen, true); err != nil {
				return err
			}
			if v := r.Stats[k]; math.IsNaN(v) || math.IsInf(v, 0) {
				return invalid("results[%d].stats[%q] is not a finite number", i, k)
			}
		}
	}
	return nil
}

func (p *MatchEnded) normalize() {
	p.StartedAt = p.StartedAt.UTC()
	p.EndedAt = p.EndedAt.UTC()
	if p.Results == nil {
		p.Results = []PlayerResult{}
	}
	p.Results = slices.Clone(p.Results) // never change the caller's slice
	for i := range p.Results {
		if len(p.Results[i].Stats) == 0 {
			p.Results[i].Stats = nil
		}
	}
}
