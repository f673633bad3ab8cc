package cli

import (
	"context"

	"github.com/kiln-go/kiln/resource/bunlayer"
)

// OpenDatabase opens the database database_url names, its PostgreSQL pool
// bounded by database_max_conns (bunlayer.DefaultMaxConns when it is not
// set): an app's Build opens its data layer with it.
func OpenDatabase(ctx context.Context, cfg *Config) (*bunlayer.Layer, error) {
	return bunlayer.Open(ctx, cfg.DatabaseURL, bunlayer.WithMaxConns(cfg.DatabaseMaxConns))
}
