package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Detail is one of several problems reported by one error response.
type Detail struct {
	// Field is the field's path, if any.
	Field string `json:"field,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Object is the object concerned ("Route/x"), if any.
	Object string `json:"object,omitempty"`
}

// APIError is an error answered by the admin API, decoded from its envelope
// `{"error":{"code","message","field","object","details"}}`.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the envelope's code: invalid, not_found, unauthorized, conflict, …
	Code string
	// Message says what is wrong.
	Message string
	// Field is the offending field's path (spec.matches[0].path), if any.
	Field string
	// Object is the object concerned ("Route/x"), if any.
	Object string
	// Details lists every problem when there are several.
	Details []Detail
	// Hint is advice added by the client (e.g. where the token came from on a 401).
	Hint string
}

// Error renders `400 invalid: Route/x: spec.matches[0].path.type: message`, then one
// indented line per further detail, then the hint.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", e.StatusCode, e.Code, problemText(e.Object, e.Field, e.Message))
	for _, d := range e.Details {
		if d.Object == e.Object && d.Field == e.Field && d.Message == e.Message {
			continue
		}
		b.WriteString("\n  " + problemText(d.Object, d.Field, d.Message))
	}
	if e.Hint != "" {
		b.WriteString("\n  hint: " + e.Hint)
	}
	return b.String()
}

// problemText joins object, field and message, leaving out the empty ones.
func problemText(object, field, message string) string {
	parts := make([]string, 0, 3)
	for _, p := range []string{object, field, message} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ": ")
}

// IsCode reports whether err is an APIError with the given code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// decodeError builds the APIError for a failed response. A body that is not the
// envelope (a proxy's HTML page, say) is quoted, shortened.
func decodeError(status int, body []byte) *APIError {
	var env struct {
		Error *struct {
			Code    string   `json:"code"`
			Message string   `json:"message"`
			Field   string   `json:"field"`
			Object  string   `json:"object"`
			Details []Detail `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err == nil && env.Error != nil && env.Error.Code != "" {
		e := env.Error
		return &APIError{StatusCode: status, Code: e.Code, Message: e.Message, Field: e.Field,
			Object: e.Object, Details: e.Details}
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if text == "" {
		text = "(empty response)"
	}
	return &APIError{StatusCode: status, Code: codeFor(status), Message: "unexpected response: " + text}
}

// codeFor names a status that came without an envelope.
func codeFor(status int) string {
	switch status {
	case 400:
		return "invalid"
	case 401:
		return "unauthorized"
	case 403:
		return "forbidden"
	case 404:
		return "not_found"
	case 409:
		return "conflict"
	case 413:
		return "too_large"
	case 503:
		return "unavailable"
	}
	return "http_error"
}
