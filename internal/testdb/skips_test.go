package testdb

import (
	"slices"
	"testing"
)

// TestSkipsAreCounted checks that a test skipped for want of a service is
// counted, and that Main's line names the package, the service, the count
// and the variable to set.
func TestSkipsAreCounted(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv(RedisEnv, "")
	skipped.Lock()
	before := skipped.byEnv[RedisEnv]
	skipped.Unlock()
	for range 2 {
		t.Run("redis", func(t *testing.T) {
			RedisURL(t)
			t.Fatal("RedisURL did not skip")
		})
	}
	skipped.Lock()
	n := skipped.byEnv[RedisEnv] - before
	skipped.Unlock()
	if n != 2 {
		t.Fatalf("counted %d skips, want 2", n)
	}
	want := "kiln: example.com/p skipped 2 Redis tests: set KILN_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run them"
	if lines := skipLines("example.com/p"); !slices.Contains(lines, want) {
		t.Fatalf("lines %q\nwant one to be %q", lines, want)
	}
}
