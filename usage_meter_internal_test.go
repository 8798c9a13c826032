package apikey

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rowsRecorder is a UsageRecorder that keeps every row written, for the
// meter's own tests (memstore would be an import cycle here).
type rowsRecorder struct {
	mu   sync.Mutex
	rows []UsageRow
}

func (r *rowsRecorder) RecordUsage(_ context.Context, rows []UsageRow) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, rows...)
	return nil
}

func (r *rowsRecorder) Usage(context.Context, UsageQuery) ([]UsageRow, error) { return nil, nil }

// totals sums the rows written per key, hour and owner.
func (r *rowsRecorder) totals() map[string]UsageRow {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := make(map[string]UsageRow)
	for _, row := range r.rows {
		k := fmt.Sprintf("%s %s %s", row.KeyID, row.Start.Format(time.RFC3339), row.Owner)
		s := sum[k]
		s.Requests += row.Requests
		s.Units += row.Units
		sum[k] = s
	}
	return sum
}

func meterKey(i int, owner string) *Key {
	return &Key{ID: fmt.Sprintf("%012d", i), Owner: owner}
}

func testMeter(t *testing.T) (*usageMeter, *rowsRecorder) {
	rec := &rowsRecorder{}
	return newUsageMeter(rec, time.Hour, 1<<20, func(err error) { t.Errorf("background error: %v", err) }), rec
}

// TestUsageMeterHours: the two hourly counters of one key's slots count
// the hour they were given, and a counter reused two hours later hands
// what it held to the flush first.
func TestUsageMeterHours(t *testing.T) {
	u, rec := testMeter(t)
	k := meterKey(1, "team")
	s := &usageSlots{key: k, shard: usageShardIndex(k.ID)}
	h := hourOf(time.Date(2028, 2, 29, 23, 0, 0, 0, time.UTC))
	u.count(s, k, h, 1)
	u.count(s, k, h+1, 5) // the other counter
	u.count(s, k, h, 1)   // a request authenticated before the turn of the hour
	u.count(s, k, h+2, 0) // h's counter again: h goes to the cells first
	require.NoError(t, u.flush(context.Background()))
	start := func(h int64) string { return time.Unix(h*3600, 0).UTC().Format(time.RFC3339) }
	assert.Equal(t, map[string]UsageRow{
		k.ID + " " + start(h) + " team":   {Requests: 2, Units: 2},
		k.ID + " " + start(h+1) + " team": {Requests: 1, Units: 5},
		k.ID + " " + start(h+2) + " team": {Requests: 1, Units: 0},
	}, rec.totals())
	assert.Zero(t, u.pending.Load(), "nothing is left to write")
}

// TestUsageMeterUnlists: a flush unlists the slots it emptied, so that
// the next one touches only keys that counted since, and the key's next
// request lists its slots again.
func TestUsageMeterUnlists(t *testing.T) {
	u, rec := testMeter(t)
	k := meterKey(2, "team")
	s := &usageSlots{key: k, shard: usageShardIndex(k.ID)}
	h := hourOf(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	u.count(s, k, h, 1)
	sh := u.shardOf(k.ID)
	require.Len(t, sh.listed, 1)
	ctx := context.Background()
	require.NoError(t, u.flush(ctx))
	assert.False(t, s.listed.Load(), "a flush unlists what it emptied")
	assert.Empty(t, sh.listed)
	u.count(s, k, h, 3)
	assert.True(t, s.listed.Load(), "and the next request lists it again")
	require.NoError(t, u.flush(ctx))
	assert.Equal(t, UsageRow{Requests: 2, Units: 4}, rec.totals()[k.ID+" 2026-05-01T12:00:00Z team"])
}

// TestUsageMeterLooseSlots: a key without a cache entry counts in slots
// the meter keeps, and an owner change starts new ones: each row names
// the owner its requests were counted under (the store keeps the last
// one written for the bucket).
func TestUsageMeterLooseSlots(t *testing.T) {
	u, rec := testMeter(t)
	h := hourOf(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	u.count(nil, meterKey(3, "old"), h, 1)
	u.count(nil, meterKey(3, "new"), h, 2)
	u.count(nil, meterKey(3, "new"), h+1, 1)
	require.NoError(t, u.flush(context.Background()))
	id := meterKey(3, "").ID
	assert.Equal(t, map[string]UsageRow{
		id + " 2026-05-01T12:00:00Z old": {Requests: 1, Units: 1},
		id + " 2026-05-01T12:00:00Z new": {Requests: 1, Units: 2},
		id + " 2026-05-01T13:00:00Z new": {Requests: 1, Units: 1},
	}, rec.totals())
	assert.Empty(t, u.shardOf(id).loose, "a flush forgets loose slots")
}

// TestUsageMeterConcurrentFlushes: requests counted while flushes run,
// and drop slots, are all written exactly once.
func TestUsageMeterConcurrentFlushes(t *testing.T) {
	u, rec := testMeter(t)
	const keys, workers, perWorker = 8, 8, 5000
	slots := make([]*usageSlots, keys)
	for i := range slots {
		k := meterKey(i, "team")
		slots[i] = &usageSlots{key: k, shard: usageShardIndex(k.ID)}
	}
	h := hourOf(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
				assert.NoError(t, u.flush(context.Background()))
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				s := slots[(w+i)%keys]
				var sl *usageSlots
				if i%4 != 0 {
					sl = s // one request in four by a key without an entry
				}
				u.count(sl, s.key, h+int64(i%3), 2)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-flushed
	require.NoError(t, u.flush(context.Background()))
	var requests, units int64
	for _, r := range rec.totals() {
		requests += r.Requests
		units += r.Units
	}
	assert.Equal(t, int64(workers*perWorker), requests)
	assert.Equal(t, int64(2*workers*perWorker), units)
	assert.Zero(t, u.pending.Load())
}

// BenchmarkUsageCount is the request path of metering alone: one request
// counted in the cache-entry slots of one of 100k keys, at random.
func BenchmarkUsageCount(b *testing.B) {
	u := newUsageMeter(&rowsRecorder{}, time.Hour, 1<<30, func(error) {})
	const n = 100_000
	slots := make([]*usageSlots, n)
	for i := range slots {
		k := meterKey(i, "team")
		slots[i] = &usageSlots{key: k, shard: usageShardIndex(k.ID)}
	}
	h := hourOf(time.Now())
	for _, s := range slots {
		u.count(s, s.key, h, 1)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := uint32(1)
		for b.Loop() {
			i = i*1664525 + 1013904223
			s := slots[i%n]
			u.count(s, s.key, h, 1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := uint32(1)
			for pb.Next() {
				i = i*1664525 + 1013904223
				s := slots[i%n]
				u.count(s, s.key, h, 1)
			}
		})
	})
}
