package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// writeJSON answers v with status. Replies are never cached: they describe
// live state and may name peers.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a Backend returning an unencodable value gets here.
		status = http.StatusInternalServerError
		body, _ = json.Marshal(ErrorBody{Error: "the node produced a reply it cannot encode; see its log."})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

// backendError answers err from the Backend: an *Error as the Backend worded
// it, anything else as a 500 that names what failed and keeps the detail in
// the log, where it cannot leak to a caller.
func (s *Server) backendError(w http.ResponseWriter, r *http.Request, action string, err error) {
	if e, ok := errors.AsType[*Error](err); ok {
		code, msg := e.Code, e.Message
		if code < 400 || code > 599 {
			s.log.Warn("backend returned an api.Error with a non-error code", "code", code, "path", r.URL.Path, "err", msg)
			code = http.StatusInternalServerError
		}
		if msg == "" {
			msg = "the node could not " + action + " (" + http.StatusText(code) + ")."
		}
		writeError(w, code, msg)
		return
	}
	if r.Context().Err() != nil {
		// The client left; nobody reads the reply and nothing failed.
		s.log.Debug("request abandoned by client", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the request was canceled.")
		return
	}
	s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "action", action, "err", err)
	writeError(w, http.StatusInternalServerError, "the node failed to "+action+"; see its log.")
}

// decodeJSON reads a single JSON object of type T from the body. It answers
// the client itself and returns false on any problem, so the Backend only
// ever sees well-formed requests.
//
// Requiring application/json also keeps plain HTML forms out: a cross-site
// page cannot send that content type without a CORS preflight, which fails.
func decodeJSON[T any](w http.ResponseWriter, r *http.Request, dst *T) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "the request body must be JSON, sent with \"Content-Type: application/json\".")
		return false
	}
	// net/http clears this once the body is read, so a slow Backend call
	// after it is not cut short.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		status, msg := bodyError(err)
		writeError(w, status, msg)
		return false
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		if tooLarge(err) {
			status, msg := bodyError(err)
			writeError(w, status, msg)
			return false
		}
		writeError(w, http.StatusBadRequest, "the request body has data after its JSON object; send exactly one object.")
		return false
	}
	return true
}

func tooLarge(err error) bool {
	_, ok := errors.AsType[*http.MaxBytesError](err)
	return ok
}

// bodyError turns a decoding error into a status and a sentence that points
// at the problem.
func bodyError(err error) (int, string) {
	if tooLarge(err) {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than the limit of %d bytes.", MaxBodyBytes)
	}
	if errors.Is(err, io.EOF) {
		return http.StatusBadRequest, "the request body is empty; send a JSON object."
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok || errors.Is(err, io.ErrUnexpectedEOF) {
		return http.StatusBadRequest, "the request body is not valid JSON; send a JSON object."
	}
	if typ, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if typ.Field == "" {
			return http.StatusBadRequest, "the request body must be a JSON object."
		}
		return http.StatusBadRequest, fmt.Sprintf("the field %q in the request body must be a JSON %s.", typ.Field, jsonKind(typ.Type.Kind().String()))
	}
	// encoding/json has no typed error for unknown fields.
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return http.StatusBadRequest, "the request body has the unknown field " + field + "; check its spelling and that the CLI and the node are the same version."
	}
	return http.StatusBadRequest, "the request body could not be read as JSON; send a JSON object."
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	default:
		return "number"
	}
}

// nonNil keeps JSON arrays from being encoded as null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
