package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/store"
)

// Error codes of the envelope, each with one HTTP status.
const (
	CodeInvalid          = "invalid"
	CodeUnknownKind      = "unknown_kind"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeConflict         = "conflict"
	CodeTooLarge         = "too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

var codeStatus = map[string]int{
	CodeInvalid:          http.StatusBadRequest,
	CodeUnknownKind:      http.StatusNotFound,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodeConflict:         http.StatusConflict,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	CodeUnavailable:      http.StatusServiceUnavailable,
	CodeInternal:         http.StatusInternalServerError,
}

// Detail is one of several problems behind an error.
type Detail struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Object  string `json:"object,omitempty"`
}

// Error is what every handler returns on failure; one writer renders it as the
// envelope {"error":{code,message,field,object,details}} with the code's status.
type Error struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Field   string   `json:"field,omitempty"`
	Object  string   `json:"object,omitempty"`
	Details []Detail `json:"details,omitempty"`
	// cause is logged for internal errors and never shown.
	cause error
}

// Error renders the code and message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status of the error's code.
func (e *Error) Status() int {
	if s, ok := codeStatus[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorf builds an Error with a formatted message.
func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// fromProblems turns loader or reference problems into one error: the first problem
// gives field and object, and every problem is listed in details when there are several.
func fromProblems(code, summary string, problems []resource.Problem) *Error {
	e := &Error{Code: code, Message: summary}
	for _, p := range problems {
		d := Detail{Field: p.Field, Message: p.Message}
		if p.Kind != "" {
			d.Object = resource.Key{Kind: p.Kind, Namespace: p.Namespace, Name: p.Name}.String()
		}
		if p.Document > 0 {
			d.Message = resource.Origin{Document: p.Document, Item: p.Item}.String()[2:] + ": " + d.Message
		}
		e.Details = append(e.Details, d)
	}
	if len(e.Details) > 0 {
		first := e.Details[0]
		e.Field, e.Object = first.Field, first.Object
		if len(e.Details) == 1 {
			if first.Field != "" {
				e.Message = first.Field + ": " + problems[0].Message
			} else {
				e.Message = problems[0].Message
			}
			e.Details = nil
		}
	}
	return e
}

// asError converts any error to an *Error, mapping the store's errors to their codes.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Error{Code: CodeNotFound, Message: err.Error()}
	case errors.Is(err, store.ErrConflict):
		return &Error{Code: CodeConflict, Message: err.Error() + " (read the object again and retry)"}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Code: CodeInvalid, Message: err.Error()}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeUnavailable, Message: "database unavailable, retry", cause: err}
	}
	return &Error{Code: CodeInternal, Message: "internal error", cause: err}
}
