package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/multijuego/multijuego/internal/errcode"
)

// statusOf is the one table that turns a domain error code into an HTTP
// status. Every API error goes through writeError.
var statusOf = map[errcode.Code]int{
	errcode.Invalid:          http.StatusBadRequest,
	errcode.Unauthenticated:  http.StatusUnauthorized,
	errcode.PermissionDenied: http.StatusForbidden,
	errcode.Banned:           http.StatusForbidden,
	errcode.NotFound:         http.StatusNotFound,
	errcode.MethodNotAllowed: http.StatusMethodNotAllowed,
	errcode.Conflict:         http.StatusConflict,
	errcode.TooLarge:         http.StatusRequestEntityTooLarge,
	errcode.Unsupported:      http.StatusUnsupportedMediaType,
	errcode.RateLimited:      http.StatusTooManyRequests,
	errcode.Unavailable:      http.StatusServiceUnavailable,
	errcode.Busy:             http.StatusServiceUnavailable,
	errcode.Timeout:          http.StatusGatewayTimeout,
	errcode.Internal:         http.StatusInternalServerError,

	errcode.IdentityInvalid:   http.StatusUnauthorized,
	errcode.IdentityIssuer:    http.StatusUnauthorized,
	errcode.IdentityAudience:  http.StatusUnauthorized,
	errcode.IdentityExpired:   http.StatusUnauthorized,
	errcode.IdentityAlgorithm: http.StatusUnauthorized,
	errcode.IdentityKey:       http.StatusUnauthorized,
	errcode.IdentityTokenUse:  http.StatusUnauthorized,
}

// The realtime gateway's answers when its control plane cannot take a
// message or a message ran out of time. Over a socket an error travels as
// an "error" envelope with the code (and the request's cid), never as a
// close code: the socket stays open.
var (
	// errBusy: the socket's pending control messages, or the sockets
	// waiting for a control worker, are at their bound.
	errBusy = &errcode.Error{Code: errcode.Busy, Message: "The server is busy; try again.", RetryAfter: time.Second}
	// errTimeout: a key-value call or the wait on a match outlived
	// Config.ControlTimeout.
	errTimeout = &errcode.Error{Code: errcode.Timeout, Message: "The server did not finish this in time; try again."}
	// errJoinTimeout: as errTimeout, for a join that may still seat the
	// player (the seat is then kept for the disconnect grace only).
	errJoinTimeout = &errcode.Error{Code: errcode.Timeout, Message: "The match did not answer in time; send the request again (if the seat was taken meanwhile, it is given back to you)."}
)

// timedOut reports whether err is a deadline that ran out: a context's, or
// a network client's I/O timeout (a key-value store's own timeout).
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// StatusOf returns the HTTP status of a domain error code.
func StatusOf(c errcode.Code) int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON shape of every API error.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error object: a stable code, a human message, the
// request field at fault (if any) and the request id to quote to support.
type ErrorDetail struct {
	Code      errcode.Code `json:"code"`
	Message   string       `json:"message"`
	Field     string       `json:"field,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
}

// writeError answers err. A domain error is shown as it is; anything else is
// logged with the request id and answered with a bare "internal error".
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := errcode.As(err)
	if e == nil {
		log.ErrorContext(r.Context(), "internal error", "err", err, "request_id", requestID(r.Context()), "method", r.Method, "path", r.URL.Path)
		e = &errcode.Error{Code: errcode.Internal, Message: "Internal error."}
	}
	status := StatusOf(e.Code)
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message, Field: e.Field, RequestID: requestID(r.Context())}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if _, set := h["Cache-Control"]; !set {
		// API answers are per caller and per moment: no browser or CDN
		// may keep them unless the handler says otherwise.
		h.Set("Cache-Control", "no-store")
	}
	if v == nil {
		w.WriteHeader(status)
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // API JSON, not HTML: keep < > & readable
	var b []byte
	if err := enc.Encode(v); err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"Internal error."}}`+"\n")
	} else {
		b = buf.Bytes()
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
