package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxFormBytes is the largest request body PostForm and the auth routes
// read: 64 KiB.
const MaxFormBytes = 64 << 10

// RequestError is a request body that cannot be read as a form or a JSON
// object. Status is the HTTP status to answer (400, 413 or 415); Message is
// safe to show.
type RequestError struct {
	Status  int
	Message string
}

func (e *RequestError) Error() string { return "kiln/web: " + e.Message }

func badRequest(format string, args ...any) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// PostForm reads the request's application/x-www-form-urlencoded body, at
// most MaxFormBytes, and returns its values (also kept in r.PostForm, so
// r.PostFormValue answers from them afterwards). Every key and value is
// valid UTF-8 without NUL. A multipart body is refused unread, so it never
// leaves temporary files, whatever request copy (r.WithContext) it is
// called on. The error is a *RequestError: answer its Status.
func PostForm(r *http.Request) (url.Values, error) {
	if r.PostForm != nil {
		return r.PostForm, nil
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case r.Header.Get("Content-Type") == "" && r.ContentLength == 0:
		r.PostForm = url.Values{}
		return r.PostForm, nil
	case err != nil || ct != "application/x-www-form-urlencoded":
		return nil, &RequestError{Status: http.StatusUnsupportedMediaType,
			Message: "the body must be application/x-www-form-urlencoded"}
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("the form cannot be read")
	}
	for k, vs := range vals {
		if !text(k) {
			return nil, badRequest("the form is not valid UTF-8 text")
		}
		for _, v := range vs {
			if !text(v) {
				return nil, badRequest("%s is not valid UTF-8 text", k)
			}
		}
	}
	r.PostForm = vals
	return vals, nil
}

// readBody reads at most MaxFormBytes of the request's body.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxFormBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &RequestError{Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("the body is larger than %d bytes", MaxFormBytes)}
	case err != nil:
		return nil, badRequest("the body cannot be read")
	}
	return body, nil
}

// text reports whether s is valid UTF-8 without NUL, which no form field of
// kiln's takes and which a database may refuse.
func text(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// input reads a form post or a JSON object (at most MaxFormBytes), keeping
// only the named fields, each a string given at most once.
func input(r *http.Request, fields ...string) (map[string]string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		return jsonInput(r, fields)
	}
	vals, err := PostForm(r)
	if err != nil {
		return nil, err
	}
	in := map[string]string{}
	for _, f := range fields {
		switch vs := vals[f]; len(vs) {
		case 0:
		case 1:
			in[f] = vs[0]
		default:
			return nil, badRequest("%s is given more than once", f)
		}
	}
	return in, nil
}

// jsonInput reads a JSON object whose named fields are strings; other
// fields are ignored, and no field may appear twice.
func jsonInput(r *http.Request, fields []string) (map[string]string, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(body) {
		return nil, badRequest("the body is not valid UTF-8")
	}
	notObject := badRequest("the body is not a JSON object")
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	wanted := map[string]bool{}
	for _, f := range fields {
		wanted[f] = true
	}
	seen := map[string]bool{}
	in := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		key := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, notObject
		}
		if seen[key] {
			return nil, badRequest("%s is given more than once", key)
		}
		seen[key] = true
		if !wanted[key] {
			continue
		}
		var s string
		if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return nil, badRequest("%s must be a string", key)
		}
		if !text(s) {
			return nil, badRequest("%s is not valid UTF-8 text", key)
		}
		in[key] = s
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, notObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, notObject
	}
	return in, nil
}
