package depgraph_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the project's module path.
const module = "github.com/kiln-go/kiln/"

// allowed is every import of a project package by another, keyed by the
// importer, paths relative to the module; test files are not counted. A
// new edge fails TestImportEdges: if the import is right, add it here in
// the same change, so that a reviewer sees the layering move. An edge that
// is gone fails too: remove it, so that it cannot come back unseen.
var allowed = map[string][]string{
	"cli":                       {"dsl", "dsl/configfile", "extensions/authentication", "extensions/tokenresource", "live", "live/pubsub", "live/pubsub/sqlite", "resource", "resource/bunlayer", "revocation"},
	"dsl/configfile":            {"dsl"},
	"examples/accounts":         {"cli", "dsl", "examples/accounts/users", "extensions/authentication", "extensions/authentication/password", "extensions/tokenresource", "live", "live/pubsub/nats", "live/pubsub/postgres", "live/pubsub/redis", "resource", "resource/bunlayer", "revocation", "web", "web/ratelimit", "web/ratelimit/postgres", "web/ratelimit/redis"},
	"examples/accounts/users":   {"extensions/authentication", "extensions/authentication/logouteverywhere", "extensions/authentication/password", "extensions/tokenresource", "extensions/tokenresource/tokenrevocation", "resource"},
	"examples/blog":             {"cli", "dsl", "examples/accounts/users", "extensions/authentication", "live", "live/pubsub/nats", "live/pubsub/postgres", "live/pubsub/redis", "resource", "resource/bunlayer", "web"},
	"examples/quickstart":       {"resource", "resource/bunlayer"},
	"extensions/authentication": {"dsl", "extensions/tokenresource", "resource"},
	"extensions/authentication/logouteverywhere": {"dsl", "extensions/authentication", "extensions/tokenresource", "resource", "revocation", "web/authroute"},
	"extensions/authentication/password":         {"dsl", "extensions/authentication", "extensions/tokenresource", "resource", "revocation", "web/authroute", "web/ratelimit"},
	"extensions/tokenresource":                   {"dsl", "resource", "revocation"},
	"extensions/tokenresource/tokenrevocation":   {"extensions/tokenresource", "resource", "revocation"},
	"internal/accountstest":                      {"extensions/authentication", "extensions/authentication/logouteverywhere", "extensions/authentication/password", "extensions/tokenresource", "internal/testdb", "resource"},
	"internal/benchclient":                       {"internal/sessionbench"},
	"internal/crossnode":                         {"internal/latency", "live", "live/pubsub", "live/pubsub/nats", "live/pubsub/postgres", "live/pubsub/redis", "revocation"},
	"internal/dslgen":                            {"cli", "dsl", "extensions/authentication", "extensions/authentication/logouteverywhere", "extensions/authentication/password", "extensions/tokenresource", "live", "resource", "web/ratelimit"},
	"internal/livetest":                          {"extensions/authentication", "extensions/authentication/logouteverywhere", "extensions/authentication/password", "extensions/tokenresource", "extensions/tokenresource/tokenrevocation", "internal/accountstest", "internal/testdb", "live", "resource", "resource/bunlayer", "web"},
	"internal/sessionbench":                      {"extensions/authentication", "extensions/authentication/password", "extensions/tokenresource", "extensions/tokenresource/tokenrevocation", "internal/accountstest", "internal/livetest", "live", "resource", "resource/bunlayer", "revocation", "web"},
	"internal/signinbench":                       {"internal/latency"},
	"internal/testdb":                            {"resource/bunlayer"},
	"live":                                       {"dsl", "revocation"},
	"live/pubsub":                                {"live"},
	"live/pubsub/internal/transport":             {"live"},
	"live/pubsub/nats":                           {"live", "live/pubsub", "live/pubsub/internal/transport"},
	"live/pubsub/postgres":                       {"live", "live/pubsub", "live/pubsub/internal/transport"},
	"live/pubsub/redis":                          {"live", "live/pubsub", "live/pubsub/internal/transport"},
	"live/pubsub/sqlite":                         {"live", "live/pubsub/internal/transport"},
	"resource":                                   {"dsl"},
	"resource/bunlayer":                          {"resource"},
	"resource/datalayertest":                     {"resource"},
	"resource/notifiertest":                      {"resource", "resource/datalayertest"},
	"web":                                        {"extensions/authentication", "extensions/tokenresource", "live", "resource", "revocation", "web/authroute", "web/ratelimit"},
	"web/authroute":                              {"extensions/authentication", "web/ratelimit"},
	"web/ratelimit":                              {"dsl"},
	"web/ratelimit/postgres":                     {"web/ratelimit"},
	"web/ratelimit/ratelimittest":                {"web/ratelimit"},
	"web/ratelimit/redis":                        {"web/ratelimit"},
}

// forbidden are outside modules a package must not reach, directly or
// through any import: the core does not load files (viper lives in
// dsl/configfile), the live endpoint knows nothing of tokens or databases,
// and the resource layer names no database driver. The empty string stands
// for every package outside the standard library but the package itself.
var forbidden = []struct {
	pkg  string
	deps []string
	why  string
}{
	{"live", []string{"github.com/spf13/viper", "github.com/golang-jwt/jwt", "github.com/uptrace/bun"},
		"live shares only package revocation with the token store; it must not reach the resource layer, tokens or config loading"},
	{"revocation", []string{""},
		"revocation is a leaf: the reason and the endpoint interface, nothing else"},
	{"resource", []string{"github.com/spf13/viper", "github.com/uptrace/bun"},
		"the resource layer builds without config loading (dsl/configfile) and names no database driver (resource/bunlayer)"},
	{"dsl", []string{"github.com/spf13/viper"},
		"dsl declares and reads sections; loading files is dsl/configfile's"},
}

// goList runs go list with args in the module and returns its output's lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestImportEdges compares the imports between the project's packages
// with allowed, both ways.
func TestImportEdges(t *testing.T) {
	got := map[string][]string{}
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...") {
		fields := strings.Fields(line)
		from := strings.TrimPrefix(fields[0], module)
		for _, imp := range fields[1:] {
			if to, ok := strings.CutPrefix(imp, module); ok {
				got[from] = append(got[from], to)
			}
		}
	}
	for from, tos := range got {
		for _, to := range tos {
			if !slices.Contains(allowed[from], to) {
				t.Errorf("new import edge %s -> %s; if the layering is meant to change, add %q to allowed[%q] in internal/depgraph/depgraph_test.go", from, to, to, from)
			}
		}
	}
	for from, tos := range allowed {
		for _, to := range tos {
			if !slices.Contains(got[from], to) {
				t.Errorf("import edge %s -> %s is gone; remove %q from allowed[%q] in internal/depgraph/depgraph_test.go", from, to, to, from)
			}
		}
	}
}

// TestForbiddenDependencies checks that the core packages do not reach
// the outside modules listed in forbidden.
func TestForbiddenDependencies(t *testing.T) {
	for _, f := range forbidden {
		t.Run(f.pkg, func(t *testing.T) {
			deps := goList(t, "-deps", "./"+f.pkg)
			if len(deps) == 0 || deps[len(deps)-1] != module+f.pkg {
				t.Fatalf("go list -deps ./%s did not end with the package itself: %v", f.pkg, deps)
			}
			for _, d := range deps[:len(deps)-1] {
				for _, bad := range f.deps {
					if bad == "" && !standard(d) || bad != "" && (d == bad || strings.HasPrefix(d, bad+"/")) {
						t.Errorf("%s depends on %s; %s", f.pkg, d, f.why)
					}
				}
			}
		})
	}
}

// standard reports whether an import path is of the standard library:
// its first element has no dot.
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
