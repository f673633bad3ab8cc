package web_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// web imports no strategy and no add-on, directly or not: it finds their
// routes on the authentication section (web/authroute).
func TestWebImportsNoStrategyOrAddOn(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kiln-go/kiln/web").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/kiln-go/kiln/web/authroute") {
		t.Fatalf("web's dependencies lack web/authroute: %v", deps)
	}
	for _, dep := range deps {
		for _, forbidden := range []string{
			"github.com/kiln-go/kiln/extensions/authentication/password",
			"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere",
		} {
			if dep == forbidden || strings.HasPrefix(dep, strings.TrimSuffix(forbidden, "/")+"/") {
				t.Errorf("web imports %s", dep)
			}
		}
	}
}
