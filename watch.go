package apikey

import (
	"context"
	"fmt"
	"time"
)

// watch runs the Store's Watch until ctx ends, restarting it (with
// backoff, and reporting each failure) if it returns early.
func (m *Manager) watch(ctx context.Context, w Watcher) {
	const maxBackoff = 30 * time.Second
	backoff := time.Second
	for {
		err := w.Watch(ctx, m.changed)
		if ctx.Err() != nil {
			return
		}
		m.onError(fmt.Errorf("apikey: watching the store for changes stopped (retrying in %v; until then other processes' revocations take effect within the cache TTL): %w", backoff, err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// changed drops what the cache holds for key id, or everything when id
// is "" (the Watcher may have missed changes).
func (m *Manager) changed(id string) {
	m.notifications.Add(1)
	if id == "" {
		m.cache.invalidateAll()
		return
	}
	m.cache.invalidate(id)
}
