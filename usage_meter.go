package apikey

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of WithUsageFlush.
const (
	DefaultUsageFlushInterval = 10 * time.Second
	DefaultUsageBatchSize     = 10_000
)

// WithUsageFlush sets how often the usage the middleware counts is
// flushed to a Store that implements UsageRecorder (default
// DefaultUsageFlushInterval), and how many hourly buckets (one per key and
// hour) make a full batch, flushed at once (default
// DefaultUsageBatchSize). A batch is written in one call to
// RecordUsage per batchSize buckets.
//
// Counting is in memory; the Manager writes what it holds every interval,
// whenever a batch is full, and at Close. A process that dies without
// Close therefore loses what it counted since its last flush: at most one
// interval of usage, or a batch, whichever comes first. A flush that fails
// is reported to WithBackgroundErrors and kept, to be retried with the
// next one; a flush whose write succeeded but whose answer was lost is
// retried too, and is then counted twice.
func WithUsageFlush(interval time.Duration, batchSize int) Option {
	return func(s *settings) error {
		if interval <= 0 || batchSize <= 0 {
			return fmt.Errorf("%w: WithUsageFlush(%v, %d): want a positive interval and batch size", ErrInvalidRequest, interval, batchSize)
		}
		s.usageInterval, s.usageBatch = interval, batchSize
		return nil
	}
}

// WithoutUsage turns usage metering off, although the Store implements
// UsageRecorder: the middleware then counts nothing, and Manager.Usage
// reports only what was flushed before.
func WithoutUsage() Option {
	return func(s *settings) error {
		s.usageOff = true
		return nil
	}
}

// usageShards is how many independently locked parts the meter has, and
// maxShardPresize the most buckets a shard's map has room for from the
// start (it grows beyond, and keeps its size across flushes).
const (
	usageShards     = 64
	maxShardPresize = 4096
)

// usageKey is one hourly bucket of one key.
type usageKey struct {
	id   cacheID
	hour int64 // Unix seconds / 3600
}

type usageCell struct {
	owner    string // the key's owner when the bucket was made
	requests int64
	units    int64
}

type usageShard struct {
	mu    sync.Mutex
	cells map[usageKey]usageCell
	_     [48]byte // a cache line of its own
}

// usageMeter counts requests and units per key and hour in memory and
// flushes them to a UsageRecorder in batches. Counting a request in a
// bucket it already holds takes a shard lock and a map update, with no
// allocation. It is safe for concurrent use.
type usageMeter struct {
	rec      UsageRecorder
	interval time.Duration
	batch    int
	onError  func(error)

	pending atomic.Int64  // cells held across shards
	full    chan struct{} // a batch is full: flush now
	flushMu sync.Mutex    // one flush (or Usage read) at a time
	shards  [usageShards]usageShard
}

func newUsageMeter(rec UsageRecorder, interval time.Duration, batch int, onError func(error)) *usageMeter {
	u := &usageMeter{rec: rec, interval: interval, batch: batch, onError: onError, full: make(chan struct{}, 1)}
	for i := range u.shards {
		// Room for a full batch, within reason: a huge batch size must
		// not allocate its whole map up front.
		u.shards[i].cells = make(map[usageKey]usageCell, min(max(batch/usageShards, 16), maxShardPresize))
	}
	return u
}

func usageShardOf(id *cacheID) int {
	h := uint32(2166136261) // FNV-1a
	for _, b := range id {
		h ^= uint32(b)
		h *= 16777619
	}
	return int(h % usageShards)
}

// add counts one request of units under key id of owner, in the hour of
// now.
func (u *usageMeter) add(id, owner string, units int64, now time.Time) {
	var k usageKey
	copy(k.id[:], id)
	k.hour = floorDiv(now.Unix(), 3600)
	s := &u.shards[usageShardOf(&k.id)]
	s.mu.Lock()
	c, ok := s.cells[k]
	if !ok {
		c.owner = owner
	}
	c.requests++
	c.units += units
	s.cells[k] = c
	s.mu.Unlock()
	if !ok && u.pending.Add(1) >= int64(u.batch) {
		select {
		case u.full <- struct{}{}:
		default:
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func (u *usageMeter) run(ctx context.Context) {
	t := time.NewTicker(u.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-u.full:
		}
		// Not ctx: a write that Close cut short might have committed
		// all the same, and would then be retried and counted twice.
		fctx, cancel := context.WithTimeout(context.Background(), max(u.interval, 10*time.Second))
		if err := u.flush(fctx); err != nil {
			u.onError(err) // what was not written is kept and retried
		}
		cancel()
	}
}

// flush writes every bucket held, in batches of u.batch, sorted by key
// and hour so that concurrent flushes from several processes take row
// locks in one order. Buckets whose batch failed are put back.
func (u *usageMeter) flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	rows := u.take()
	if len(rows) == 0 {
		return nil
	}
	for i := 0; i < len(rows); i += u.batch {
		batch := rows[i:min(i+u.batch, len(rows))]
		if err := u.rec.RecordUsage(ctx, batch); err != nil {
			u.putBack(rows[i:])
			return storeError("record usage", err)
		}
	}
	return nil
}

// take empties the shards and returns what they held as rows, sorted.
// The maps are cleared, not replaced, so that they keep their room for
// the next interval's buckets, which are likely the same keys'.
func (u *usageMeter) take() []UsageRow {
	rows := make([]UsageRow, 0, u.pending.Load())
	for i := range u.shards {
		s := &u.shards[i]
		s.mu.Lock()
		for k, c := range s.cells {
			rows = append(rows, UsageRow{KeyID: string(k.id[:]), Owner: c.owner,
				Start: time.Unix(k.hour*3600, 0).UTC(), Requests: c.requests, Units: c.units})
		}
		n := len(s.cells)
		clear(s.cells)
		s.mu.Unlock()
		u.pending.Add(-int64(n))
	}
	slices.SortFunc(rows, func(a, b UsageRow) int {
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), a.Start.Compare(b.Start))
	})
	return rows
}

// putBack adds rows that could not be written to what the shards hold.
func (u *usageMeter) putBack(rows []UsageRow) {
	for _, r := range rows {
		var k usageKey
		copy(k.id[:], r.KeyID)
		k.hour = r.Start.Unix() / 3600
		s := &u.shards[usageShardOf(&k.id)]
		s.mu.Lock()
		c, ok := s.cells[k]
		if !ok {
			c.owner = r.Owner
		}
		c.requests += r.Requests
		c.units += r.Units
		s.cells[k] = c
		s.mu.Unlock()
		if !ok {
			u.pending.Add(1)
		}
	}
}

// read returns what the Store holds for q plus what the meter holds, with
// no flush in between.
func (u *usageMeter) read(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	rows, err := u.rec.Usage(ctx, q)
	if err != nil {
		return nil, err
	}
	type bucket struct {
		key   string
		start int64
	}
	index := make(map[bucket]int, len(rows))
	for i, r := range rows {
		index[bucket{r.KeyID, r.Start.Unix()}] = i
	}
	added := false
	for i := range u.shards {
		s := &u.shards[i]
		s.mu.Lock()
		for k, c := range s.cells {
			id := string(k.id[:])
			hour := time.Unix(k.hour*3600, 0).UTC()
			if !q.Includes(id, c.owner, hour) {
				continue
			}
			b := bucket{start: q.Granularity.Truncate(hour).Unix()}
			if q.KeyID != "" {
				b.key = id
			}
			j, ok := index[b]
			if !ok {
				j = len(rows)
				index[b] = j
				owner := c.owner
				if q.KeyID == "" {
					owner = q.Owner
				}
				rows = append(rows, UsageRow{KeyID: b.key, Owner: owner, Start: time.Unix(b.start, 0).UTC()})
				added = true
			}
			rows[j].Requests += c.requests
			rows[j].Units += c.units
		}
		s.mu.Unlock()
	}
	if added {
		slices.SortStableFunc(rows, func(a, b UsageRow) int { return a.Start.Compare(b.Start) })
	}
	return rows, nil
}
