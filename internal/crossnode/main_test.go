package crossnode_test

import (
	"testing"

	"github.com/kiln-go/kiln/internal/testdb"
)

// TestMain says which tests skipped for want of a service.
func TestMain(m *testing.M) { testdb.Main(m) }
