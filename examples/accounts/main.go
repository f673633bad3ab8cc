// Command accounts is the guide's complete example: accounts with password
// sign-in, a live page over a WebSocket, and auto sign-out — change the
// password in one window and every other window signs out at once.
//
//	go run ./examples/accounts --dev      # serve on http://127.0.0.1:4000 (SQLite), with /dev/mailbox
//	go run ./examples/accounts --help     # serve, migrate, tokens revoke|expunge
package main

import (
	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/web/ratelimit"
)

func main() { cli.Main(accounts()) }

// accounts is the example's command line.
func accounts() cli.App {
	return cli.App{
		Name:  "accounts",
		Short: "kiln's accounts example: sign-in, a live page and auto sign-out",
		Build: build,
		// The config sections build reads, besides the command line's own
		// settings.
		Sections: []string{resource.ConfigSection, live.SettingsSchema.Name, ratelimit.LimitsSchema.Name},
	}
}
