package web_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/internal/formtest"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/web"
)

// formRoutes are the auth routes that read a body, with their fields.
var formRoutes = map[string][]string{
	"/auth/user/password/register":      {"email", "password", "password_confirmation"},
	"/auth/user/password/sign_in":       {"email", "password"},
	"/auth/user/password/change":        {"current_password", "password", "password_confirmation"},
	"/auth/user/password/reset_request": {"email"},
	"/auth/user/password/reset":         {"reset_token", "password", "password_confirmation"},
}

// badBody is a body an auth route must refuse with status.
type badBody struct {
	name, contentType string
	body              func(fields []string) string
	status            int
}

func formOf(fields []string, value string) string {
	var parts []string
	for _, f := range fields {
		parts = append(parts, f+"="+value)
	}
	return strings.Join(parts, "&")
}

func jsonBody(fields []string, value string) string {
	var parts []string
	for _, f := range fields {
		parts = append(parts, fmt.Sprintf("%q:%s", f, value))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

const formType = "application/x-www-form-urlencoded"

var badBodies = []badBody{
	{"form: invalid UTF-8", formType, func(f []string) string { return formOf(f, "%ff%fe%fd") }, http.StatusBadRequest},
	{"form: NUL", formType, func(f []string) string { return formOf(f, "a%00b%40example.com") }, http.StatusBadRequest},
	{"form: bad escape", formType, func(f []string) string { return formOf(f, "%zz") }, http.StatusBadRequest},
	{"form: a field twice", formType, func(f []string) string { return formOf(f, "x") + "&" + f[0] + "=y" }, http.StatusBadRequest},
	{"form: over 64 KiB", formType, func(f []string) string { return formOf(f, strings.Repeat("a", 70<<10)) }, http.StatusRequestEntityTooLarge},
	{"multipart", "multipart/form-data; boundary=xx", func(f []string) string {
		return "--xx\r\nContent-Disposition: form-data; name=\"" + f[0] + "\"\r\n\r\nx\r\n--xx--\r\n"
	}, http.StatusUnsupportedMediaType},
	{"text/plain", "text/plain", func(f []string) string { return formOf(f, "x") }, http.StatusUnsupportedMediaType},
	{"bad content type", "a/b/c; ;", func(f []string) string { return formOf(f, "x") }, http.StatusUnsupportedMediaType},
	{"json: array values", "application/json", func(f []string) string { return jsonBody(f, `["a@example.com"]`) }, http.StatusBadRequest},
	{"json: object values", "application/json", func(f []string) string { return jsonBody(f, `{"$ne":""}`) }, http.StatusBadRequest},
	{"json: number values", "application/json", func(f []string) string { return jsonBody(f, `12`) }, http.StatusBadRequest},
	{"json: null values", "application/json", func(f []string) string { return jsonBody(f, `null`) }, http.StatusBadRequest},
	{"json: bool values", "application/json", func(f []string) string { return jsonBody(f, `true`) }, http.StatusBadRequest},
	{"json: NUL", "application/json", func(f []string) string { return jsonBody(f, `"a\u0000b"`) }, http.StatusBadRequest},
	{"json: invalid UTF-8", "application/json", func(f []string) string { return jsonBody(f, "\"\xff\xfe\"") }, http.StatusBadRequest},
	{"json: a field twice", "application/json", func(f []string) string {
		return strings.TrimSuffix(jsonBody(f, `"x"`), "}") + fmt.Sprintf(",%q:\"y\"}", f[0])
	}, http.StatusBadRequest},
	{"json: an array", "application/json", func([]string) string { return `[1,2]` }, http.StatusBadRequest},
	{"json: a string", "application/json", func([]string) string { return `"x"` }, http.StatusBadRequest},
	{"json: empty", "application/json", func([]string) string { return `` }, http.StatusBadRequest},
	{"json: garbage", "application/json", func([]string) string { return "\x00\xff{" }, http.StatusBadRequest},
	{"json: truncated", "application/json", func(f []string) string { return strings.TrimSuffix(jsonBody(f, `"x"`), "}") }, http.StatusBadRequest},
	{"json: trailing data", "application/json", func(f []string) string { return jsonBody(f, `"x"`) + `{}` }, http.StatusBadRequest},
	{"json: over 64 KiB", "application/json", func(f []string) string { return jsonBody(f, `"`+strings.Repeat("a", 70<<10)+`"`) }, http.StatusRequestEntityTooLarge},
}

// Every auth route answers garbage with a 4xx and a message, JSON or not,
// signed in or not; none answers 500. Empty values are a validation error
// (or a failed sign-in), never 500.
func TestAuthRoutesRefuseGarbage(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			h := livetest.New(t, db, livetest.Options{})
			ctx := testCtx(t)
			h.Register(t, "ada@example.com")
			cookie := livetest.CookieHeader(h.SignInCookie(t, "ada@example.com"))
			post := func(path, contentType, body string, header http.Header, wantJSON bool) (*http.Response, string) {
				hd := header.Clone()
				if hd == nil {
					hd = http.Header{}
				}
				hd.Set("Content-Type", contentType)
				if wantJSON {
					hd.Set("Accept", "application/json")
				}
				resp, b := h.Do(t, http.MethodPost, path, strings.NewReader(body), hd)
				return resp, string(b)
			}
			for path, fields := range formRoutes {
				for _, b := range badBodies {
					for _, wantJSON := range []bool{true, false} {
						resp, body := post(path, b.contentType, b.body(fields), cookie, wantJSON)
						switch {
						case wantJSON && (resp.StatusCode != b.status || !strings.HasPrefix(body, `{"error":"`)):
							t.Errorf("%s, %s: %d %s; want %d with an error", path, b.name, resp.StatusCode, body, b.status)
						case !wantJSON && (resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "?error=")):
							t.Errorf("%s, %s (form): %d to %q; want a redirect with the error", path, b.name, resp.StatusCode, resp.Header.Get("Location"))
						}
					}
				}
				for _, empty := range []struct{ contentType, body string }{
					{formType, formOf(fields, "")}, {formType, ""}, {"application/json", jsonBody(fields, `""`)}, {"application/json", `{}`},
				} {
					resp, body := post(path, empty.contentType, empty.body, cookie, true)
					if resp.StatusCode < 400 || resp.StatusCode >= 500 {
						if path != "/auth/user/password/reset_request" || resp.StatusCode != http.StatusOK {
							t.Errorf("%s, empty %q: %d %s", path, empty.body, resp.StatusCode, body)
						}
					}
				}
			}
			// The session survived all of it, and the password is unchanged.
			h.MustDial(t, ctx, cookie)
			h.SignIn(t, "ada@example.com")
			// The routes without a body ignore it.
			for _, path := range []string{"/auth/user/log_out_everywhere", "/sign-out"} {
				for _, b := range badBodies {
					if resp, body := post(path, b.contentType, b.body([]string{"x"}), nil, true); resp.StatusCode >= 500 {
						t.Errorf("%s, %s: %d %s", path, b.name, resp.StatusCode, body)
					}
				}
			}
		})
	}
}

// PostForm reads an urlencoded form into r.PostForm and refuses the rest
// with the status to answer.
func TestPostForm(t *testing.T) {
	for _, c := range []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"form", formType, "jti=abc&x=1", 0, "abc"},
		{"charset", formType + "; charset=utf-8", "jti=abc", 0, "abc"},
		{"no body", "", "", 0, ""},
		{"empty form", formType, "", 0, ""},
		{"invalid UTF-8", formType, "jti=%ff", http.StatusBadRequest, ""},
		{"invalid UTF-8 key", formType, "%ff=1", http.StatusBadRequest, ""},
		{"NUL", formType, "jti=a%00", http.StatusBadRequest, ""},
		{"bad escape", formType, "jti=%zz", http.StatusBadRequest, ""},
		{"too large", formType, "jti=" + strings.Repeat("a", web.MaxFormBytes), http.StatusRequestEntityTooLarge, ""},
		{"multipart", "multipart/form-data; boundary=xx", "--xx--\r\n", http.StatusUnsupportedMediaType, ""},
		{"json", "application/json", `{"jti":"abc"}`, http.StatusUnsupportedMediaType, ""},
		{"body without a type", "", "jti=abc", http.StatusUnsupportedMediaType, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/sessions/revoke", strings.NewReader(c.body))
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			vals, err := web.PostForm(r)
			if c.status != 0 {
				re, ok := err.(*web.RequestError)
				if !ok || re.Status != c.status || re.Message == "" {
					t.Fatalf("PostForm: %v, want a *RequestError with status %d", err, c.status)
				}
				if status, msg := web.StatusOf(err); status != c.status || msg != re.Message {
					t.Fatalf("StatusOf: %d %q", status, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if vals.Get("jti") != c.want || r.PostFormValue("jti") != c.want {
				t.Fatalf("jti %q, r.PostFormValue %q, want %q", vals.Get("jti"), r.PostFormValue("jti"), c.want)
			}
		})
	}
}

// A large multipart body leaves no temporary file: not posted to an auth
// route, nor to a handler that reads it with PostForm on a request copy
// (r.WithContext), whose multipart form net/http would never clean up.
// The body is larger than the 32 MB net/http keeps in memory.
func TestMultipartLeavesNoTemporaryFile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // os.TempDir, where multipart files go
	h := livetest.New(t, "sqlite", livetest.Options{})
	h.Register(t, "ada@example.com")
	cookie := livetest.CookieHeader(h.SignInCookie(t, "ada@example.com"))
	app := httptest.NewServer(h.Web.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(r.Context())
		if _, err := web.PostForm(r); err != nil {
			status, msg := web.StatusOf(err)
			http.Error(w, msg, status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	t.Cleanup(app.Close)

	big, contentType := formtest.BigMultipart(t, "jti", "abc", 40<<20)
	for _, url := range []string{h.Server.URL + "/auth/user/password/sign_in", app.URL + "/sessions/revoke"} {
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, url, bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = cookie.Clone()
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", "application/json")
		resp, err := h.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("%s: %d %s, want 415", url, resp.StatusCode, b)
		}
	}
	var left []string
	if err := filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
