package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/multijuego/multijuego/internal/errcode"
)

// decodeJSON reads a JSON request body into dst (a pointer to a struct) with
// strict rules and errors a client can act on: the body must be
// application/json, within maxBytes, one JSON object with no unknown
// fields and no trailing data; a wrong type names the field.
func decodeJSON(r *http.Request, dst any, maxBytes int64, optional bool) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && optional && r.ContentLength <= 0 {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return &errcode.Error{Code: errcode.Unsupported, Message: "The request body must be JSON (Content-Type: application/json)."}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(maxBytes)
		}
		return errcode.New(errcode.Invalid, "Could not read the request body.")
	}
	if int64(len(body)) > maxBytes {
		return tooLarge(maxBytes)
	}
	if optional && len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return DecodeJSON(body, dst)
}

func tooLarge(max int64) error {
	return errcode.New(errcode.TooLarge, "The request body is larger than %d bytes.", max)
}

// DecodeJSON decodes one JSON object from data into dst with the strict
// rules of decodeJSON. Every error it returns is an *errcode.Error.
func DecodeJSON(data []byte, dst any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errcode.New(errcode.Invalid, "The request body is empty; a JSON object is required.")
	}
	if t := bytes.TrimSpace(data); t[0] != '{' {
		return errcode.New(errcode.Invalid, "The request body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errcode.New(errcode.Invalid, "Malformed JSON: unexpected data after the object.")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errcode.New(errcode.Invalid, "Malformed JSON at byte %d.", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errcode.New(errcode.Invalid, "Malformed JSON: the body ends too early.")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return errcode.New(errcode.Invalid, "The request body must be a JSON object.")
		}
		return errcode.Field(field, "Field %q must be %s, not %s.", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errcode.Field(name, "Unknown field %q.", name)
	}
	return errcode.New(errcode.Invalid, "Malformed JSON.")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return fmt.Sprintf("of type %s", goKind)
}
