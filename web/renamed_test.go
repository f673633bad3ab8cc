package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/web"
)

// The auth routes run the strategy's and the add-on's actions under their
// configured names, and log out everywhere gives the user under the
// add-on's argument name.
func TestRoutesRunRenamedActions(t *testing.T) {
	ctx := context.Background()
	mailbox := &accountstest.Mailbox{}
	tokens := resource.New[accountstest.Token]("token", resource.Table("tokens"), tokenresource.Token{})
	users := resource.New[accountstest.User]("user", resource.Table("users"), authentication.Authentication{
		Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: authentication.SecretString(accountstest.Secret),
			StoreAllTokens: true, RequireTokenPresenceForAuthentication: true},
		Strategies: []authentication.Strategy{password.Password{IdentityField: "email", HashProvider: password.Bcrypt{Cost: 4},
			Resettable: &password.Resettable{},
			Actions:    password.ActionNames{Register: "sign_up", SignIn: "log_in", Change: "change", Set: "set", GetByIdentity: "find", RequestReset: "forgot", Reset: "reset"}}},
		AddOns: []authentication.AddOn{logouteverywhere.LogOutEverywhere{ActionName: "sign_out_all", ArgumentName: "account", ApplyOnPasswordChange: true}},
	})
	layer := testdb.SQLite(t)
	d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, layer, resource.With(mailbox))
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if decl := d.Declaration(users); decl.Action("log_in") == nil || decl.Action("sign_in_with_password") != nil || decl.Action("sign_out_all") == nil {
		t.Fatal("the actions are not renamed")
	}
	auth, err := authentication.For(d, users)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := web.NewSessions([]byte("a cookie key of at least 32 bytes!!"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(auth, sessions).Routes())
	t.Cleanup(srv.Close)
	post := func(path, bearer string, body map[string]string) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %v (%v)", path, resp.StatusCode, out, err)
		}
		return out
	}
	token := func(m map[string]any) string {
		t.Helper()
		s, _ := m["token"].(string)
		if _, err := auth.Verify(ctx, s); err != nil {
			t.Fatalf("answered %v: the token does not verify: %v", m, err)
		}
		return s
	}
	registered := token(post("/auth/user/password/register", "", map[string]string{"email": "ada@example.com", "password": "password123", "password_confirmation": "password123"}))
	signedIn := token(post("/auth/user/password/sign_in", "", map[string]string{"email": "ada@example.com", "password": "password123"}))
	changed := token(post("/auth/user/password/change", signedIn, map[string]string{"current_password": "password123", "password": "a new password", "password_confirmation": "a new password"}))
	post("/auth/user/password/reset_request", "", map[string]string{"email": "ada@example.com"})
	// The mail is sent after the answer; a request on the same connection
	// is served once it is.
	deadline := time.Now().Add(15 * time.Second)
	for mailbox.Last("ada@example.com") == "" && time.Now().Before(deadline) {
		resp, err := srv.Client().Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	reset := token(post("/auth/user/password/reset", "", map[string]string{"reset_token": mailbox.Last("ada@example.com"), "password": "a third password", "password_confirmation": "a third password"}))
	for name, tok := range map[string]string{"registered": registered, "signed in": signedIn, "changed": changed} {
		if _, err := auth.Verify(ctx, tok); err == nil {
			t.Errorf("the %s session survived the password change and the reset", name)
		}
	}
	post("/auth/user/log_out_everywhere", reset, nil)
	if _, err := auth.Verify(ctx, reset); err == nil {
		t.Error("the reset's session survived log out everywhere")
	}
}
