package cli_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTransportLinked: cli imports none of the network transports, so
// that an app links only those it imports itself (cli.PubSub's SQLite
// table needs no client library beyond the data layer's).
func TestNoTransportLinked(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/kiln-go/kiln/cli").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, unwanted := range []string{
			"github.com/kiln-go/kiln/live/pubsub/postgres",
			"github.com/kiln-go/kiln/live/pubsub/redis",
			"github.com/kiln-go/kiln/live/pubsub/nats",
			"github.com/redis/go-redis",
			"github.com/nats-io/",
		} {
			if strings.HasPrefix(pkg, unwanted) {
				t.Errorf("cli links %s", pkg)
			}
		}
	}
}
