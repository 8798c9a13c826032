// Package benchmarks compares memlimit.Limiter with other in-memory
// rate limiters on one workload: a million distinct 12-byte keys (the
// length of an apikey key ID), visited in a shuffled order, each already
// tracked, under a limit of 1000 requests per hour that allows every
// request of the run. Each limiter reads the real clock itself.
//
// It is a module of its own so that the peers never enter apikey's
// go.mod. Run it with ./run.sh.
package benchmarks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/go-chi/httprate"
	"github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"
	"golang.org/x/time/rate"
)

const (
	numKeys = 1_000_000
	perHour = 1000
)

// keys is built on first use, so that the middleware benchmarks in the
// same binary do not carry a million strings on their heap.
var keys = sync.OnceValue(func() []string {
	k := make([]string, numKeys)
	for i := range k {
		k[i] = fmt.Sprintf("k%011d", i)
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(k), func(i, j int) { k[i], k[j] = k[j], k[i] })
	return k
})

// A subject is one limiter under test: allow takes one request for key
// and reports whether it was allowed.
type subject struct {
	name string
	new  func() (allow func(key string) bool, close func())
}

var subjects = []subject{
	{name: "apikey", new: newAPIKey},
	{name: "xtimerate", new: newXTimeRate},
	{name: "golimiter", new: newGoLimiter},
	{name: "httprate", new: newHTTPRate},
}

// memlimit.Limiter: sharded GCRA, one int64 per key.
func newAPIKey() (func(string) bool, func()) {
	l, err := memlimit.NewLimiter()
	if err != nil {
		panic(err)
	}
	limit := apikey.Limit{Rate: perHour, Period: time.Hour}
	ctx := context.Background()
	return func(key string) bool {
		d, _ := l.Allow(ctx, key, limit)
		return d.Allowed
	}, func() { l.Close() }
}

// golang.org/x/time/rate: one *rate.Limiter per key in a map behind one
// mutex, the usual way to use it per key.
func newXTimeRate() (func(string) bool, func()) {
	var mu sync.Mutex
	m := make(map[string]*rate.Limiter)
	every := rate.Every(time.Hour / perHour)
	return func(key string) bool {
		mu.Lock()
		l, ok := m[key]
		if !ok {
			l = rate.NewLimiter(every, perHour)
			m[key] = l
		}
		mu.Unlock()
		return l.Allow()
	}, func() {}
}

// github.com/sethvargo/go-limiter memorystore: a map of buckets behind a
// RWMutex, a mutex per bucket.
func newGoLimiter() (func(string) bool, func()) {
	store, err := memorystore.New(&memorystore.Config{Tokens: perHour, Interval: time.Hour})
	if err != nil {
		panic(err)
	}
	var _ limiter.Store = store
	ctx := context.Background()
	return func(key string) bool {
		_, _, _, ok, _ := store.Take(ctx, key)
		return ok
	}, func() { store.Close(ctx) }
}

// github.com/go-chi/httprate: its in-memory LimitCounter, used directly
// with the decision RateLimiter.OnLimit makes (sliding window: the
// previous window's count weighted by the part of it still in the
// window, plus the current window's), under the RateLimiter's mutex as
// OnLimit does, minus OnLimit's HTTP header writes.
func newHTTPRate() (func(string) bool, func()) {
	const window = time.Hour
	c := httprate.NewLocalLimitCounter(window)
	c.Config(perHour, window)
	var mu sync.Mutex
	return func(key string) bool {
		now := time.Now().UTC()
		cur := now.Truncate(window)
		mu.Lock()
		defer mu.Unlock()
		curCount, prevCount, _ := c.Get(key, cur, cur.Add(-window))
		r := float64(prevCount)*(float64(window)-float64(now.Sub(cur)))/float64(window) + float64(curCount)
		if int(math.Round(r))+1 > perHour {
			return false
		}
		c.IncrementBy(key, cur, 1)
		return true
	}, func() {}
}

// fillOrder is the keys in another order than the benchmarks visit them.
// Limiters that allocate an object per key (x/time/rate, go-limiter)
// would otherwise lay those objects out in memory in exactly the order
// the benchmark then reads them, and enjoy a sequential scan that no
// production traffic gives them.
var fillOrder = sync.OnceValue(func() []string {
	k := append([]string(nil), keys()...)
	rand.New(rand.NewPCG(8, 8)).Shuffle(len(k), func(i, j int) { k[i], k[j] = k[j], k[i] })
	return k
})

// fill makes allow track every key, so that the benchmarks measure
// decisions on known keys.
func fill(allow func(string) bool) {
	for _, k := range fillOrder() {
		if !allow(k) {
			panic("first request refused")
		}
	}
}

func BenchmarkLimiter(b *testing.B) {
	for _, s := range subjects {
		b.Run("impl="+s.name, func(b *testing.B) {
			allow, closeFn := s.new()
			defer closeFn()
			fill(allow)
			keys := keys()
			runtime.GC()
			b.Run("mode=serial", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				refused := 0
				for b.Loop() {
					if !allow(keys[i]) {
						refused++
					}
					if i++; i == len(keys) {
						i = 0
					}
				}
				if refused > 0 {
					b.Fatalf("%d requests refused: the workload is meant to allow all", refused)
				}
			})
			b.Run("mode=parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := rand.IntN(len(keys))
					for pb.Next() {
						allow(keys[i])
						if i++; i == len(keys) {
							i = 0
						}
					}
				})
			})
		})
	}
}

// BenchmarkBytesPerKey reports the heap each limiter holds per tracked
// key after tracking the million keys (the keys' own strings, shared by
// all subjects, are allocated before and not counted; a limiter that
// keeps a key keeps a reference to it, which costs it nothing here).
func BenchmarkBytesPerKey(b *testing.B) {
	fillOrder() // builds keys and fillOrder outside the measurement
	for _, s := range subjects {
		b.Run("impl="+s.name, func(b *testing.B) {
			var bpk float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				allow, closeFn := s.new()
				fill(allow)
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(allow)
				closeFn()
				bpk = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / numKeys
			}
			b.ReportMetric(bpk, "B/key")
		})
	}
}
