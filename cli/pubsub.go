package cli

import (
	"context"
	"log/slog"

	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub"
	"github.com/kiln-go/kiln/live/pubsub/sqlite"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// PubSub returns the live transport the configuration names: pubsub_url's;
// without one, on a SQLite database file, a table of that database, so
// that the commands run beside the app (tokens revoke) close its sockets
// at once; otherwise in-process (one node, one process).
func PubSub(ctx context.Context, cfg *Config, layer *bunlayer.Layer, logger *slog.Logger) (live.PubSub, error) {
	if _, file := bunlayer.SQLiteFile(cfg.DatabaseURL); cfg.PubSubURL == "" && file {
		return sqlite.New(ctx, layer.DB().DB, sqlite.WithLogger(logger))
	}
	return pubsub.FromURL(ctx, cfg.PubSubURL, logger)
}
