package live

import (
	_ "embed"
	"net/http"
)

//go:embed client.js
var clientJS []byte

// ClientJS serves client.js, the browser client: mount it beside the
// endpoint, at /live/client.js.
func ClientJS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(clientJS)
	})
}
