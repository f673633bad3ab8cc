package live

import (
	"hash/maphash"
	"sync"
)

const shardCount = 64

// index maps keys (socket ids, topics) to their connections, in shards so
// that a lookup locks one shard and touches only the matching connections.
type index struct {
	seed   maphash.Seed
	shards [shardCount]shard
}

type shard struct {
	mu    sync.RWMutex
	conns map[string]map[*Conn]struct{}
}

func newIndex() *index {
	x := &index{seed: maphash.MakeSeed()}
	for i := range x.shards {
		x.shards[i].conns = map[string]map[*Conn]struct{}{}
	}
	return x
}

func (x *index) shard(key string) *shard {
	return &x.shards[maphash.String(x.seed, key)%shardCount]
}

func (x *index) add(key string, c *Conn) {
	s := x.shard(key)
	s.mu.Lock()
	set := s.conns[key]
	if set == nil {
		set = map[*Conn]struct{}{}
		s.conns[key] = set
	}
	set[c] = struct{}{}
	s.mu.Unlock()
}

func (x *index) remove(key string, c *Conn) {
	s := x.shard(key)
	s.mu.Lock()
	if set := s.conns[key]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(s.conns, key)
		}
	}
	s.mu.Unlock()
}

// get returns the connections under key.
func (x *index) get(key string) []*Conn {
	s := x.shard(key)
	s.mu.RLock()
	set := s.conns[key]
	out := make([]*Conn, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	s.mu.RUnlock()
	return out
}

// all returns every connection (for shutdown and the safety net).
func (x *index) all() []*Conn {
	var out []*Conn
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for _, set := range s.conns {
			for c := range set {
				out = append(out, c)
			}
		}
		s.mu.RUnlock()
	}
	return out
}

// len counts the connections.
func (x *index) len() int {
	n := 0
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for _, set := range s.conns {
			n += len(set)
		}
		s.mu.RUnlock()
	}
	return n
}
