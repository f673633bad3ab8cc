package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/resource"
)

func TestLogOutEverywhereClosesEverySocket(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			h := livetest.New(t, db, livetest.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s1 := h.Register(t, "ada@example.com")
			s2 := h.SignIn(t, "ada@example.com")
			c1, _, err := h.Dial(ctx, livetest.Bearer(s1.Token))
			if err != nil {
				t.Fatal(err)
			}
			c2, _, err := h.Dial(ctx, livetest.Bearer(s2.Token))
			if err != nil {
				t.Fatal(err)
			}
			user := s1.Record
			if _, err := h.Domain.Run(ctx, h.Users, "log_out_everywhere", resource.Input{"user": user}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*livetest.Client{c1, c2} {
				code, reason, err := c.WaitClose(ctx)
				t.Log(c.SocketID, code, reason, err)
				if code != 4001 {
					t.Fatalf("code %d", code)
				}
			}
			_, status, err := h.Dial(ctx, livetest.Bearer(s1.Token))
			t.Log(status, err)
			if status != 401 {
				t.Fatalf("status %d", status)
			}
		})
	}
}
