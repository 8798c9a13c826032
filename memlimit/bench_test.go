package memlimit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
)

// limiterKeys is the number of distinct keys the limiter benchmarks
// spread over: far more than fit in a CPU cache, as in production.
const limiterKeys = 1_000_000

var limiterKeyList []string

// benchLimiterKeys returns limiterKeys distinct 12-byte keys, the length
// of a key ID, in random order.
func benchLimiterKeys() []string {
	if limiterKeyList == nil {
		keys := make([]string, limiterKeys)
		for i := range keys {
			keys[i] = fmt.Sprintf("k%011d", i)
		}
		rand.New(rand.NewPCG(7, 7)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		limiterKeyList = keys
	}
	return limiterKeyList
}

// benchLimit allows every request of the benchmarks (a key is visited
// far fewer than 1000 times) and keeps every key's bucket below full, so
// that the sweeper forgets none and every request finds its key tracked.
var benchLimit = apikey.Limit{Rate: 1000, Period: time.Hour}

// BenchmarkLimiter measures Allow, with the real clock, on keys
// already tracked, cycling through a million of them.
func BenchmarkLimiter(b *testing.B) {
	keys := benchLimiterKeys()
	l := must(memlimit.NewLimiter())
	defer l.Close()
	ctx := context.Background()
	for _, k := range keys {
		l.Allow(ctx, k, benchLimit)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(ctx, keys[i], benchLimit)
			if i++; i == len(keys) {
				i = 0
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(keys))
			for pb.Next() {
				l.Allow(ctx, keys[i], benchLimit)
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	})
}

// bytesPerKey returns the heap that a Limiter tracking n keys
// holds, per key, the keys' own bytes included.
func bytesPerKey(keys []string) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	now := time.Now()
	l := must(memlimit.NewLimiter(memlimit.WithClock(func() time.Time { return now })))
	for _, k := range keys {
		l.AllowAt(now, k, benchLimit)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if l.Len() != len(keys) {
		panic("keys were forgotten while measuring")
	}
	runtime.KeepAlive(l)
	l.Close()
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(len(keys))
}

// BenchmarkLimiterBytesPerKey reports the heap held per tracked key
// with a million 12-byte keys (B/key); the time is that of filling.
func BenchmarkLimiterBytesPerKey(b *testing.B) {
	keys := benchLimiterKeys()
	var bpk float64
	for b.Loop() {
		bpk = bytesPerKey(keys)
	}
	b.ReportMetric(bpk, "B/key")
}

// The target: at most 120 bytes per tracked key. The name contains
// "Alloc" so that CI's allocation step, which runs without -race, runs it.
func TestLimiterAllocatedBytesPerKey(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("needs a million keys and no race detector")
	}
	bpk := bytesPerKey(benchLimiterKeys())
	t.Logf("%.1f bytes per tracked key (1M keys of 12 bytes)", bpk)
	if bpk > 120 {
		t.Fatalf("%.1f bytes per tracked key, want ≤ 120", bpk)
	}
}

// BenchmarkLedgerVsCounter measures a Ledger's Spend against a Counter's
// Add of the same key, in the same run, with the real clock, on a million
// keys already tracked: compare the two for what a credit balance costs
// over a quota.
func BenchmarkLedgerVsCounter(b *testing.B) {
	keys := benchLimiterKeys()
	ctx := context.Background()
	ledger := must(memlimit.NewLedger())
	defer ledger.Close()
	counter := must(memlimit.NewCounter())
	defer counter.Close()
	credits := apikey.Credits{Grant: 1 << 52, Period: apikey.MonthPeriod}
	quota := apikey.Quota{Limit: 1 << 52, Period: apikey.MonthPeriod}
	for _, k := range keys {
		ledger.Spend(ctx, k, credits, 1)
		counter.Add(ctx, k, quota, 1)
	}
	for _, c := range []struct {
		name string
		op   func(key string)
	}{
		{"counter", func(k string) { counter.Add(ctx, k, quota, 1) }},
		{"ledger", func(k string) { ledger.Spend(ctx, k, credits, 1) }},
	} {
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(keys))
				for pb.Next() {
					c.op(keys[i])
					if i++; i == len(keys) {
						i = 0
					}
				}
			})
		})
	}
}
