// Package formtest makes request bodies for the tests of form handling.
package formtest

import (
	"bytes"
	"mime/multipart"
	"testing"
)

// BigMultipart is a multipart/form-data body with the field name=value
// and a file of size bytes, large enough that net/http's multipart parser
// would spill it into a temporary file. It returns the body and its
// Content-Type.
func BigMultipart(t testing.TB, name, value string, size int) ([]byte, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField(name, value); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("upload", "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(bytes.Repeat([]byte("k"), size)); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return body.Bytes(), mw.FormDataContentType()
}
