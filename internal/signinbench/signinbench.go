// Package signinbench measures password sign-ins per second through an
// app's HTTP contract: clients post an identity and a password to the
// password strategy's sign-in route at once, each as soon as its last
// answer is in, for a while, and count the answers.
//
//	accounts := signinbench.Accounts("bench", 16, "correct horse battery")
//	if err := signinbench.Register(ctx, baseURL, accounts); err != nil { … }
//	res, err := signinbench.Run(ctx, signinbench.Options{
//		BaseURL: baseURL, Concurrency: 16, Duration: 10 * time.Second, Accounts: accounts})
//	fmt.Println(res) // 16 clients, 10s: 412 sign-ins, 41.2/s, p50 380ms, p99 610ms; failures: none
//
// The app's rate limits must be off (or far above the load), or the
// limiter's 429s are all it measures. A sign-in counts when it answers
// 200 with a token (the JSON answer of the contract); every other answer
// is counted by status, and transport errors by message.
package signinbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kiln-go/kiln/internal/latency"
)

// Default routes and form fields of the password strategy, as the
// example app (examples/accounts) serves them.
const (
	DefaultSignInPath    = "/auth/user/password/sign_in"
	DefaultRegisterPath  = "/auth/user/password/register"
	DefaultIdentityField = "email"
)

// Account is an identity and its password.
type Account struct {
	Identity string
	Password string
}

// Accounts returns n accounts whose identities are <prefix>-<i>@example.com
// (prefix should differ between runs on one database), all with password.
func Accounts(prefix string, n int, password string) []Account {
	out := make([]Account, n)
	for i := range out {
		out[i] = Account{Identity: fmt.Sprintf("%s-%d@example.com", prefix, i), Password: password}
	}
	return out
}

// Register registers accounts through the app at baseURL (its register
// route, DefaultRegisterPath, with DefaultIdentityField), a few at a time.
// It fails on the first account the app does not register.
func Register(ctx context.Context, baseURL string, accounts []Account) error {
	hc := newClient(4)
	defer hc.CloseIdleConnections()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan Account)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range next {
				form := url.Values{DefaultIdentityField: {a.Identity}, "password": {a.Password}, "password_confirmation": {a.Password}}
				status, body, err := post(ctx, hc, baseURL+DefaultRegisterPath, form)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("answered %d: %s", status, body)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("signinbench: register %s: %w", a.Identity, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, a := range accounts {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- a
	}
	close(next)
	wg.Wait()
	return first
}

// Options configure Run.
type Options struct {
	// BaseURL is the app's root, such as http://127.0.0.1:4000.
	BaseURL string
	// Path is the sign-in route. Default: DefaultSignInPath.
	Path string
	// IdentityField is the form field of the identity. Default:
	// DefaultIdentityField.
	IdentityField string
	// Concurrency is how many clients sign in at once; each sends its next
	// sign-in when the last is answered. Must be positive.
	Concurrency int
	// Duration is how long the clients keep starting sign-ins; Run then
	// waits for those in flight. Zero: no time limit.
	Duration time.Duration
	// PerClient is how many sign-ins each client sends at most. Zero: no
	// count limit. Duration or PerClient must be positive.
	PerClient int
	// Accounts are who signs in: client i as Accounts[i % len(Accounts)].
	// Must not be empty.
	Accounts []Account
}

// Result is what a Run counted.
type Result struct {
	// Concurrency is the number of clients.
	Concurrency int
	// Elapsed is from the first sign-in sent to the last answer read.
	Elapsed time.Duration
	// SignIns is the number of sign-ins answered 200 with a token.
	SignIns int
	// PerSecond is SignIns per second of Elapsed.
	PerSecond float64
	// Failures counts the other answers by status code.
	Failures map[int]int
	// Errors counts transport errors (no answer) by message.
	Errors map[string]int
	// P50 and P99 are percentiles of the time to answer a sign-in, over
	// all answers.
	P50, P99 time.Duration
}

// ServerErrors is the number of 5xx answers.
func (r Result) ServerErrors() int {
	n := 0
	for status, count := range r.Failures {
		if status >= 500 {
			n += count
		}
	}
	return n
}

// String is a one-line summary.
func (r Result) String() string {
	var failures []string
	for status, n := range r.Failures {
		failures = append(failures, fmt.Sprintf("%d × %d", n, status))
	}
	for msg, n := range r.Errors {
		failures = append(failures, fmt.Sprintf("%d × %s", n, msg))
	}
	slices.Sort(failures)
	if len(failures) == 0 {
		failures = []string{"none"}
	}
	return fmt.Sprintf("%d clients, %v: %d sign-ins, %.1f/s, p50 %v, p99 %v; failures: %s",
		r.Concurrency, r.Elapsed.Round(time.Millisecond), r.SignIns, r.PerSecond,
		r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), strings.Join(failures, ", "))
}

// Run signs in with o.Concurrency clients for o.Duration (or o.PerClient
// times each) and counts the answers. It returns an error for bad options,
// or when ctx ends first.
func Run(ctx context.Context, o Options) (Result, error) {
	switch {
	case o.BaseURL == "":
		return Result{}, errors.New("signinbench: no BaseURL")
	case o.Concurrency <= 0:
		return Result{}, fmt.Errorf("signinbench: Concurrency %d is not positive", o.Concurrency)
	case o.Duration < 0 || o.PerClient < 0 || o.Duration == 0 && o.PerClient == 0:
		return Result{}, fmt.Errorf("signinbench: Duration %v and PerClient %d: one must be positive, neither negative", o.Duration, o.PerClient)
	case len(o.Accounts) == 0:
		return Result{}, errors.New("signinbench: no Accounts")
	}
	if o.Path == "" {
		o.Path = DefaultSignInPath
	}
	if o.IdentityField == "" {
		o.IdentityField = DefaultIdentityField
	}
	hc := newClient(o.Concurrency)
	defer hc.CloseIdleConnections()

	type answer struct {
		status int // 0 for a transport error
		err    string
		took   time.Duration
	}
	answers := make([][]answer, o.Concurrency)
	start := time.Now()
	more := func(sent int) bool {
		return ctx.Err() == nil && (o.Duration == 0 || time.Since(start) < o.Duration) && (o.PerClient == 0 || sent < o.PerClient)
	}
	var wg sync.WaitGroup
	for i := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := o.Accounts[i%len(o.Accounts)]
			form := url.Values{o.IdentityField: {acct.Identity}, "password": {acct.Password}}
			for sent := 0; more(sent); sent++ {
				began := time.Now()
				status, _, err := post(ctx, hc, o.BaseURL+o.Path, form)
				a := answer{status: status, took: time.Since(began)}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					a.err = err.Error()
				}
				answers[i] = append(answers[i], a)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("signinbench: %w", err)
	}
	res := Result{Concurrency: o.Concurrency, Elapsed: time.Since(start), Failures: map[int]int{}, Errors: map[string]int{}}
	var took []time.Duration
	for _, client := range answers {
		for _, a := range client {
			took = append(took, a.took)
			switch {
			case a.err != "":
				res.Errors[a.err]++
			case a.status == http.StatusOK:
				res.SignIns++
			default:
				res.Failures[a.status]++
			}
		}
	}
	res.PerSecond = float64(res.SignIns) / res.Elapsed.Seconds()
	res.P50, res.P99 = latency.Percentile(took, 50), latency.Percentile(took, 99)
	return res, nil
}

// newClient is an HTTP client that keeps a connection per client open and
// follows no redirects.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// post posts form, asking for JSON, and returns the answer's status and,
// for a 200, checks that it carries a token (a 200 without one is
// reported as an error).
func post(ctx context.Context, hc *http.Client, target string, form url.Values) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, "", fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		var ok struct{ Token string }
		if err := json.Unmarshal(body, &ok); err != nil || ok.Token == "" {
			return 0, "", fmt.Errorf("a 200 without a token: %.200s", body)
		}
	}
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}
