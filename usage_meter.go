package apikey

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
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
// maxShardPresize the most buckets a shard's rows have room for from the
// start (it grows beyond, and keeps its size across flushes).
const (
	usageShards     = 64
	maxShardPresize = 4096
)

// usageMeter counts requests and units per key and hour in memory and
// flushes them to a UsageRecorder in batches. It is safe for concurrent
// use.
//
// A key counts in its usageSlots, which live in the key's cache entry:
// counting a request there is an atomic addition to memory that
// verifying it has just read, with no lock and no map. A key that has no
// cache entry (a legacy key, a Manager without a cache) has slots the
// meter keeps for it in a map instead. A flush moves what the listed
// slots hold into its shard's rows, unlists them, and writes the rows;
// the next request of each key lists its slots
// again, under its shard's lock, so that a flush costs in proportion to
// the keys that counted, not to all the keys cached.
type usageMeter struct {
	rec      UsageRecorder
	interval time.Duration
	batch    int
	onError  func(error)

	// pending is how many buckets the next flush would write, about: the
	// slots that counted since the last one, and the rows.
	pending atomic.Int64
	full    chan struct{} // a batch is full: flush now
	flushMu sync.Mutex    // one flush (or Usage read) at a time
	shards  [usageShards]usageShard
}

// usageSlots counts the requests of one key: two hourly counters, so that
// a request still being handled when the hour turns counts in the hour it
// was authenticated in, while the next hour's requests count in the other.
// It is written with atomics on the request path; the rest is guarded by
// its meter shard's lock. The counter of hour h is number h%2: requests[i],
// hour[i] and extra[i].
type usageSlots struct {
	// A request reads and writes only requests, hour and listed, which
	// come first: in a cache entry, they share the cache line of what
	// Verify reads (see cacheEntry).
	requests [2]atomic.Int64
	// hour[i] is the hour (hourOf) that counter i counts. An int32 holds
	// every hour until the year 246,000.
	hour   [2]atomic.Int32
	listed atomic.Bool // in its shard's list, which flushes go through
	shard  uint8       // usageShardIndex(key.ID); set with key
	// extra[i] is the units beyond one per request: most requests cost
	// one, and then counting them adds nothing here.
	extra [2]atomic.Int64
	key   *Key // whose; set before first use, then read-only
}

type usageShard struct {
	mu sync.Mutex
	// listed holds the slots that counted since the last flush, which
	// unlists them.
	listed []*usageSlots
	// loose holds the slots of keys that have no cache entry.
	loose map[cacheID]*usageSlots
	// rows holds the buckets moved out of slots, until written.
	rows []UsageRow
	_    [64]byte // keeps the shards' locks on separate cache lines
}

func newUsageMeter(rec UsageRecorder, interval time.Duration, batch int, onError func(error)) *usageMeter {
	u := &usageMeter{rec: rec, interval: interval, batch: batch, onError: onError, full: make(chan struct{}, 1)}
	for i := range u.shards {
		// Room for a full batch, within reason: a huge batch size must
		// not allocate it all up front.
		u.shards[i].rows = make([]UsageRow, 0, min(max(batch/usageShards, 16), maxShardPresize))
		u.shards[i].loose = make(map[cacheID]*usageSlots)
	}
	return u
}

// hourOf is the hourly bucket of t, as usageSlots number them.
func hourOf(t time.Time) int64 { return floorDiv(t.Unix(), 3600) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// count counts one request of units by key k in hour (see hourOf). s is
// the slots of k's cache entry, or nil for a key that has none.
func (u *usageMeter) count(s *usageSlots, k *Key, hour, units int64) {
	i := hour & 1
	if s == nil || s.hour[i].Load() != int32(hour) || !s.listed.Load() {
		s = u.prepare(s, k, hour)
	}
	if s.requests[i].Add(1) == 1 {
		u.added()
	}
	if units != 1 {
		s.extra[i].Add(units - 1)
	}
	if !s.listed.Load() {
		// A flush unlisted s as we counted: it may not have seen what we
		// added. Whatever it did not take is still in s.
		u.rescue(s)
	}
}

// prepare makes sure that the slots, s's or for s nil those the meter
// keeps for k, are listed with a counter for hour, and returns them. A
// counter still holding an hour that is over is emptied into the rows
// first.
func (u *usageMeter) prepare(s *usageSlots, k *Key, hour int64) *usageSlots {
	var sh *usageShard
	if s != nil {
		sh = &u.shards[s.shard] // without reading k.ID, often not in the CPU's cache
	} else {
		sh = u.shardOf(k.ID)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s == nil {
		var id cacheID
		copy(id[:], k.ID)
		// A key's owner can change; its next hours' buckets are the new
		// owner's.
		if s = sh.loose[id]; s == nil || s.key.Owner != k.Owner {
			s = &usageSlots{key: k, shard: usageShardIndex(k.ID)}
			sh.loose[id] = s
		}
	}
	if !s.listed.Load() {
		sh.listed = append(sh.listed, s)
		s.listed.Store(true)
	}
	if i := hour & 1; s.hour[i].Load() != int32(hour) {
		u.empty(sh, s, i)
		s.hour[i].Store(int32(hour))
	}
	return s
}

// added notes a bucket that the next flush will write.
func (u *usageMeter) added() {
	if u.pending.Add(1) >= int64(u.batch) {
		select {
		case u.full <- struct{}{}:
		default:
		}
	}
}

// rescue empties s, which a flush unlisted, into the rows.
func (u *usageMeter) rescue(s *usageSlots) {
	sh := &u.shards[s.shard]
	sh.mu.Lock()
	u.empty(sh, s, 0)
	u.empty(sh, s, 1)
	sh.mu.Unlock()
}

// empty moves what counter i of s holds into sh's rows. sh.mu must be
// held.
func (u *usageMeter) empty(sh *usageShard, s *usageSlots, i int64) {
	requests, extra := s.requests[i].Swap(0), s.extra[i].Swap(0)
	if requests > 0 {
		u.pending.Add(-1) // added counted it when it went from 0 to 1
	}
	if requests == 0 && extra == 0 {
		return
	}
	u.addRow(sh, UsageRow{KeyID: s.key.ID, Owner: s.key.Owner, Start: time.Unix(int64(s.hour[i].Load())*3600, 0).UTC(),
		Requests: requests, Units: requests + extra})
}

// addRow adds r to sh's rows. sh.mu must be held.
func (u *usageMeter) addRow(sh *usageShard, r UsageRow) {
	sh.rows = append(sh.rows, r)
	u.added()
}

// gather empties every listed slots of sh into its rows and unlists
// them, so that a flush touches only the slots of keys that counted since
// the last one; each key's next request lists its slots again. sh.mu must
// be held.
func (u *usageMeter) gather(sh *usageShard) {
	for _, s := range sh.listed {
		s.listed.Store(false)
		// A request that counted in s before it saw the change is in s
		// now, or rescues itself (count).
		u.empty(sh, s, 0)
		u.empty(sh, s, 1)
	}
	clear(sh.listed)
	sh.listed = sh.listed[:0]
	clear(sh.loose) // their keys' next requests make new ones
}

func (u *usageMeter) shardOf(id string) *usageShard { return &u.shards[usageShardIndex(id)] }

// usageShardIndex is the meter shard of key ID id.
func usageShardIndex(id string) uint8 {
	h := uint32(2166136261) // FNV-1a
	for i := range len(id) {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return uint8(h % usageShards)
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

// flush writes every bucket held, in batches of u.batch. Buckets whose
// batch failed are put back.
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

// take empties the slots and the rows and returns what they held. A key
// and hour may come in more than one row (a key whose cache entry was
// replaced within the hour, rows put back after a failed write), which
// UsageRecorder adds up; a store that takes row locks sorts the rows
// itself. The rows' slices are emptied, not replaced, so that they keep
// their room for the next interval's buckets.
func (u *usageMeter) take() []UsageRow {
	rows := make([]UsageRow, 0, max(u.pending.Load(), 0))
	for i := range u.shards {
		sh := &u.shards[i]
		sh.mu.Lock()
		u.gather(sh)
		rows = append(rows, sh.rows...)
		n := len(sh.rows)
		clear(sh.rows)
		sh.rows = sh.rows[:0]
		sh.mu.Unlock()
		u.pending.Add(-int64(n))
	}
	return rows
}

// putBack adds rows that could not be written to the shards' rows.
func (u *usageMeter) putBack(rows []UsageRow) {
	for _, r := range rows {
		sh := u.shardOf(r.KeyID)
		sh.mu.Lock()
		u.addRow(sh, r)
		sh.mu.Unlock()
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
		sh := &u.shards[i]
		sh.mu.Lock()
		u.gather(sh) // into the rows, which the next flush writes
		for _, c := range sh.rows {
			id, hour := c.KeyID, c.Start
			if !q.Includes(id, c.Owner, hour) {
				continue
			}
			b := bucket{start: q.Granularity.Truncate(hour).Unix()}
			if q.ByKey() {
				b.key = id
			}
			j, ok := index[b]
			if !ok {
				j = len(rows)
				index[b] = j
				owner := c.Owner
				if !q.ByKey() {
					owner = q.Owner
				}
				rows = append(rows, UsageRow{KeyID: b.key, Owner: owner, Start: time.Unix(b.start, 0).UTC()})
				added = true
			}
			rows[j].Requests += c.Requests
			rows[j].Units += c.Units
		}
		sh.mu.Unlock()
	}
	if added {
		slices.SortStableFunc(rows, func(a, b UsageRow) int {
			return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.KeyID, b.KeyID))
		})
	}
	return rows, nil
}
