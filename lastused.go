package apikey

import (
	"context"
	"sync"
	"time"
)

// lastUsedBatch collects key uses in memory and flushes them to a
// LastUsedRecorder in one call per interval, so that verification never
// writes to the store. It is safe for concurrent use.
type lastUsedBatch struct {
	rec      LastUsedRecorder
	interval time.Duration
	onError  func(error)

	mu      sync.Mutex
	pending map[string]time.Time
}

func newLastUsedBatch(rec LastUsedRecorder, interval time.Duration, onError func(error)) *lastUsedBatch {
	return &lastUsedBatch{rec: rec, interval: interval, onError: onError, pending: make(map[string]time.Time)}
}

// touch records a use of key id. A cache entry remembers when it was last
// handed over, so a key in constant use costs one atomic load per request
// and one locked map write per interval.
func (b *lastUsedBatch) touch(e *cacheEntry, id string, now time.Time) {
	n := now.UnixNano()
	last := e.lastTouched.Load()
	if n-last < int64(b.interval) || !e.lastTouched.CompareAndSwap(last, n) {
		return
	}
	b.mu.Lock()
	b.pending[id] = storedTime(now)
	b.mu.Unlock()
}

func (b *lastUsedBatch) run(ctx context.Context) {
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, b.interval)
			if err := b.flush(fctx); err != nil {
				b.onError(err) // the batch is kept and retried next tick
			}
			cancel()
		}
	}
}

// flush writes the pending uses. On failure they are put back, unless a
// newer use of the same key arrived meanwhile, and the error is returned.
func (b *lastUsedBatch) flush(ctx context.Context) error {
	b.mu.Lock()
	batch := b.pending
	if len(batch) == 0 {
		b.mu.Unlock()
		return nil
	}
	b.pending = make(map[string]time.Time, len(batch))
	b.mu.Unlock()

	err := b.rec.RecordLastUsed(ctx, batch)
	if err != nil {
		b.mu.Lock()
		for id, at := range batch {
			if newer, ok := b.pending[id]; !ok || at.After(newer) {
				b.pending[id] = at
			}
		}
		b.mu.Unlock()
		return storeError("record last use", err)
	}
	return nil
}
