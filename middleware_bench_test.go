package apikey_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/apikeykit/apikey/memstore"
)

// discardWriter is a resettable http.ResponseWriter that keeps nothing,
// so benchmarks measure the middleware rather than a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func newDiscardWriter() *discardWriter { return &discardWriter{h: make(http.Header)} }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) reset()                      { clear(w.h); w.code = 0 }

var (
	benchRequestsOnce sync.Once
	benchRequests     []*http.Request // one per fixture key, Authorization: Bearer
)

// loadBenchRequests builds one request per key of the Verify benchmarks'
// fixture (100k keys, issued once per binary, cache warm).
func loadBenchRequests(b *testing.B) (*benchFixture, []*http.Request) {
	f := loadFixture(b)
	benchRequestsOnce.Do(func() {
		base := httptest.NewRequest(http.MethodGet, "/orders", nil)
		base.RemoteAddr = "198.51.100.7:40000"
		benchRequests = make([]*http.Request, len(f.tokens))
		for i, tok := range f.tokens {
			r := base.WithContext(base.Context())
			r.Header = http.Header{"Authorization": {"Bearer " + tok}}
			benchRequests[i] = r
		}
	})
	return f, benchRequests
}

// BenchmarkMiddleware measures a request through the middleware to a
// no-op handler, against the same handler with no middleware ("bare"), over
// 100k distinct keys on a warm cache. Subtract bare from the others for
// the cost the middleware adds, and verify (Manager.Verify alone) for the
// cost it adds over verification itself.
func BenchmarkMiddleware(b *testing.B) {
	f, reqs := loadBenchRequests(b)
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	huge := apikey.Limit{Rate: 1_000_000_000, Period: time.Second, Burst: 1_000_000_000}
	limiter := must(memlimit.NewLimiter())
	defer limiter.Close()
	counter := must(memlimit.NewCounter())
	defer counter.Close()
	hugeQuota := apikey.Quota{Limit: 1 << 60, Period: apikey.MonthPeriod}
	// The same keys on a Manager that meters usage: flushed only at
	// Close ("usage"), so that the request path alone is measured, or
	// with the default interval and batch ("usage-flushing"), whose
	// background flushes of up to 100k buckets count in allocs/op.
	metered := func(opts ...apikey.Option) *apikey.Manager {
		m := must(apikey.NewManager(f.store, append([]apikey.Option{apikey.WithPrefix("acme_live"),
			apikey.WithPepper("v1", testPepper), apikey.WithCache(benchKeys, time.Hour)}, opts...)...))
		b.Cleanup(func() { m.Close() })
		return m
	}
	usage := metered(apikey.WithUsageFlush(time.Hour, 1<<30))
	flushing := metered()
	// The same keys, each with Credits, on a Manager that does not meter
	// (as f.m does not): compare "auth+credits" with "auth".
	hugeCredits := apikey.Credits{Grant: 1 << 52, Period: apikey.MonthPeriod}
	withCredits := must(apikey.NewManager(creditsStore{Store: f.store, credits: hugeCredits}, apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", testPepper), apikey.WithCache(benchKeys, time.Hour), apikey.WithoutUsage()))
	b.Cleanup(func() { withCredits.Close() })
	ledger := must(memlimit.NewLedger())
	defer ledger.Close()
	cases := []struct {
		name string
		h    http.Handler
	}{
		{"bare", noop},
		// The floor for "auth": Manager.Verify of the same Bearer token,
		// called by hand, with no context, challenge or event machinery.
		{"verify", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := f.m.Verify(r.Context(), r.Header["Authorization"][0][len("Bearer "):]); err != nil {
				w.WriteHeader(http.StatusUnauthorized)
			}
		})},
		{"auth", f.m.Middleware()(noop)},
		{"auth+scope", f.m.Middleware()(apikey.RequireScopes("orders:read")(noop))},
		// With a failed-authentication limit and nobody blocked, as is
		// usual: it should cost nothing on a request with a valid key.
		{"auth+failauth", f.m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: limiter,
			FailedAuth: apikey.Limit{Rate: 10, Period: time.Minute}}))(noop)},
		{"auth+ratelimit", f.m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: limiter,
			Default: huge}))(noop)},
		// The middleware's own share of auth+ratelimit: a Limiter that
		// answers at once, so what remains is the call and the RateLimit
		// fields.
		{"auth+ratelimit-fixed", f.m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: fixedLimiter{},
			Default: huge}))(noop)},
		// Usage metering: compare with auth and auth+ratelimit-fixed.
		{"auth+usage", usage.Middleware()(noop)},
		{"auth+usage-flushing", flushing.Middleware()(noop)},
		{"auth+ratelimit-fixed+usage", usage.Middleware(apikey.WithLimits(apikey.Limits{Limiter: fixedLimiter{},
			Default: huge}))(noop)},
		// Credits: each key's own on memlimit's Ledger, and on the
		// Manager's own; an owner's balance (1000 owners) on memlimit.
		// Compare each with auth.
		{"auth+credits", withCredits.Middleware(apikey.WithLimits(apikey.Limits{Ledger: ledger}))(noop)},
		{"auth+credits-own-ledger", withCredits.Middleware()(noop)},
		{"auth+ownercredits", f.m.Middleware(apikey.WithLimits(apikey.Limits{Ledger: ledger,
			PerOwnerCredits: hugeCredits}))(noop)},
		// An owner quota on memlimit, with an Event hook, without and with
		// quota thresholds: compare the two for the thresholds' cost.
		{"auth+ownerquota+events", f.m.Middleware(apikey.WithLimits(apikey.Limits{Counter: counter,
			PerOwnerQuota: hugeQuota}), apikey.WithOnEvent(func(apikey.Event) {}))(noop)},
		{"auth+ownerquota+events+thresholds", f.m.Middleware(apikey.WithLimits(apikey.Limits{Counter: counter,
			PerOwnerQuota: hugeQuota}), apikey.WithOnEvent(func(apikey.Event) {}),
			apikey.WithQuotaThresholds(0.5, 0.8, 1))(noop)},
	}
	for _, c := range cases {
		// Every key has its bucket before timing starts, as a warm
		// limiter would.
		w := newDiscardWriter()
		for _, r := range reqs {
			w.reset()
			c.h.ServeHTTP(w, r)
			if w.code != 0 {
				b.Fatalf("%s: status %d", c.name, w.code)
			}
		}
		b.Run(c.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			w := newDiscardWriter()
			i := 0
			for b.Loop() {
				w.reset()
				c.h.ServeHTTP(w, reqs[i%len(reqs)])
				i++
			}
			if w.code != 0 {
				b.Fatalf("status %d", w.code)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := newDiscardWriter()
				i := rand.IntN(len(reqs))
				for pb.Next() {
					w.reset()
					c.h.ServeHTTP(w, reqs[i%len(reqs)])
					i++
				}
				if w.code != 0 {
					b.Errorf("status %d", w.code)
				}
			})
		})
		b.Run(c.name+"/recorder", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.h.ServeHTTP(httptest.NewRecorder(), reqs[i%len(reqs)])
				i++
			}
		})
	}
}

// creditsStore is the benchmark fixture's store, whose keys all carry
// credits (and a quota, if set): a copy of each record with Credits set,
// as if issued with them.
type creditsStore struct {
	apikey.Store
	credits apikey.Credits
	quota   apikey.Quota
}

func (s creditsStore) Get(ctx context.Context, id string) (*apikey.Key, error) {
	k, err := s.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	c := *k
	c.Credits, c.Quota = s.credits, s.quota
	return &c, nil
}

// fixedLedger allows every Spend at once, with a plausible Decision: what
// credits cost the middleware itself, without a ledger's work.
type fixedLedger struct{}

func (fixedLedger) Spend(context.Context, string, apikey.Credits, int64) (apikey.Decision, error) {
	return apikey.Decision{Allowed: true, Limit: 1 << 52, Remaining: 1<<52 - 42, Reset: 240 * time.Hour}, nil
}
func (fixedLedger) Refund(context.Context, string, apikey.Credits, int64) error { return nil }
func (fixedLedger) TopUp(context.Context, string, apikey.Credits, int64) (int64, error) {
	return 1 << 52, nil
}

// fixedLimiter allows everything at once with a plausible Decision.
type fixedLimiter struct{}

func (fixedLimiter) Allow(context.Context, string, apikey.Limit) (apikey.Decision, error) {
	return apikey.Decision{Allowed: true, Limit: 100, Remaining: 42, Reset: 17 * time.Second}, nil
}

// BenchmarkMiddlewareFailedAuthChurn measures requests with a valid key
// while Limits.FailedAuth's block list is full: "full" with nobody adding
// to it, "churn" while an attacker keeps adding to it. The attacker is one
// goroutine sending made-up keys from the 2^17 /64s of an IPv6 /47, two
// failures each, so that every address it comes back to has been pushed
// out and is blocked again. p50-ns and p99-ns are the latency of the valid
// requests alone, blocks/op how many addresses the attacker blocked per
// valid request; allocs/op includes the attacker's.
func BenchmarkMiddlewareFailedAuthChurn(b *testing.B) {
	m := must(apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper)))
	defer m.Close()
	s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "team-42"})
	if err != nil {
		b.Fatal(err)
	}
	limiter := must(memlimit.NewLimiter())
	defer limiter.Close()
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: limiter,
		FailedAuth: apikey.Limit{Rate: 1, Period: time.Hour, Burst: 1}}))(noop)

	const attackers = 1 << 17
	bad := make([]*http.Request, attackers)
	for i := range bad {
		r := httptest.NewRequest(http.MethodGet, "/orders", nil)
		r.RemoteAddr = fmt.Sprintf("[2001:db8:%x:%x::1]:443", i>>16, i&0xffff)
		r.Header.Set("X-API-Key", "acme_test_made_up")
		bad[i] = r
	}
	attack := func(w *discardWriter, i int) {
		for range 2 {
			w.reset()
			h.ServeHTTP(w, bad[i%attackers])
		}
	}
	w := newDiscardWriter()
	for i := range attackers / 2 { // the list holds 1<<16
		attack(w, i)
	}
	good := httptest.NewRequest(http.MethodGet, "/orders", nil)
	good.RemoteAddr = "192.0.2.10:40000"
	good.Header.Set("Authorization", "Bearer "+s.Reveal())

	next := attackers / 2
	for _, churn := range []bool{false, true} {
		name := "full"
		if churn {
			name = "churn"
		}
		b.Run(name, func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var blocks atomic.Int64
			if churn {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w := newDiscardWriter()
					for ; ; next++ {
						select {
						case <-stop:
							return
						default:
						}
						attack(w, next)
						blocks.Add(1)
					}
				}()
			}
			var mu sync.Mutex
			var lat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := newDiscardWriter()
				mine := make([]time.Duration, 0, 1<<14)
				for pb.Next() {
					w.reset()
					t0 := time.Now()
					h.ServeHTTP(w, good)
					if len(mine) < cap(mine) {
						mine = append(mine, time.Since(t0))
					}
					if w.code != 0 {
						b.Errorf("status %d", w.code)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
				b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
			}
			b.ReportMetric(float64(blocks.Load())/float64(b.N), "blocks/op")
		})
	}
}

// BenchmarkMiddlewareAccounting compares, request by request, the
// middleware alone ("auth") with the same middleware metering usage
// ("usage", flushed only at Close so that the request path alone is
// measured) and with each key's Credits on memlimit's Ledger and on the
// Manager's own ("credits", "credits-own"), and with each key's Quota on
// memlimit's Counter ("quota"), and with a second Manager just like
// auth's ("control", whose "+ns" is the comparison's resolution). Every
// iteration sends the
// same request (one of 100k distinct keys, at random) through each in
// turn, in a new random order each time, and times each, so that the
// machine's load, which changes from moment to moment, weighs on all of
// them alike: on a shared machine this is the comparison to read. The
// order is random rather than rotated because a step's time depends on
// the one before it: the first pays for bringing the request into the
// CPU's cache, and one after a step that touches much memory finds less
// of its own there (with a fixed order, two identical Managers differed
// by 450 ns). It reports each one's ns/op, and the
// ns each adds to auth ("+ns") with its ratio to it ("/auth"); the
// parallel variant does the same on every goroutine of RunParallel.
func BenchmarkMiddlewareAccounting(b *testing.B) {
	f, reqs := loadBenchRequests(b)
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	newManager := func(store apikey.Store, opts ...apikey.Option) *apikey.Manager {
		m := must(apikey.NewManager(store, append([]apikey.Option{apikey.WithPrefix("acme_live"),
			apikey.WithPepper("v1", testPepper), apikey.WithCache(benchKeys, time.Hour)}, opts...)...))
		b.Cleanup(func() { m.Close() })
		return m
	}
	// Each step has a Manager, and so a cache, of its own, made the same
	// way and warmed in the same loop: one step must not find the key's
	// memory warm because another just read it, and the baseline's cache
	// must not be laid out in memory differently from the others'.
	// Every Manager reads the keys through creditsStore, which copies each
	// Key once more: with the credits' Managers alone doing so, their keys
	// lay in memory among the discarded copies, and their steps took
	// 200-400 ns longer to reach them.
	plain := creditsStore{Store: f.store}
	auth := newManager(plain, apikey.WithoutUsage())
	// A second Manager identical to auth's: how far apart two equal steps
	// come out is the resolution of every other step's "+ns".
	control := newManager(plain, apikey.WithoutUsage())
	usage := newManager(plain, apikey.WithUsageFlush(time.Hour, 1<<30))
	credits := apikey.Credits{Grant: 1 << 52, Period: apikey.MonthPeriod}
	withCredits := newManager(creditsStore{Store: f.store, credits: credits}, apikey.WithoutUsage())
	withOwnCredits := newManager(creditsStore{Store: f.store, credits: credits}, apikey.WithoutUsage())
	withFixedCredits := newManager(creditsStore{Store: f.store, credits: credits}, apikey.WithoutUsage())
	withQuota := newManager(creditsStore{Store: f.store, quota: apikey.Quota{Limit: 1 << 52, Period: apikey.MonthPeriod}}, apikey.WithoutUsage())
	ledger := must(memlimit.NewLedger())
	b.Cleanup(func() { ledger.Close() })
	counter := must(memlimit.NewCounter())
	b.Cleanup(func() { counter.Close() })
	steps := []struct {
		name string
		h    http.Handler
	}{
		{"auth", auth.Middleware()(noop)},
		{"control", control.Middleware()(noop)},
		{"usage", usage.Middleware()(noop)},
		{"credits", withCredits.Middleware(apikey.WithLimits(apikey.Limits{Ledger: ledger}))(noop)},
		{"credits-own", withOwnCredits.Middleware()(noop)},
		// A Ledger that answers at once: the middleware's own part of
		// what credits cost (the RateLimit fields, the larger context).
		{"credits-fixed", withFixedCredits.Middleware(apikey.WithLimits(apikey.Limits{Ledger: fixedLedger{}}))(noop)},
		// Each key's Quota on memlimit's Counter: what credits are
		// measured against, the same work on another backend.
		{"quota", withQuota.Middleware(apikey.WithLimits(apikey.Limits{Counter: counter}))(noop)},
	}
	// Warm every cache, one request through every step at a time, so
	// that the steps' cache entries are allocated side by side: warmed
	// one Manager after the other, the first one's entries filled the
	// gaps the fixture left in the heap and were 200-300 ns slower to
	// reach than an identical Manager's.
	w := newDiscardWriter()
	for _, r := range reqs {
		for _, s := range steps {
			w.reset()
			s.h.ServeHTTP(w, r)
			if w.code != 0 {
				b.Fatalf("%s: status %d", s.name, w.code)
			}
		}
	}
	report := func(b *testing.B, t *stepTimer) {
		for j, s := range steps {
			b.ReportMetric(t.mean(j), s.name+"-ns/op")
			if j > 0 {
				b.ReportMetric(t.mean(j)-t.mean(0), s.name+"+ns")
				b.ReportMetric(t.mean(j)/t.mean(0), s.name+"/auth")
			}
		}
		t.reportDropped(b)
	}
	// each sends r through every step, in a random order.
	each := func(t *stepTimer, r *http.Request, w *discardWriter) {
		t.time(func(j int) {
			w.reset()
			steps[j].h.ServeHTTP(w, r)
		})
	}
	serial := func(b *testing.B, keys int) {
		b.ReportAllocs()
		t := newStepTimer(len(steps))
		w := newDiscardWriter()
		for b.Loop() {
			each(t, reqs[rand.IntN(keys)], w)
		}
		report(b, t)
	}
	b.Run("serial", func(b *testing.B) { serial(b, len(reqs)) })
	// The same on 1000 of the keys, whose memory stays in the CPU's
	// caches: the difference from serial is what reaching each key's
	// memory (cache entry, limiter state) costs.
	b.Run("serial-1k-keys", func(b *testing.B) { serial(b, 1000) })
	// Each step alone, for profiles.
	for _, s := range steps {
		b.Run(s.name+"-only", func(b *testing.B) {
			b.ReportAllocs()
			w := newDiscardWriter()
			for b.Loop() {
				w.reset()
				s.h.ServeHTTP(w, reqs[rand.IntN(len(reqs))])
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var mu sync.Mutex
		all := newStepTimer(len(steps))
		b.RunParallel(func(pb *testing.PB) {
			t := newStepTimer(len(steps))
			w := newDiscardWriter()
			for pb.Next() {
				each(t, reqs[rand.IntN(len(reqs))], w)
			}
			mu.Lock()
			all.add(t)
			mu.Unlock()
		})
		report(b, all)
	})
}

// BenchmarkMeteringOnOff measures usage metering alone: one Manager, one
// middleware and the same cache entries serve each request twice with
// metering off and once with it on (MeteringSwitch), in a random order
// per request, over 100,000 keys and over 1,000. The two "off" steps are an A/A
// comparison: how far apart they come out is the resolution of
// "metering+ns". Serial only: metering cannot be switched while requests
// run concurrently; BenchmarkMiddlewareAccounting's parallel case compares
// two Managers instead.
func BenchmarkMeteringOnOff(b *testing.B) {
	f, reqs := loadBenchRequests(b)
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	m := must(apikey.NewManager(f.store, apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(benchKeys, time.Hour), apikey.WithUsageFlush(time.Hour, 1<<30)))
	off, on := apikey.MeteringSwitch(m)
	b.Cleanup(func() { on(); m.Close() })
	h := m.Middleware()(noop)
	w := newDiscardWriter()
	for _, r := range reqs { // warm the cache and list every key's slots
		w.reset()
		h.ServeHTTP(w, r)
		if w.code != 0 {
			b.Fatalf("status %d", w.code)
		}
	}
	steps := []struct {
		name string
		set  func()
	}{{"off", off}, {"off-again", off}, {"on", on}}
	run := func(b *testing.B, keys int) {
		t := newStepTimer(len(steps))
		b.ReportAllocs()
		for b.Loop() {
			r := reqs[rand.IntN(keys)]
			t.time(func(j int) {
				steps[j].set()
				w.reset()
				h.ServeHTTP(w, r)
			})
		}
		on()
		for j, s := range steps {
			b.ReportMetric(t.mean(j), s.name+"-ns/op")
		}
		b.ReportMetric(t.mean(2)-t.mean(0), "metering+ns")
		b.ReportMetric(t.mean(1)-t.mean(0), "aa+ns")
		t.reportDropped(b)
	}
	b.Run("keys=100000", func(b *testing.B) { run(b, len(reqs)) })
	// 1000 keys, whose memory stays in the CPU's caches: the difference
	// is what reaching the key's usage slots costs.
	b.Run("keys=1000", func(b *testing.B) { run(b, 1000) })
}

// A stepTimer times requests through several steps, each request through
// every step in a random order, and sums each step's time over the
// requests. It leaves out every request during which a step took longer
// than maxStep: a step that loses the CPU for a time slice, or is stopped
// by the garbage collector, would otherwise add tens of microseconds to
// one step and nothing to the others. It is not safe for concurrent use:
// a goroutine has one of its own, which add merges.
type stepTimer struct {
	spent, took []time.Duration
	order       []int
	n, dropped  int
}

// maxStep is far above what one request through the middleware takes
// here (2 to 10 µs, on cold memory), and below a time slice.
const maxStep = 50 * time.Microsecond

func newStepTimer(steps int) *stepTimer {
	return &stepTimer{spent: make([]time.Duration, steps), took: make([]time.Duration, steps), order: make([]int, steps)}
}

// time runs step(j) for every step j, in a random order, timing each.
func (t *stepTimer) time(step func(j int)) {
	shuffle(t.order)
	for _, j := range t.order {
		t0 := time.Now()
		step(j)
		t.took[j] = time.Since(t0)
	}
	if slices.Max(t.took) > maxStep {
		t.dropped++
		return
	}
	for j, d := range t.took {
		t.spent[j] += d
	}
	t.n++
}

// add adds o's sums to t's.
func (t *stepTimer) add(o *stepTimer) {
	for j := range t.spent {
		t.spent[j] += o.spent[j]
	}
	t.n += o.n
	t.dropped += o.dropped
}

// mean returns step j's mean time in nanoseconds over the requests kept.
func (t *stepTimer) mean(j int) float64 {
	return float64(t.spent[j].Nanoseconds()) / float64(max(t.n, 1))
}

// reportDropped reports the share of requests left out.
func (t *stepTimer) reportDropped(b *testing.B) {
	b.ReportMetric(float64(t.dropped)/float64(max(t.n+t.dropped, 1)), "dropped/op")
}

// shuffle fills order with 0..len(order)-1 in a random order, without
// allocating.
func shuffle(order []int) {
	for i := range order {
		order[i] = i
	}
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
}
