package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
)

// ClaimEvent implements apikey.EventClaimer.
func (s *Store) ClaimEvent(ctx context.Context, id, event string, at time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{id, event}
	if _, ok := s.claims[key]; ok {
		return false, nil
	}
	s.claims[key] = at
	return true, nil
}

// PruneEvents implements apikey.EventPruner by apikey.ClaimObsolete, with
// the keys the Store holds. It looks at every claim held, under the
// Store's lock. A zero before, or a to before from, fails with an error
// wrapping apikey.ErrInvalidRequest and deletes nothing.
func (s *Store) PruneEvents(ctx context.Context, from, to string, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if before.IsZero() || to != "" && to < from {
		return 0, fmt.Errorf("%w: memstore: prune event claims from %.40q to %.40q before %v: want a time, and from before to",
			apikey.ErrInvalidRequest, from, to, before)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c, at := range s.claims {
		id := c[0]
		if id <= from || to != "" && id > to {
			continue
		}
		if apikey.ClaimObsolete(s.keys[id], c[1], at, before) {
			delete(s.claims, c)
			n++
		}
	}
	return n, nil
}
