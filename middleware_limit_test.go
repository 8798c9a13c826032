package apikey_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func issueKey(t *testing.T, f *mwFixture, req apikey.IssueRequest) (string, *apikey.Key) {
	t.Helper()
	if req.Owner == "" {
		req.Owner = "team-42"
	}
	s, k, err := f.m.Issue(context.Background(), req)
	require.NoError(t, err)
	_, _, secret := parts(t, s.Reveal())
	f.secrets = append(f.secrets, secret)
	return s.Reveal(), k
}

func withKey(key string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }
}

// TestMiddlewareEnforcesOwnLimitsByDefault is what a new user tried: a key
// issued with a RateLimit and a Quota, behind Middleware with no options.
// Both are enforced, on the Manager's own limiter and counter, which every
// Middleware of the Manager shares.
func TestMiddlewareEnforcesOwnLimitsByDefault(t *testing.T) {
	f := newMWFixture(t)
	h, calls := f.handler()
	other := f.m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	limited, _ := issueKey(t, f, apikey.IssueRequest{RateLimit: apikey.Limit{Rate: 1, Period: time.Hour}})
	metered, _ := issueKey(t, f, apikey.IssueRequest{Quota: apikey.Quota{Limit: 1, Period: time.Hour}})
	for _, tc := range []struct {
		name, key, policy, reason string
	}{
		{"rate limit", limited, `"key";q=1;w=3600`, string(apikey.ReasonRateLimit)},
		{"quota", metered, `"quota";q=1;w=3600`, string(apikey.ReasonQuota)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			w := serve(h, newRequest(withKey(tc.key)))
			require.Equal(t, 200, w.Code)
			assert.Equal(t, tc.policy, w.Header().Get("RateLimit-Policy"))
			w = serve(h, newRequest(withKey(tc.key)))
			assertRejected(t, w, 429, "")
			assert.Equal(t, tc.reason, string(f.events.last(t).Reason))
			// Another route of the same Manager counts in the same bucket.
			assertRejected(t, serve(other, newRequest(withKey(tc.key))), 429, "")
			assert.Equal(t, before+1, calls.Load())
			// An hour later the key may call again.
			f.clock.Advance(time.Hour)
			assert.Equal(t, 200, serve(h, newRequest(withKey(tc.key))).Code)
		})
	}
	// A key without limits of its own is not limited, and gets no fields.
	for range 5 {
		w := serve(h, newRequest(withKey(f.valid)))
		require.Equal(t, 200, w.Code)
		assert.Empty(t, w.Header().Get("RateLimit-Policy"))
	}
}

// TestManagerCloseStopsOwnLimiters checks that the sweepers of the
// Manager's own limiter and counter stop at Close, and that the middleware
// still enforces limits afterwards.
func TestManagerCloseStopsOwnLimiters(t *testing.T) {
	before := runtime.NumGoroutine()
	m, _, _ := newTestManager(t, apikey.WithCache(0, 0))
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "o", RateLimit: apikey.Limit{Rate: 1, Period: time.Hour}})
	require.NoError(t, err)
	assert.Equal(t, 200, serve(h, newRequest(withKey(s.Reveal()))).Code)
	require.NoError(t, m.Close())
	assertRejected(t, serve(h, newRequest(withKey(s.Reveal()))), 429, "")
	// A Middleware made after Close starts no sweeper that would outlive it.
	m.Middleware()
	for range 100 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
}

func TestMiddlewareRateLimit(t *testing.T) {
	f := newMWFixture(t)
	lim := newRecordingLimiter(f.clock.Now)
	h, calls := f.handler(apikey.WithLimits(apikey.Limits{Limiter: lim, Default: apikey.Limit{Rate: 100, Period: time.Minute, Burst: 100}}))

	// The key's own limit: 2 per minute, burst 2.
	key, k := issueKey(t, f, apikey.IssueRequest{RateLimit: apikey.Limit{Rate: 2, Period: time.Minute, Burst: 2}})
	w := serve(h, newRequest(withKey(key)))
	assert.Equal(t, 200, w.Code)
	assert.Equal(t, `"key";q=2;w=60`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"key";r=1;t=30`, w.Header().Get("RateLimit"))
	w = serve(h, newRequest(withKey(key)))
	assert.Equal(t, 200, w.Code)
	assert.Equal(t, `"key";r=0;t=60`, w.Header().Get("RateLimit"))
	w = serve(h, newRequest(withKey(key)))
	p := assertRejected(t, w, 429, "")
	assert.Equal(t, "rate limit exceeded", p.Detail)
	assert.Equal(t, "30", w.Header().Get("Retry-After"))
	assert.Equal(t, `"key";q=2;w=60`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"key";r=0;t=60`, w.Header().Get("RateLimit"))
	assert.Equal(t, int64(2), calls.Load())
	ev := f.events.last(t)
	assert.Equal(t, apikey.OutcomeLimited, ev.Outcome)
	assert.Equal(t, apikey.ReasonRateLimit, ev.Reason)
	assert.Equal(t, k.ID, ev.KeyID)
	assert.Equal(t, "team-42", ev.Owner)
	assert.Equal(t, 3, lim.callCount(k.ID))

	// Half a minute later one request fits again.
	f.clock.Advance(30 * time.Second)
	assert.Equal(t, 200, serve(h, newRequest(withKey(key))).Code)

	// A key with no limit of its own gets the default.
	w = serve(h, newRequest(withKey(f.valid)))
	assert.Equal(t, 200, w.Code)
	assert.Equal(t, `"key";q=100;w=60`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"key";r=99;t=1`, w.Header().Get("RateLimit"))
	f.assertNoSecret(t, w)
}

func TestMiddlewareOwnerLimit(t *testing.T) {
	f := newMWFixture(t)
	lim := newRecordingLimiter(f.clock.Now)
	h, _ := f.handler(apikey.WithLimits(apikey.Limits{
		Limiter:  lim,
		Default:  apikey.Limit{Rate: 100, Period: time.Minute, Burst: 100},
		PerOwner: apikey.Limit{Rate: 3, Period: time.Hour, Burst: 3},
	}))
	a, _ := issueKey(t, f, apikey.IssueRequest{Owner: "acme"})
	b, _ := issueKey(t, f, apikey.IssueRequest{Owner: "acme"})
	for i, key := range []string{a, b, a} {
		w := serve(h, newRequest(withKey(key)))
		require.Equal(t, 200, w.Code, i)
		assert.Equal(t, `"key";q=100;w=60, "owner";q=3;w=3600`, w.Header().Get("RateLimit-Policy"))
	}
	w := serve(h, newRequest(withKey(b)))
	assertRejected(t, w, 429, "")
	assert.Equal(t, `"key";r=98;t=2, "owner";r=0;t=3600`, w.Header().Get("RateLimit"))
	assert.Equal(t, "1200", w.Header().Get("Retry-After"))
	assert.Equal(t, apikey.ReasonOwnerRateLimit, f.events.last(t).Reason)
	assert.Equal(t, 4, lim.callCount("owner:acme"))
	// Another owner is not affected.
	assert.Equal(t, 200, serve(h, newRequest(withKey(f.valid))).Code)
}

func TestMiddlewareQuota(t *testing.T) {
	f := newMWFixture(t)
	counter := newRecordingCounter()
	h, calls := f.handler(apikey.WithLimits(apikey.Limits{Counter: counter, Cost: func(r *http.Request) int64 {
		if strings.HasPrefix(r.URL.Path, "/bulk") {
			return 2
		}
		if r.URL.Path == "/free" {
			return 0
		}
		return 1
	}}))
	key, k := issueKey(t, f, apikey.IssueRequest{Quota: apikey.Quota{Limit: 3, Period: 24 * time.Hour}})
	bulk := func(r *http.Request) {
		withKey(key)(r)
		r.URL.Path = "/bulk"
	}
	w := serve(h, newRequest(bulk))
	assert.Equal(t, 200, w.Code)
	assert.Equal(t, `"quota";q=3;w=86400`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"quota";r=1;t=86400`, w.Header().Get("RateLimit"))
	w = serve(h, newRequest(bulk)) // 2 more would make 4 > 3
	p := assertRejected(t, w, 429, "")
	assert.Equal(t, "quota exhausted", p.Detail)
	assert.Equal(t, "86400", w.Header().Get("Retry-After"))
	assert.Equal(t, apikey.ReasonQuota, f.events.last(t).Reason)
	assert.Equal(t, 200, serve(h, newRequest(withKey(key))).Code) // 1 still fits
	free := func(r *http.Request) {
		withKey(key)(r)
		r.URL.Path = "/free"
	}
	w = serve(h, newRequest(free))
	assert.Equal(t, 200, w.Code)
	assert.Empty(t, w.Header().Get("RateLimit"), "a free request is not counted")
	assert.Equal(t, int64(3), calls.Load())
	assert.Equal(t, int64(3), counter.used["quota:"+k.ID])

	// Keys without a quota are not counted.
	w = serve(h, newRequest(withKey(f.valid)))
	assert.Equal(t, 200, w.Code)
	assert.Empty(t, w.Header().Get("RateLimit-Policy"))
}

func TestMiddlewareLimiterFailure(t *testing.T) {
	f := newMWFixture(t)
	limit := apikey.Limit{Rate: 10, Period: time.Second, Burst: 10}
	quotaKey, _ := issueKey(t, f, apikey.IssueRequest{Quota: apikey.Quota{Limit: 10, Period: time.Hour}})
	t.Run("fails closed by default", func(t *testing.T) {
		lim := newRecordingLimiter(f.clock.Now)
		lim.err = errBackend
		h, calls := f.handler(apikey.WithLimits(apikey.Limits{Limiter: lim, Default: limit}))
		w := serve(h, newRequest(withKey(f.valid)))
		assertRejected(t, w, 503, "")
		assert.Equal(t, "5", w.Header().Get("Retry-After"))
		assert.Zero(t, calls.Load())
		ev := f.events.last(t)
		assert.Equal(t, apikey.ReasonLimiter, ev.Reason)
		assert.ErrorIs(t, ev.Err, errBackend)
		assert.Equal(t, f.validKey.ID, ev.KeyID)
		assert.Equal(t, "team-42", ev.Owner)
		f.assertNoSecret(t, w)
	})
	t.Run("counter fails closed", func(t *testing.T) {
		c := newRecordingCounter()
		c.err = errBackend
		h, calls := f.handler(apikey.WithLimits(apikey.Limits{Counter: c}))
		assertRejected(t, serve(h, newRequest(withKey(quotaKey))), 503, "")
		assert.Zero(t, calls.Load())
	})
	t.Run("fail open", func(t *testing.T) {
		lim := newRecordingLimiter(f.clock.Now)
		lim.err = errBackend
		c := newRecordingCounter()
		c.err = errBackend
		h, calls := f.handler(apikey.WithLimits(apikey.Limits{Limiter: lim, Default: limit, Counter: c, FailOpen: true}))
		w := serve(h, newRequest(withKey(quotaKey)))
		assert.Equal(t, 200, w.Code)
		assert.Empty(t, w.Header().Get("RateLimit"))
		assert.Equal(t, int64(1), calls.Load())
		ev := f.events.last(t)
		assert.Equal(t, apikey.OutcomeAuthenticated, ev.Outcome)
		assert.ErrorIs(t, ev.Err, errBackend)
	})
}

func TestMiddlewareFailedAuthLimit(t *testing.T) {
	f := newMWFixture(t)
	lim := newRecordingLimiter(f.clock.Now)
	h, calls := f.handler(apikey.WithLimits(apikey.Limits{Limiter: lim, FailedAuth: apikey.Limit{Rate: 3, Period: time.Hour, Burst: 3}}))
	from := func(addr, key string) func(*http.Request) {
		return func(r *http.Request) {
			r.RemoteAddr = addr
			r.Header.Set("X-API-Key", key)
		}
	}
	attacker := "192.0.2.66:5555"
	for i := 0; i < 3; i++ {
		bad := forge("acme_test", "AAAAAAAAAAA"+string(rune('A'+i)), strings.Repeat("x", 43))
		r := newRequest(from(attacker, bad))
		// A new X-Forwarded-For each time does not make a new client:
		// no proxy is trusted.
		r.Header.Set("X-Forwarded-For", "203.0.113."+string(rune('1'+i)))
		assertRejected(t, serve(h, r), 401, chInvalid)
	}
	// The fourth failure exceeds the limit.
	w := serve(h, newRequest(from(attacker, flipChecksum(f.valid))))
	assertRejected(t, w, 429, "")
	assert.Equal(t, "1200", w.Header().Get("Retry-After"))
	assert.Equal(t, apikey.ReasonFailedAuthLimit, f.events.last(t).Reason)

	// Now even a valid key from there is refused before it is parsed.
	gets := f.store.gets.Load()
	w = serve(h, newRequest(from(attacker, f.valid)))
	p := assertRejected(t, w, 429, "")
	assert.Equal(t, "too many failed authentication attempts", p.Detail)
	assert.Equal(t, gets, f.store.gets.Load())
	assert.Zero(t, calls.Load())
	assert.Equal(t, 4, lim.callCount("authfail:192.0.2.66"))

	// Other clients are not affected; successes are not counted.
	assert.Equal(t, 200, serve(h, newRequest(from("192.0.2.67:1", f.valid))).Code)
	assert.Zero(t, lim.callCount("authfail:192.0.2.67"))

	// IPv6 clients are counted by /64.
	for i := 0; i < 4; i++ {
		serve(h, newRequest(from("[2001:db8:1:2::"+string(rune('1'+i))+"]:443", "acme_test_nope")))
	}
	assert.Equal(t, 4, lim.callCount("authfail:2001:db8:1:2::"))
	assertRejected(t, serve(h, newRequest(from("[2001:db8:1:2:ffff::9]:443", f.valid))), 429, "")

	// The block ends when the limiter would allow a failure again.
	f.clock.Advance(1201 * time.Second)
	assert.Equal(t, 200, serve(h, newRequest(from(attacker, f.valid))).Code)
}

func TestMiddlewareFailedAuthLimiterErrorKeeps401(t *testing.T) {
	f := newMWFixture(t)
	lim := newRecordingLimiter(f.clock.Now)
	lim.err = errBackend
	h, _ := f.handler(apikey.WithLimits(apikey.Limits{Limiter: lim, FailedAuth: apikey.Limit{Rate: 1, Period: time.Hour, Burst: 1}}))
	for i := 0; i < 3; i++ {
		assertRejected(t, serve(h, newRequest(withKey("acme_test_garbage"))), 401, chInvalid)
	}
	assert.Equal(t, 200, serve(h, newRequest(withKey(f.valid))).Code)
}

// TestMiddlewareConcurrent drives every feature at once from many
// goroutines, for the race detector.
func TestMiddlewareConcurrent(t *testing.T) {
	f := newMWFixture(t)
	lim := newRecordingLimiter(f.clock.Now)
	h, _ := f.handler(apikey.WithLimits(apikey.Limits{
		Limiter:    lim,
		Default:    apikey.Limit{Rate: 1000, Period: time.Second, Burst: 1000},
		PerOwner:   apikey.Limit{Rate: 1000, Period: time.Second, Burst: 1000},
		Counter:    newRecordingCounter(),
		FailedAuth: apikey.Limit{Rate: 5, Period: time.Minute, Burst: 5},
	}))
	quota, _ := issueKey(t, f, apikey.IssueRequest{Quota: apikey.Quota{Limit: 1 << 40, Period: time.Hour}})
	keys := []string{f.valid, quota, f.revoked, flipChecksum(f.valid), "garbage"}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				key := keys[(g+i)%len(keys)]
				w := serve(h, newRequest(func(r *http.Request) {
					r.RemoteAddr = "192.0.2." + string(rune('0'+g)) + ":1"
					r.Header.Set("X-API-Key", key)
				}))
				if w.Code == 200 && key != f.valid && key != quota {
					t.Errorf("200 for %q", key)
				}
			}
		}()
	}
	wg.Wait()
}

// TestMiddlewareWithMemoryLimits runs the middleware on memlimit's Limiter
// and Counter, on the same fake clock: per-key limits, an owner limit that
// caps the sum over an owner's keys, and a quota.
func TestMiddlewareWithMemoryLimits(t *testing.T) {
	f := newMWFixture(t)
	lim := must(memlimit.NewLimiter(memlimit.WithClock(f.clock.Now)))
	defer lim.Close()
	ctr := must(memlimit.NewCounter(memlimit.WithClock(f.clock.Now)))
	defer ctr.Close()
	h, _ := f.handler(apikey.WithLimits(apikey.Limits{Limiter: lim, Counter: ctr,
		PerOwner: apikey.Limit{Rate: 5, Period: time.Minute, Burst: 5}}))

	// Three keys of one owner, each allowed 4 a minute: together they get
	// the owner's 5, not 12.
	perKey := apikey.Limit{Rate: 4, Period: time.Minute, Burst: 4}
	var keys []string
	for i := 0; i < 3; i++ {
		key, _ := issueKey(t, f, apikey.IssueRequest{Owner: "minter", RateLimit: perKey})
		keys = append(keys, key)
	}
	allowed := 0
	for i := 0; i < 12; i++ {
		w := serve(h, newRequest(withKey(keys[i%3])))
		switch w.Code {
		case 200:
			allowed++
		case 429:
			assert.NotEmpty(t, w.Header().Get("Retry-After"))
		default:
			t.Fatalf("status %d", w.Code)
		}
	}
	assert.Equal(t, 5, allowed, "the owner limit caps the sum across the owner's keys")

	// One key alone hits its own limit first.
	solo, _ := issueKey(t, f, apikey.IssueRequest{Owner: "solo", RateLimit: apikey.Limit{Rate: 2, Period: time.Minute, Burst: 2}})
	codes := []int{}
	for i := 0; i < 3; i++ {
		codes = append(codes, serve(h, newRequest(withKey(solo))).Code)
	}
	assert.Equal(t, []int{200, 200, 429}, codes)

	// A quota of 3 a day: the fourth request is refused until the day ends.
	quota, _ := issueKey(t, f, apikey.IssueRequest{Owner: "metered", Quota: apikey.Quota{Limit: 3, Period: 24 * time.Hour}})
	for i := 0; i < 3; i++ {
		require.Equal(t, 200, serve(h, newRequest(withKey(quota))).Code)
	}
	w := serve(h, newRequest(withKey(quota)))
	p := assertRejected(t, w, 429, "")
	assert.Equal(t, "quota exhausted", p.Detail)
	f.clock.Advance(24 * time.Hour)
	assert.Equal(t, 200, serve(h, newRequest(withKey(quota))).Code)
	f.assertNoSecret(t, w)
}

// TestMiddlewareRateLimitFields checks both RateLimit fields for every
// combination of policies, whether or not the policy value can be one
// built in advance, and that no two responses share the storage of their
// field values: a handler that overwrites one response's value in place
// changes nothing in another's.
func TestMiddlewareRateLimitFields(t *testing.T) {
	f := newMWFixture(t)
	def := apikey.Limit{Rate: 100, Period: time.Minute, Burst: 100}
	own := apikey.Limit{Rate: 5, Period: time.Hour, Burst: 5}
	quota := apikey.Quota{Limit: 10, Period: 24 * time.Hour}
	plain, _ := issueKey(t, f, apikey.IssueRequest{Owner: "o1"})
	custom, _ := issueKey(t, f, apikey.IssueRequest{Owner: "o2", RateLimit: apikey.Limit{Rate: 2, Period: time.Minute, Burst: 2}})
	metered, _ := issueKey(t, f, apikey.IssueRequest{Owner: "o3", Quota: quota})
	for _, tc := range []struct {
		name         string
		limits       apikey.Limits
		key          string
		policy, rate string
	}{
		{"default", apikey.Limits{Default: def}, plain,
			`"key";q=100;w=60`, `"key";r=99;t=1`},
		{"own limit", apikey.Limits{Default: def}, custom,
			`"key";q=2;w=60`, `"key";r=1;t=30`},
		{"owner only", apikey.Limits{PerOwner: own}, plain,
			`"owner";q=5;w=3600`, `"owner";r=4;t=720`},
		{"default and owner", apikey.Limits{Default: def, PerOwner: own}, plain,
			`"key";q=100;w=60, "owner";q=5;w=3600`, `"key";r=99;t=1, "owner";r=4;t=720`},
		{"own limit and owner", apikey.Limits{Default: def, PerOwner: own}, custom,
			`"key";q=2;w=60, "owner";q=5;w=3600`, `"key";r=1;t=30, "owner";r=4;t=720`},
		{"default and quota", apikey.Limits{Default: def, Counter: newRecordingCounter()}, metered,
			`"key";q=100;w=60, "quota";q=10;w=86400`, `"key";r=99;t=1, "quota";r=9;t=86400`},
		{"all three", apikey.Limits{Default: def, PerOwner: own, Counter: newRecordingCounter()}, metered,
			`"key";q=100;w=60, "owner";q=5;w=3600, "quota";q=10;w=86400`, `"key";r=99;t=1, "owner";r=4;t=720, "quota";r=9;t=86400`},
		{"quota only", apikey.Limits{Counter: newRecordingCounter()}, metered,
			`"quota";q=10;w=86400`, `"quota";r=9;t=86400`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := must(memlimit.NewLimiter(memlimit.WithClock(f.clock.Now)))
			defer lim.Close()
			limits := tc.limits
			limits.Limiter = lim
			h, _ := f.handler(apikey.WithLimits(limits))
			first := serve(h, newRequest(withKey(tc.key)))
			require.Equal(t, 200, first.Code)
			assert.Equal(t, []string{tc.policy}, first.Header()["Ratelimit-Policy"])
			assert.Equal(t, []string{tc.rate}, first.Header()["Ratelimit"])
			// Scribble over the first response's values in place.
			first.Header()["Ratelimit-Policy"][0] = "scribbled"
			first.Header()["Ratelimit"][0] = "scribbled"
			second := serve(h, newRequest(withKey(tc.key)))
			require.Equal(t, 200, second.Code)
			assert.Equal(t, []string{tc.policy}, second.Header()["Ratelimit-Policy"])
			assert.NotEqual(t, "scribbled", second.Header().Get("RateLimit"))
			f.assertNoSecret(t, first)
			f.assertNoSecret(t, second)
		})
	}
}

// TestMiddlewareMemlimitKey checks that memlimit's Limiter counts a
// request through the middleware under the key's ID, as any Limiter does.
func TestMiddlewareMemlimitKey(t *testing.T) {
	f := newMWFixture(t)
	lim := must(memlimit.NewLimiter(memlimit.WithClock(f.clock.Now)))
	defer lim.Close()
	limit := apikey.Limit{Rate: 3, Period: time.Minute, Burst: 3}
	h, _ := f.handler(apikey.WithLimits(apikey.Limits{Limiter: lim, Default: limit}))
	key, k := issueKey(t, f, apikey.IssueRequest{})
	for i := 0; i < 2; i++ {
		require.Equal(t, 200, serve(h, newRequest(withKey(key))).Code)
	}
	d, err := lim.Allow(context.Background(), k.ID, limit)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.Equal(t, int64(0), d.Remaining, "two requests through the middleware and one here under k.ID share a bucket")
	assertRejected(t, serve(h, newRequest(withKey(key))), 429, "")
}

// TestMiddlewareFailedAuthUnixSocket serves the middleware on a real Unix
// socket, where every peer has the same (empty) address. Without
// WithTrustedUnixSocket failures are not counted at all, so six bad
// requests from one client do not lock out another holding a valid key;
// with it, X-Forwarded-For names each client and each gets its own bucket.
func TestMiddlewareFailedAuthUnixSocket(t *testing.T) {
	f := newMWFixture(t)
	lim := newRecordingLimiter(f.clock.Now)
	limits := apikey.WithLimits(apikey.Limits{Limiter: lim, FailedAuth: apikey.Limit{Rate: 3, Period: time.Hour, Burst: 3}})
	dir, err := os.MkdirTemp("", "apikey")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	serveUnix := func(name string, h http.Handler) *http.Client {
		path := filepath.Join(dir, name)
		ln, err := net.Listen("unix", path)
		require.NoError(t, err)
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}
	}
	get := func(c *http.Client, key, xff string) int {
		r, err := http.NewRequest(http.MethodGet, "http://api/orders", nil)
		require.NoError(t, err)
		r.Header.Set("X-API-Key", key)
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := c.Do(r)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	var remote atomic.Value
	record := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			remote.Store(r.RemoteAddr)
			h.ServeHTTP(w, r)
		})
	}

	t.Run("not trusted", func(t *testing.T) {
		h, _ := f.handler(limits)
		c := serveUnix("plain", record(h))
		for range 6 {
			assert.Equal(t, 401, get(c, "acme_test_made_up", "203.0.113.66"))
		}
		assert.Equal(t, 200, get(c, f.valid, ""), "another client on the socket is not locked out")
		t.Logf("RemoteAddr of a Unix peer: %q", remote.Load())
		assert.Zero(t, lim.callCount("authfail:unknown"))
		assert.Zero(t, lim.callCount("authfail:203.0.113.66"), "X-Forwarded-For from an untrusted peer is ignored")
		ev := f.events.last(t)
		assert.False(t, ev.ClientIP.IsValid())
	})
	t.Run("trusted", func(t *testing.T) {
		h, _ := f.handler(limits, apikey.WithTrustedUnixSocket())
		c := serveUnix("trusted", h)
		for range 3 {
			assert.Equal(t, 401, get(c, "acme_test_made_up", "203.0.113.77"))
		}
		assert.Equal(t, 429, get(c, "acme_test_made_up", "203.0.113.77"))
		assert.Equal(t, 429, get(c, f.valid, "203.0.113.77"), "the client that failed is blocked")
		assert.Equal(t, 200, get(c, f.valid, "203.0.113.78"), "another is not")
		assert.Equal(t, 4, lim.callCount("authfail:203.0.113.77"))
		assert.Equal(t, netip.MustParseAddr("203.0.113.78"), f.events.last(t).ClientIP)
		// Without X-Forwarded-For the client has no address: not counted.
		for range 6 {
			assert.Equal(t, 401, get(c, "acme_test_made_up", ""))
		}
		assert.Equal(t, 200, get(c, f.valid, ""))
	})
}

// TestMiddlewareFailedAuthNoSharedBucket checks that requests whose client
// has no address of its own are neither counted nor blocked: a trusted
// proxy that names no client (its own address is then what is found) and
// an empty RemoteAddr would otherwise put every client in one bucket.
func TestMiddlewareFailedAuthNoSharedBucket(t *testing.T) {
	f := newMWFixture(t)
	lim := newRecordingLimiter(f.clock.Now)
	h, _ := f.handler(apikey.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")),
		apikey.WithLimits(apikey.Limits{Limiter: lim, FailedAuth: apikey.Limit{Rate: 1, Period: time.Hour, Burst: 1}}))
	for _, tc := range []struct {
		name, remote, xff, bucket string
	}{
		{"trusted proxy, no X-Forwarded-For", "10.0.0.1:1", "", "authfail:10.0.0.1"},
		{"trusted proxy, malformed X-Forwarded-For", "10.0.0.2:1", "bogus", "authfail:10.0.0.2"},
		{"trusted proxies all the way", "10.0.0.3:1", "10.9.9.9", "authfail:10.9.9.9"},
		{"empty RemoteAddr", "", "", "authfail:unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := func(key string) *http.Request {
				return newRequest(func(r *http.Request) {
					r.RemoteAddr = tc.remote
					if tc.xff != "" {
						r.Header.Set("X-Forwarded-For", tc.xff)
					}
					r.Header.Set("X-API-Key", key)
				})
			}
			for range 5 {
				assertRejected(t, serve(h, req("acme_test_made_up")), 401, chInvalid)
			}
			assert.Equal(t, 200, serve(h, req(f.valid)).Code)
			assert.Zero(t, lim.callCount(tc.bucket))
		})
	}
	// A client named by the proxy still has its own bucket.
	from := func(key string) *http.Request {
		return newRequest(func(r *http.Request) {
			r.RemoteAddr = "10.0.0.1:1"
			r.Header.Set("X-Forwarded-For", "203.0.113.5")
			r.Header.Set("X-API-Key", key)
		})
	}
	assertRejected(t, serve(h, from("acme_test_made_up")), 401, chInvalid)
	assertRejected(t, serve(h, from("acme_test_made_up")), 429, "")
	assertRejected(t, serve(h, from(f.valid)), 429, "")
}

// TestMiddlewareRateLimitPolicyWindows checks the RateLimit-Policy item of
// limits and quotas whose periods are not whole seconds or whose burst is
// not their rate, and that a client keeping to it (q requests at once,
// again w seconds later) is never refused.
func TestMiddlewareRateLimitPolicyWindows(t *testing.T) {
	f := newMWFixture(t)
	for _, tc := range []struct {
		limit, quota string
		policy       string
	}{
		{limit: "10/100ms", policy: `"key";q=10;w=1`},
		{limit: "1/1500ms", policy: `"key";q=1;w=2`},
		{limit: "20/s,burst=5", policy: `"key";q=5;w=1`},
		{limit: "1000/m,burst=50", policy: `"key";q=50;w=3`},
		{limit: "100/1500ms", policy: `"key";q=66;w=1`},
		{limit: "100/s", policy: `"key";q=100;w=1`},
		{quota: "10/100ms", policy: `"quota";q=10;w=1`},
		{quota: "1/1500ms", policy: `"quota";q=1;w=2`},
		{quota: "5/2500ms", policy: `"quota";q=5;w=3`},
	} {
		t.Run(tc.limit+tc.quota, func(t *testing.T) {
			lim := must(memlimit.NewLimiter(memlimit.WithClock(f.clock.Now)))
			defer lim.Close()
			ctr := must(memlimit.NewCounter(memlimit.WithClock(f.clock.Now)))
			defer ctr.Close()
			h, _ := f.handler(apikey.WithLimits(apikey.Limits{Limiter: lim, Counter: ctr}))
			var req apikey.IssueRequest
			if tc.limit != "" {
				req.RateLimit = must(apikey.ParseLimit(tc.limit))
			} else {
				req.Quota = must(apikey.ParseQuota(tc.quota))
			}
			key, _ := issueKey(t, f, req)
			var q, w int
			_, err := fmt.Sscanf(tc.policy[strings.Index(tc.policy, ";"):], ";q=%d;w=%d", &q, &w)
			require.NoError(t, err)
			for round := range 3 {
				for i := range q {
					rec := serve(h, newRequest(withKey(key)))
					require.Equal(t, 200, rec.Code, "round %d, request %d of %d", round, i+1, q)
					assert.Equal(t, tc.policy, rec.Header().Get("RateLimit-Policy"))
				}
				f.clock.Advance(time.Duration(w) * time.Second)
			}
		})
	}
}
