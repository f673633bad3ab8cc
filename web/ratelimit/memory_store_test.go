package ratelimit_test

import (
	"testing"

	"github.com/kiln-go/kiln/web/ratelimit"
	"github.com/kiln-go/kiln/web/ratelimit/ratelimittest"
)

func TestMemoryStoreConformance(t *testing.T) {
	ratelimittest.Run(t, ratelimittest.Config{New: func(*testing.T) ratelimit.Store { return ratelimit.NewMemoryStore() }})
}
