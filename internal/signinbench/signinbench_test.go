package signinbench_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/signinbench"
)

// Run sends each client's sign-ins as its account and counts the answers:
// a 200 with a token is a sign-in, every other answer is counted by status,
// a 200 without a token is an error.
func TestRunCounts(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != signinbench.DefaultSignInPath || r.Header.Get("Accept") != "application/json" {
			http.Error(w, "wrong route", http.StatusNotFound)
			return
		}
		email := r.PostFormValue("email")
		mu.Lock()
		seen[email]++
		mu.Unlock()
		switch {
		case r.PostFormValue("password") != "right":
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"authentication failed"}`)
		case strings.HasPrefix(email, "locked"):
			http.Error(w, "database is locked", http.StatusInternalServerError)
		case strings.HasPrefix(email, "empty"):
			fmt.Fprint(w, `{"user":{}}`)
		default:
			fmt.Fprint(w, `{"token":"t","user":{}}`)
		}
	}))
	defer srv.Close()
	accounts := []signinbench.Account{
		{Identity: "ok@example.com", Password: "right"},
		{Identity: "wrong@example.com", Password: "wrong"},
		{Identity: "locked@example.com", Password: "right"},
		{Identity: "empty@example.com", Password: "right"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := signinbench.Run(ctx, signinbench.Options{BaseURL: srv.URL, Concurrency: 8, PerClient: 3, Accounts: accounts})
	if err != nil {
		t.Fatal(err)
	}
	if res.SignIns != 6 || res.Failures[http.StatusUnauthorized] != 6 || res.Failures[http.StatusInternalServerError] != 6 || len(res.Failures) != 2 {
		t.Errorf("counted %d sign-ins and failures %v; want 6, and 6 × 401, 6 × 500", res.SignIns, res.Failures)
	}
	if res.ServerErrors() != 6 {
		t.Errorf("ServerErrors = %d; want 6", res.ServerErrors())
	}
	if n := len(res.Errors); n != 1 {
		t.Errorf("errors %v; want the 200s without a token", res.Errors)
	}
	for msg, n := range res.Errors {
		if n != 6 || !strings.Contains(msg, "a 200 without a token") {
			t.Errorf("%d × %q; want 6 × a 200 without a token", n, msg)
		}
	}
	for _, a := range accounts {
		if seen[a.Identity] != 6 {
			t.Errorf("%s signed in %d times; want 6 (2 clients × 3)", a.Identity, seen[a.Identity])
		}
	}
	if res.PerSecond <= 0 || res.P99 < res.P50 || res.Concurrency != 8 {
		t.Errorf("rate %v/s, p50 %v, p99 %v, %d clients", res.PerSecond, res.P50, res.P99, res.Concurrency)
	}
	if s := res.String(); !strings.Contains(s, "8 clients") || !strings.Contains(s, "6 × 500") {
		t.Errorf("summary %q", s)
	}
}

// Run refuses options that would send nothing or never stop.
func TestRunRefusesBadOptions(t *testing.T) {
	ok := signinbench.Options{BaseURL: "http://127.0.0.1:1", Concurrency: 1, PerClient: 1, Accounts: signinbench.Accounts("x", 1, "p")}
	for name, change := range map[string]func(*signinbench.Options){
		"no URL":         func(o *signinbench.Options) { o.BaseURL = "" },
		"no clients":     func(o *signinbench.Options) { o.Concurrency = 0 },
		"no stop":        func(o *signinbench.Options) { o.PerClient = 0 },
		"negative count": func(o *signinbench.Options) { o.PerClient, o.Duration = -1, time.Second },
		"no accounts":    func(o *signinbench.Options) { o.Accounts = nil },
	} {
		o := ok
		change(&o)
		if _, err := signinbench.Run(context.Background(), o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
