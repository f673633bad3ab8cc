package web_test

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/web"
	"github.com/kiln-go/kiln/web/authroute"
)

// magicCode is a strategy declared only in this file: a user signs in
// with their email and a code every user shares. It serves one route,
// POST /auth/<subject>/magic_code/sign_in, which web knows nothing of.
type magicCode struct {
	code string
	// get is the view of the read action Transform adds; nil before.
	get *resource.View[any, resource.Input]
}

// magicUser is a user who signs in with a magic code only.
type magicUser struct {
	ID    uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Email string    `bun:",unique,notnull" validate:"required,email"`
}

const activityMagicSignIn authroute.Activity = "magic_code/sign_in"

var (
	_ authentication.Strategy = magicCode{}
	_ authroute.Provider      = magicCode{}
)

func (magicCode) StrategyName() string { return "magic_code" }

func (m magicCode) Transform(_ *resource.BuildContext, d *resource.Declaration, _ authentication.Authentication) authentication.Strategy {
	m.get = resource.NewView[any, resource.Input](resource.Read{Name: "get_by_email_for_magic_code", GetBy: []string{"email"}})
	d.AddAction(m.get)
	return m
}

func (magicCode) Verify(*resource.BuildContext, *resource.Declaration, authentication.Authentication) {
}

func (m magicCode) Routes(rt authroute.Router) {
	rt.Handle(http.MethodPost, "magic_code/sign_in", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := rt.Input(r, "email", "code")
		if err != nil {
			rt.Answer(w, r, activityMagicSignIn, nil, err)
			return
		}
		failed := fmt.Errorf("%w: wrong email or code", authentication.ErrAuthenticationFailed)
		if subtle.ConstantTimeCompare([]byte(in["code"]), []byte(m.code)) != 1 {
			rt.Answer(w, r, activityMagicSignIn, nil, failed)
			return
		}
		auth := rt.Auth()
		user, err := m.get.Get(r.Context(), auth.Domain(), resource.Input{"email": in["email"]})
		if err != nil {
			rt.Answer(w, r, activityMagicSignIn, nil, failed)
			return
		}
		token, claims, err := auth.Issue(r.Context(), user, authentication.IssueOptions{ExtraData: rt.ExtraData(r)})
		rt.Answer(w, r, activityMagicSignIn, &authentication.Session{Record: user, Token: token, Claims: claims}, err)
	}))
}

// A strategy declared in a test gets working routes through web: its
// sign-in answers JSON with a token and the user, or a 303 with a session
// cookie that authenticates; a wrong code is 401 and a cross-origin post
// 403. The password strategy, not declared, serves nothing.
func TestStrategyDeclaredInATestGetsRoutes(t *testing.T) {
	ctx := context.Background()
	tokens := resource.New[accountstest.Token]("token", resource.Table("tokens"), tokenresource.Token{})
	users := resource.New[magicUser]("user", resource.Table("users"),
		resource.Actions{resource.Create{Name: "create", Accept: []string{"email"}}},
		authentication.Authentication{
			Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: authentication.SecretString(accountstest.Secret),
				StoreAllTokens: true, RequireTokenPresenceForAuthentication: true},
			Strategies: []authentication.Strategy{magicCode{code: "open sesame"}},
		})
	layer := testdb.SQLite(t)
	d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := users.Create(ctx, d, "create", resource.Input{"email": "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	auth, err := authentication.For(d, users)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := web.NewSessions([]byte("a cookie key of at least 32 bytes!!"))
	if err != nil {
		t.Fatal(err)
	}
	glue := web.New(auth, sessions)
	srv := httptest.NewServer(glue.Routes())
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	post := func(path string, form url.Values, header ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	right := url.Values{"email": {"ada@example.com"}, "code": {"open sesame"}}

	resp, body := post("/auth/user/magic_code/sign_in", right, "Accept", "application/json")
	var out struct {
		Token string
		User  map[string]any
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JSON sign-in answered %d: %s (%v)", resp.StatusCode, body, err)
	}
	if _, err := auth.Verify(ctx, out.Token); err != nil {
		t.Errorf("the token of the JSON sign-in does not verify: %v", err)
	}
	if out.User["email"] != "ada@example.com" {
		t.Errorf("the JSON sign-in answered user %v", out.User)
	}

	resp, body = post("/auth/user/magic_code/sign_in", right)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("form sign-in answered %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessions.Name {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("the form sign-in set no session cookie")
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(cookie)
	p, err := glue.Authenticate(req)
	if err != nil {
		t.Fatalf("the session cookie does not authenticate: %v", err)
	}
	if u, ok := p.User.(*magicUser); !ok || u.Email != "ada@example.com" {
		t.Errorf("the session cookie authenticates %#v", p.User)
	}

	wrong := url.Values{"email": {"ada@example.com"}, "code": {"open barley"}}
	if resp, body := post("/auth/user/magic_code/sign_in", wrong, "Accept", "application/json"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error":"authentication failed"`) {
		t.Errorf("a wrong code answered %d: %s", resp.StatusCode, body)
	}
	if resp, body := post("/auth/user/magic_code/sign_in", right, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-origin sign-in answered %d: %s", resp.StatusCode, body)
	}
	if resp, body := post("/auth/user/password/sign_in", url.Values{"email": {"ada@example.com"}, "password": {"password123"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the password sign-in, whose strategy is not declared, answered %d: %s", resp.StatusCode, body)
	}
}

// The activities DefaultController knows are those the password strategy
// and log_out_everywhere answer with.
func TestActivitiesAreTheProvidersOwn(t *testing.T) {
	for _, tc := range []struct{ web, provider authroute.Activity }{
		{web.ActivityRegister, password.ActivityRegister},
		{web.ActivitySignIn, password.ActivitySignIn},
		{web.ActivityChangePassword, password.ActivityChange},
		{web.ActivityResetRequest, password.ActivityResetRequest},
		{web.ActivityReset, password.ActivityReset},
		{web.ActivityLogOutEverywhere, logouteverywhere.Activity},
	} {
		if tc.web != tc.provider {
			t.Errorf("web names activity %q, its provider %q", tc.web, tc.provider)
		}
	}
}
