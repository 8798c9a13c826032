package redislimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
)

// BenchmarkLeaseFleet compares, in one run, memlimit (no Redis), the
// exact Limiter (one EVALSHA per decision) and the LeaseLimiter, with its
// default advance (lease) and without advances (lease-strict), with 1, 2
// and 4 instances on one Redis, each with a client of its own.
// Decisions go to 10,000 distinct keys drawn from a Zipf distribution (s
// = 1.1: a few keys take most of the traffic, as API keys do), the same
// sequence for every mode, under a limit the load stays below (10^7/s
// per key), so that every mode allows every request and only the
// mechanism differs. It reports, besides ns/op, the Redis script calls
// per decision from INFO commandstats (cmds/op) and the share of
// decisions allowed (allowed/op).
//
// serial is one goroutine: the latency of a decision. parallel keeps 8
// goroutines per CPU, spread over the instances: the throughput.
func BenchmarkLeaseFleet(b *testing.B) {
	c := testClient(b)
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%011d", i)
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, uint64(len(keys)-1))
	seq := make([]string, 1<<20)
	for i := range seq {
		seq[i] = keys[z.Uint64()]
	}
	limit := apikey.Limit{Rate: 10_000_000, Period: time.Second}
	ctx := context.Background()

	// measure runs f, and reports the script calls and the allowed
	// share of the decisions it counted, once the calls for those
	// decisions have ended.
	measure := func(b *testing.B, ls []apikey.Limiter, f func(b *testing.B, allowed, decisions *atomic.Int64)) {
		b.ReportAllocs()
		before := commandStats(b, c)
		var allowed, decisions atomic.Int64
		f(b, &allowed, &decisions)
		b.StopTimer()
		for _, l := range ls {
			if l, ok := l.(*LeaseLimiter); ok {
				waitIdle(b, l)
			}
		}
		after := commandStats(b, c)
		cmds := after["evalsha"] - before["evalsha"] + after["eval"] - before["eval"]
		if n := decisions.Load(); n > 0 {
			b.ReportMetric(float64(cmds)/float64(n), "cmds/op")
			b.ReportMetric(float64(allowed.Load())/float64(n), "allowed/op")
		}
	}
	run := func(b *testing.B, ls []apikey.Limiter) {
		// Warm up: connections, the script, and the shares.
		for i := range 50_000 {
			ls[i%len(ls)].Allow(ctx, seq[i], limit)
		}
		b.Run("serial", func(b *testing.B) {
			measure(b, ls, func(b *testing.B, allowed, decisions *atomic.Int64) {
				i := 0
				for b.Loop() {
					d, err := ls[i%len(ls)].Allow(ctx, seq[i%len(seq)], limit)
					if err != nil {
						b.Fatal(err)
					}
					if d.Allowed {
						allowed.Add(1)
					}
					decisions.Add(1)
					i++
				}
			})
		})
		b.Run("parallel", func(b *testing.B) {
			measure(b, ls, func(b *testing.B, allowed, decisions *atomic.Int64) {
				b.SetParallelism(8)
				var next, goroutine atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					l := ls[goroutine.Add(1)%int64(len(ls))]
					for pb.Next() {
						d, err := l.Allow(ctx, seq[next.Add(1)%int64(len(seq))], limit)
						if err != nil {
							b.Error(err)
							return
						}
						if d.Allowed {
							allowed.Add(1)
						}
						decisions.Add(1)
					}
				})
			})
		})
	}

	b.Run("mode=memlimit", func(b *testing.B) {
		m, err := memlimit.NewLimiter()
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		run(b, []apikey.Limiter{m})
	})
	for _, n := range []int{1, 2, 4} {
		prefix := testPrefix()
		b.Run(fmt.Sprintf("mode=exact/instances=%d", n), func(b *testing.B) {
			ls := make([]apikey.Limiter, n)
			for i := range ls {
				ls[i] = newTestLimiter(b, testClient(b), prefix)
			}
			run(b, ls)
		})
		for _, m := range []struct {
			name string
			opts []LeaseOption
		}{
			{"lease", nil},
			{"lease-strict", []LeaseOption{WithAdvance(0)}},
		} {
			b.Run(fmt.Sprintf("mode=%s/instances=%d", m.name, n), func(b *testing.B) {
				ls := make([]apikey.Limiter, n)
				for i := range ls {
					ls[i] = newTestLease(b, testClient(b), append([]LeaseOption{WithPrefix(prefix)}, m.opts...)...)
				}
				run(b, ls)
			})
		}
	}
}

// BenchmarkLeaseLocal is the latency of a decision a LeaseLimiter makes
// from a share it holds, against memlimit's, over the same 1000 keys in a
// shuffled order: the sync interval is a minute and the burst large, so
// that after the warm-up shares are leased ahead of time, in the
// background, and no decision waits for Redis.
func BenchmarkLeaseLocal(b *testing.B) {
	c := testClient(b)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%011d", i)
	}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	limit := apikey.Limit{Rate: 1_000_000_000, Period: time.Second, Burst: 1 << 22}
	ctx := context.Background()
	m, err := memlimit.NewLimiter()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	lease := newTestLease(b, c, WithPrefix(testPrefix()), WithSyncInterval(time.Minute))
	for _, tc := range []struct {
		name string
		l    apikey.Limiter
	}{{"memlimit", m}, {"lease", lease}} {
		// Warm up: shares grow to 2^16 tokens per key.
		for i := range 1 << 17 {
			tc.l.Allow(ctx, keys[i%len(keys)], limit)
		}
		b.Run(tc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := tc.l.Allow(ctx, keys[i%len(keys)], limit); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := tc.l.Allow(ctx, keys[next.Add(1)%int64(len(keys))], limit); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
