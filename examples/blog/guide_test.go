package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuideShowsResources: docs/resources.md teaches from this example,
// and shows resources.go whole, as it is.
func TestGuideShowsResources(t *testing.T) {
	src, err := os.ReadFile("resources.go")
	if err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "resources.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(guide), "\n```go\n"+string(src)+"```\n") {
		t.Errorf("docs/resources.md does not show examples/blog/resources.go as it is: copy the file into its go block under \"A whole app\"")
	}
}
