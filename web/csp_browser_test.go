package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/internal/browsertest"
	"github.com/kiln-go/kiln/web"
)

// In a real browser, the default policy runs the page's inline script and
// style that carry the request's nonce and blocks those that do not; the
// app's own script and a WebSocket to the app itself still work.
func TestSecurityHeadersInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	path := browsertest.Chromium(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		n := web.CSPNonce(r.Context())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head>
<style nonce="%s">#a{color:rgb(1, 2, 3)}</style>
<style>#b{color:rgb(4, 5, 6)}</style>
</head><body><p id="a">a</p><p id="b">b</p>
<script nonce="%s">document.body.dataset.nonced = "ran";
var ws = new WebSocket("ws://" + location.host + "/ws");
ws.onmessage = function (e) { document.body.dataset.socket = e.data; };
ws.onerror = function () { document.body.dataset.socket = "error"; };</script>
<script>document.body.dataset.plain = "ran";</script>
<script src="/own.js"></script>
</body></html>`, n, n)
	})
	mux.HandleFunc("GET /own.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `document.body.dataset.own = "ran";`)
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte("hello"))
		_, _, _ = c.ReadMessage()
	})
	srv := httptest.NewServer(web.SecurityHeaders(mux, web.HeaderOptions{}))
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelRun := context.WithTimeout(bctx, 60*time.Second)
	t.Cleanup(cancelRun)

	type result struct {
		Nonced, Plain, Own, Socket, A, B string
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	// The socket's answer (or its error) is the last thing the page does.
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.body && document.body.dataset.socket !== undefined`,
		chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[result](`({
		Nonced: document.body.dataset.nonced || "",
		Plain: document.body.dataset.plain || "",
		Own: document.body.dataset.own || "",
		Socket: document.body.dataset.socket,
		A: getComputedStyle(document.getElementById("a")).color,
		B: getComputedStyle(document.getElementById("b")).color,
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Nonced != "ran" || got.Own != "ran" || got.Socket != "hello" || got.A != "rgb(1, 2, 3)" {
		t.Fatalf("what the policy allows did not run: %+v", got)
	}
	if got.Plain != "" || got.B == "rgb(4, 5, 6)" {
		t.Fatalf("an inline script or style without the nonce ran: %+v", got)
	}
}
