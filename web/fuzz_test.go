package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzInput decodes arbitrary bodies as the auth routes do: each is read
// or refused with a 4xx, never a panic or a 500, and what is read holds
// only the named fields, as UTF-8 text. Plain `go test` runs the seeds in
// testdata/fuzz/FuzzInput; `go test -fuzz FuzzInput ./web` explores.
func FuzzInput(f *testing.F) {
	fields := []string{"email", "password", "password_confirmation"}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		in, err := input(r, fields...)
		if err != nil {
			status, msg := StatusOf(err)
			if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge && status != http.StatusUnsupportedMediaType || msg == "" {
				t.Fatalf("%q %q: %d %q (%v)", contentType, body, status, msg, err)
			}
			return
		}
		for k, v := range in {
			if !text(v) || (k != "email" && k != "password" && k != "password_confirmation") {
				t.Fatalf("%q %q: read %q = %#v", contentType, body, k, v)
			}
		}
	})
}
