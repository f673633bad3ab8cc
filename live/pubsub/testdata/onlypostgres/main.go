// Command onlypostgres is an app that imports one transport, PostgreSQL:
// TestOneTransportLinksOne checks that it links no other transport's
// client library, and that a URL of another transport says which package
// to import. It opens the URL of its argument and prints the error, if
// any.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/kiln-go/kiln/live/pubsub"
	_ "github.com/kiln-go/kiln/live/pubsub/postgres"
)

func main() {
	ps, err := pubsub.FromURL(context.Background(), os.Args[1], nil)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	if err := ps.Close(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
