package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"

	"github.com/kiln-go/kiln/web/ratelimit"
)

// A sign-in handler counts the attempt before checking the password and
// gives the tokens back when it was right: only failures count.
func Example() {
	limiter, err := ratelimit.New(nil, ratelimit.Limits{
		SignInPerIdentity: ratelimit.Rule{Burst: 3}, // window: the default 15m
	})
	if err != nil {
		panic(err)
	}
	signIn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempt, err := limiter.SignIn(r, r.FormValue("email"))
		if err != nil {
			ratelimit.Deny(w, r, err) // 429 with Retry-After, or 503
			return
		}
		if r.FormValue("password") != "correct horse" {
			http.Error(w, "invalid email or password", http.StatusUnauthorized)
			return
		}
		attempt.Succeeded(r.Context())
		fmt.Fprintln(w, "welcome")
	})
	srv := httptest.NewServer(signIn)
	defer srv.Close()
	for _, password := range []string{"correct horse", "guess1", "guess2", "guess3", "guess4", "correct horse"} {
		res, err := http.PostForm(srv.URL, url.Values{"email": {"ann@example.com"}, "password": {password}})
		if err != nil {
			panic(err)
		}
		res.Body.Close()
		if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil {
			fmt.Printf("%s: %d, retry in %d min\n", password, res.StatusCode, (secs+59)/60)
			continue
		}
		fmt.Printf("%s: %d\n", password, res.StatusCode)
	}
	// Output:
	// correct horse: 200
	// guess1: 401
	// guess2: 401
	// guess3: 401
	// guess4: 429, retry in 5 min
	// correct horse: 429, retry in 5 min
}
