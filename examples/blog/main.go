// Command blog is kiln's second example: users (the accounts example's
// resources, with their sign-in and auto sign-out), their posts and
// comments, related to one another; a page of posts, newest first; and a
// post's page, where a new comment appears at once, pushed over the live
// socket.
//
//	go run ./examples/blog --dev      # serve on http://127.0.0.1:4000 (SQLite in blog-data)
//	go run ./examples/blog --help     # serve, migrate, tokens revoke|expunge
package main

import (
	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
)

func main() { cli.Main(blog()) }

// blog is the example's command line.
func blog() cli.App {
	return cli.App{
		Name:         "blog",
		Short:        "kiln's blog example: posts, comments and a live feed",
		Build:        build,
		Sections:     []string{resource.ConfigSection, live.SettingsSchema.Name},
		DataDir:      "blog-data",
		DatabaseFile: "blog.db",
	}
}
