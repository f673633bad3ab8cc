// Package skipper has a test that skips for want of Redis, for
// TestSkipLineWithoutTerminal, which runs go test on it.
package skipper

import (
	"testing"

	"github.com/kiln-go/kiln/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestNeedsRedis(t *testing.T) { testdb.RedisURL(t) }
