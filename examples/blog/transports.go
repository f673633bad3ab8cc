package main

// The live transports the app can use, chosen at run time by pubsub_url
// (postgres://…, redis://… or nats://…). Each links its client library
// into the app and registers its URL schemes when imported; an app that
// uses one imports that one alone. Without pubsub_url, the app runs on
// one node or, on a SQLite file, through a table of that file, and needs
// none of them.
import (
	_ "github.com/kiln-go/kiln/live/pubsub/nats"
	_ "github.com/kiln-go/kiln/live/pubsub/postgres"
	_ "github.com/kiln-go/kiln/live/pubsub/redis"
)
