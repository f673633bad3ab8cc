package tokenresource

import (
	"context"
	"time"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// CheckBatch is how many jtis Check reads per query.
const CheckBatch = 500

// Check tells which of jtis may no longer hold a session: revoked ones
// (revocation.Revoked), expired ones (revocation.Expired) and, with requirePresence,
// ones the store does not hold (revocation.Revoked). It reads CheckBatch jtis per
// query, never one query per jti. The live endpoint's safety net calls it.
func (s *Store) Check(ctx context.Context, jtis []string, requirePresence bool) (map[string]revocation.Reason, error) {
	out, err := s.check(ctx, jtis, requirePresence)
	s.metrics.lookup(opCheck, err)
	return out, err
}

func (s *Store) check(ctx context.Context, jtis []string, requirePresence bool) (map[string]revocation.Reason, error) {
	out := map[string]revocation.Reason{}
	now := time.Now().UTC()
	for start := 0; start < len(jtis); start += CheckBatch {
		batch := jtis[start:min(start+CheckBatch, len(jtis))]
		rows, err := s.views.readTokens.Read(ctx, s.domain, resource.NoInput{}, resource.Where(resource.In("jti", batch)))
		if err != nil {
			return nil, err
		}
		var found map[string]bool // only for requirePresence
		if requirePresence {
			found = make(map[string]bool, len(rows))
		}
		for _, r := range rows {
			f := r.TokenFields()
			if found != nil {
				found[f.JTI] = true
			}
			switch {
			case f.Revoked():
				out[f.JTI] = revocation.Revoked
			case f.Expired(now):
				out[f.JTI] = revocation.Expired
			}
		}
		if requirePresence {
			for _, jti := range batch {
				if !found[jti] {
					out[jti] = revocation.Revoked
				}
			}
		}
	}
	return out, nil
}
