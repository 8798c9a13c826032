package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
)

// TestSweepsAcrossInstances: three Managers, each with its own *sql.DB on
// one database, sweep the same keys at once; the claims in the database
// let exactly one of them report each expiring key.
func TestSweepsAcrossInstances(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			var mu sync.Mutex
			count := map[string]int{}
			onEvent := func(ev apikey.KeyEvent) {
				if ev.Type == apikey.KeyExpiring {
					mu.Lock()
					count[ev.Key.ID]++
					mu.Unlock()
				}
			}
			var ms []*apikey.Manager
			for i := range 3 {
				d := db
				if i > 0 {
					d = reopen()
				}
				ms = append(ms, newManager(t, newStore(t, d, b.dialect), apikey.WithKeyEvents(onEvent), apikey.WithExpiringSweep(24*time.Hour)))
			}
			const n = 40
			for range n {
				if _, _, err := ms[0].Issue(ctx, apikey.IssueRequest{Owner: "o", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for _, m := range ms {
				wg.Go(func() {
					for range 2 {
						if err := m.Sweep(ctx); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			if len(count) != n {
				t.Fatalf("%d keys reported, want %d", len(count), n)
			}
			for id, c := range count {
				if c != 1 {
					t.Errorf("key %s reported %d times", id, c)
				}
			}
		})
	}
}
