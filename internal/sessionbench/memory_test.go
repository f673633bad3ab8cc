package sessionbench

import "testing"

func TestPerSession(t *testing.T) {
	heap, stack, rss := PerSession(Memory{Heap: 1000, Stack: 500, RSS: 4000}, Memory{Heap: 3000, Stack: 400, RSS: 8000}, 10)
	if heap != 200 || stack != -10 || rss != 400 {
		t.Errorf("PerSession = %v %v %v, want 200 -10 400", heap, stack, rss)
	}
}
