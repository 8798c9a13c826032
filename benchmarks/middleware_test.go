package benchmarks

// The middleware comparison: one request per key, over the same 100,000
// distinct apikey keys (memstore, warm caches), through each handler
// chain to a no-op handler. Run it with ./run-peers.sh.
//
// Cases (impl=...):
//
//   - bare: the no-op handler alone; reads no header.
//   - floor: a hand-written handler doing the least an authenticated,
//     rate-limited request can cost: read the Authorization header, one
//     HMAC-SHA256 of the token (pooled HMAC state), a map lookup by kid, a
//     constant-time compare, and x/time/rate Allow from a map behind a
//     mutex. No scopes, no response headers, no context for the handler.
//   - verify: apikey Manager.Verify called from a handler (cache hit).
//   - apikey: apikey's Middleware with a per-key rate limit (memlimit.Limiter,
//     a limit that never refuses here) and its RateLimit fields, then
//     RequireScopes("orders:read").
//   - echo-bare: an echo.Echo with one route to a no-op handler.
//   - echo-keyauth: the same with echo's middleware.KeyAuth (e.Use, as
//     echo documents it), its validator doing what floor does for
//     authentication (pooled HMAC, lookup by kid, constant-time compare);
//     no rate limit, no scopes.
//   - httprate: go-chi/httprate's per-key limiter (LimitBy, keyed by the
//     Authorization header) around the no-op handler: rate limiting only,
//     no authentication at all.
//   - apikey-auth: apikey's Middleware alone, with no limit and no scope
//     check: what echo-keyauth does, for a like-for-like comparison.
//   - echo-keyauth+httprate: echo's KeyAuth, then httprate limiting per
//     key: authentication and a per-key limit assembled from the peers,
//     the nearest they come to the apikey case (which also checks a
//     scope and writes RateLimit fields).

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"flag"
	"fmt"
	"hash"
	"hash/crc32"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/apikeykit/apikey/memstore"
	"github.com/go-chi/httprate"
	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

const (
	mwKeys = 100_000
	// mwPerHour is the per-key limit of every rate-limiting case: per hour,
	// in bursts as large. A run sends each key a few dozen requests at
	// most, so nothing is refused (the benchmark fails if anything is), and
	// no key's bucket is full again during a run, so apikey's sweeper
	// forgets none: every limiter keeps tracking every key.
	mwPerHour = 1000
	mwPrefix  = "acme_live"
	// Fixed widths from the right of a key: "_" kid(12) "_" secret(43) crc(6).
	tailLen = 1 + 12 + 1 + 43 + 6
)

var mwPepper = []byte("benchmark-pepper-0123456789abcdef")

// mwFixture is a Manager with n issued keys, every one verified once.
type mwFixture struct {
	m      *apikey.Manager
	store  apikey.Store        // the Manager's memstore, holding every key
	tokens []string            // in visit order: not the order of issue
	digest map[string][32]byte // HMAC-SHA256(pepper, token) by kid
}

func newMWFixture(n int) *mwFixture {
	ctx := context.Background()
	store := memstore.New()
	m, err := apikey.NewManager(store, apikey.WithPrefix(mwPrefix),
		apikey.WithPepper("v1", mwPepper), apikey.WithCache(n, time.Hour))
	if err != nil {
		panic(err)
	}
	f := &mwFixture{m: m, store: store, digest: make(map[string][32]byte, n)}
	mac := hmac.New(sha256.New, mwPepper)
	for i := 0; i < n; i++ {
		secret, k, err := m.Issue(ctx, apikey.IssueRequest{
			Owner: fmt.Sprint("owner-", i%1000), Scopes: []string{"orders:read"}})
		if err != nil {
			panic(err)
		}
		tok := secret.Reveal()
		f.tokens = append(f.tokens, tok)
		mac.Reset()
		mac.Write([]byte(tok))
		f.digest[k.ID] = [32]byte(mac.Sum(nil))
	}
	// Visit in an order unrelated to issue, so no case reads objects in the
	// order they were allocated; warm the cache in yet another order.
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { f.tokens[i], f.tokens[j] = f.tokens[j], f.tokens[i] })
	for _, i := range rand.New(rand.NewPCG(3, 4)).Perm(n) {
		if _, err := m.Verify(ctx, f.tokens[i]); err != nil {
			panic(err)
		}
	}
	return f
}

var (
	mwOnce     sync.Once
	mwFix      *mwFixture
	mwRequests []*http.Request
)

// loadMW issues the 100k keys once per test binary and builds one request
// per key.
func loadMW() (*mwFixture, []*http.Request) {
	mwOnce.Do(func() {
		mwFix = newMWFixture(mwKeys)
		mwRequests = make([]*http.Request, len(mwFix.tokens))
		for i, tok := range mwFix.tokens {
			mwRequests[i] = newRequest("Bearer " + tok)
		}
	})
	return mwFix, mwRequests
}

func newRequest(authorization string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.RemoteAddr = "198.51.100.7:40000"
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return r
}

// discardWriter is a resettable http.ResponseWriter that keeps nothing
// (httptest.NewRecorder allocates).
type discardWriter struct {
	h    http.Header
	code int
}

func newDiscardWriter() *discardWriter { return &discardWriter{h: make(http.Header)} }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) reset()                      { clear(w.h); w.code = 0 }

// macPool holds HMAC states keyed with the pepper, with scratch space, so
// that handlers running concurrently each reuse one without allocating.
type macState struct {
	h   hash.Hash
	buf [apikey.MaxTokenLen]byte
	sum [sha256.Size]byte
}

var macPool = sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, mwPepper)} }}

// checkToken is the authentication of floor and of echo's validator: the
// kid at its fixed place from the right, HMAC-SHA256 of the token, map
// lookup, constant-time compare. It returns the kid.
func (f *mwFixture) checkToken(tok string) (kid string, ok bool) {
	if len(tok) <= tailLen || len(tok) > apikey.MaxTokenLen {
		return "", false
	}
	kid = tok[len(tok)-tailLen+1 : len(tok)-tailLen+13]
	want, found := f.digest[kid]
	s := macPool.Get().(*macState)
	n := copy(s.buf[:], tok)
	s.h.Reset()
	s.h.Write(s.buf[:n])
	sum := s.h.Sum(s.sum[:0])
	ok = subtle.ConstantTimeCompare(sum, want[:]) == 1 && found
	macPool.Put(s)
	return kid, ok
}

var noop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// newFloor is the floor handler, limiting each key to perHour per hour
// (bursts of perHour) with x/time/rate limiters in a map behind a mutex.
func newFloor(f *mwFixture, perHour int) http.Handler {
	var mu sync.Mutex
	limiters := make(map[string]*rate.Limiter)
	every := rate.Every(time.Hour / time.Duration(perHour))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		kid, ok := f.checkToken(v[7:])
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		l := limiters[kid]
		if l == nil {
			l = rate.NewLimiter(every, perHour)
			limiters[strings.Clone(kid)] = l
		}
		mu.Unlock()
		if !l.Allow() {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		noop.ServeHTTP(w, r)
	})
}

func newVerify(f *mwFixture) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if _, err := f.m.Verify(r.Context(), v[7:]); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		noop.ServeHTTP(w, r)
	})
}

// newAPIKeyMW is apikey's middleware with a per-key limit of perHour per
// hour; the memlimit.Limiter is returned to be closed.
func newAPIKeyMW(f *mwFixture, perHour int) (http.Handler, *memlimit.Limiter) {
	l, err := memlimit.NewLimiter()
	if err != nil {
		panic(err)
	}
	limit := apikey.Limit{Rate: perHour, Period: time.Hour, Burst: perHour}
	mw := f.m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: l, Default: limit}))
	return mw(apikey.RequireScopes("orders:read")(noop)), l
}

func echoNoop(echo.Context) error { return nil }

func newEchoBare() http.Handler {
	e := echo.New()
	e.GET("/orders", echoNoop)
	return e
}

func newEchoKeyAuth(f *mwFixture) http.Handler {
	e := echo.New()
	e.Use(echomw.KeyAuth(func(key string, _ echo.Context) (bool, error) {
		_, ok := f.checkToken(key)
		return ok, nil
	}))
	e.GET("/orders", echoNoop)
	return e
}

func newHTTPRateMW(perHour int) http.Handler {
	return httpRateByKey(perHour)(noop)
}

func httpRateByKey(perHour int) func(http.Handler) http.Handler {
	return httprate.LimitBy(perHour, time.Hour, func(r *http.Request) (string, error) {
		return r.Header.Get("Authorization"), nil
	})
}

// newEchoKeyAuthHTTPRate is echo's KeyAuth followed by httprate's per-key
// limit, mounted as echo mounts net/http middleware.
func newEchoKeyAuthHTTPRate(f *mwFixture, perHour int) http.Handler {
	e := echo.New()
	e.Use(echomw.KeyAuth(func(key string, _ echo.Context) (bool, error) {
		_, ok := f.checkToken(key)
		return ok, nil
	}))
	e.Use(echo.WrapMiddleware(httpRateByKey(perHour)))
	e.GET("/orders", echoNoop)
	return e
}

// A mwCase is one handler chain; new builds it over f with the given
// per-key limit (ignored by chains without one) and returns a cleanup.
type mwCase struct {
	name string
	new  func(f *mwFixture, perHour int) (http.Handler, func())
}

func plain(h http.Handler) (http.Handler, func()) { return h, func() {} }

var mwCases = []mwCase{
	{"bare", func(*mwFixture, int) (http.Handler, func()) { return plain(noop) }},
	{"floor", func(f *mwFixture, n int) (http.Handler, func()) { return plain(newFloor(f, n)) }},
	{"verify", func(f *mwFixture, _ int) (http.Handler, func()) { return plain(newVerify(f)) }},
	{"apikey", func(f *mwFixture, n int) (http.Handler, func()) {
		h, l := newAPIKeyMW(f, n)
		return h, func() { l.Close() }
	}},
	{"echo-bare", func(*mwFixture, int) (http.Handler, func()) { return plain(newEchoBare()) }},
	{"echo-keyauth", func(f *mwFixture, _ int) (http.Handler, func()) { return plain(newEchoKeyAuth(f)) }},
	{"httprate", func(_ *mwFixture, n int) (http.Handler, func()) { return plain(newHTTPRateMW(n)) }},
	{"apikey-auth", func(f *mwFixture, _ int) (http.Handler, func()) { return plain(f.m.Middleware()(noop)) }},
	{"echo-keyauth+httprate", func(f *mwFixture, n int) (http.Handler, func()) { return plain(newEchoKeyAuthHTTPRate(f, n)) }},
}

// ok is whether a discardWriter saw a success: nothing written means 200.
func (w *discardWriter) ok() bool { return w.code == 0 || w.code == http.StatusOK }

func BenchmarkMiddlewarePeers(b *testing.B) {
	f, reqs := loadMW()
	forRounds(b, func(b *testing.B) {
		for _, c := range mwCases {
			b.Run("impl="+c.name, func(b *testing.B) { benchmarkChain(b, c, f, reqs) })
		}
	})
}

func benchmarkChain(b *testing.B, c mwCase, f *mwFixture, reqs []*http.Request) {
	h, cleanup := c.new(f, mwPerHour)
	defer cleanup()
	// Every key once, in an order unlike the visit order, so that
	// limiters track every key before timing starts.
	w := newDiscardWriter()
	for _, i := range rand.New(rand.NewPCG(5, 6)).Perm(len(reqs)) {
		w.reset()
		h.ServeHTTP(w, reqs[i])
		if !w.ok() {
			b.Fatalf("warm-up: status %d", w.code)
		}
	}
	runtime.GC()
	// serve sends requests from reqs[start] on, one per call of next,
	// and fails b if any was refused.
	serve := func(b *testing.B, start int, next func() bool) {
		w := newDiscardWriter()
		i, bad := start, 0
		for next() {
			w.reset()
			h.ServeHTTP(w, reqs[i])
			if !w.ok() {
				bad++
			}
			if i++; i == len(reqs) {
				i = 0
			}
		}
		if bad > 0 {
			b.Errorf("%d requests refused (last status %d)", bad, w.code)
		}
	}
	b.Run("mode=serial", func(b *testing.B) {
		b.ReportAllocs()
		serve(b, 0, b.Loop)
	})
	b.Run("mode=parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) { serve(b, rand.IntN(len(reqs)), pb.Next) })
	})
}

// withSecret returns tok with its secret replaced by one of the same
// length and a correct checksum: a well-formed key with a real kid and
// the wrong secret, which only the digest compare can refuse.
func withSecret(tok string) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	body := tok[:len(tok)-49] + strings.Repeat("A", 43)
	c := crc32.ChecksumIEEE([]byte(body))
	var crc [6]byte
	for i := 5; i >= 0; i-- {
		crc[i] = alphabet[c%62]
		c /= 62
	}
	return body + string(crc[:])
}

// TestPeersAuthenticate checks that every chain is configured as the
// benchmark claims: the authenticating ones answer 200 to a valid key and
// refuse a missing, unknown or wrong key; the rate-limiting ones refuse a
// key once a small limit is exceeded, and only that key.
func TestPeersAuthenticate(t *testing.T) {
	const n = 8
	f := newMWFixture(n)
	// A key without the scope apikey's chain requires.
	secret, _, err := f.m.Issue(context.Background(), apikey.IssueRequest{Owner: "o", Scopes: []string{"orders:write"}})
	if err != nil {
		t.Fatal(err)
	}
	noScope := secret.Reveal()
	if _, err := apikey.Parse(withSecret(f.tokens[0])); err != nil {
		t.Fatalf("withSecret makes a malformed key: %v", err)
	}
	unknown, err := apikey.Generate(mwPrefix)
	if err != nil {
		t.Fatal(err)
	}

	serve := func(h http.Handler, auth string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, newRequest(auth))
		return w.Code
	}
	// Refusal statuses: 401 everywhere, except that echo's KeyAuth answers
	// 400 when there is no key at all.
	authenticating := map[string]int{"floor": 401, "verify": 401, "apikey": 401, "apikey-auth": 401,
		"echo-keyauth": 400, "echo-keyauth+httprate": 400}
	limiting := map[string]bool{"floor": true, "apikey": true, "httprate": true, "echo-keyauth+httprate": true}
	const small = 3
	for _, c := range mwCases {
		t.Run(c.name, func(t *testing.T) {
			h, cleanup := c.new(f, mwPerHour)
			defer cleanup()
			for _, tok := range f.tokens {
				if code := serve(h, "Bearer "+tok); code != 200 {
					t.Errorf("valid key: %d, want 200", code)
				}
			}
			missing, auth := authenticating[c.name]
			if !auth {
				// bare, echo-bare and httprate authenticate nothing.
				if code := serve(h, "Bearer "+withSecret(f.tokens[0])); code != 200 {
					t.Errorf("wrong secret: %d, want 200 (no authentication)", code)
				}
			} else {
				for name, tc := range map[string]struct {
					auth string
					want int
				}{
					"wrong secret": {"Bearer " + withSecret(f.tokens[0]), 401},
					"unknown kid":  {"Bearer " + unknown.Secret().Reveal(), 401},
					"garbage":      {"Bearer x", 401},
					"missing":      {"", missing},
				} {
					if code := serve(h, tc.auth); code != tc.want {
						t.Errorf("%s: %d, want %d", name, code, tc.want)
					}
				}
			}
			if c.name == "apikey" {
				if code := serve(h, "Bearer "+noScope); code != 403 {
					t.Errorf("key without the scope: %d, want 403", code)
				}
			}
			if !limiting[c.name] {
				return
			}
			h, cleanup = c.new(f, small)
			defer cleanup()
			for i := 0; i < small; i++ {
				if code := serve(h, "Bearer "+f.tokens[1]); code != 200 {
					t.Fatalf("request %d under the limit: %d, want 200", i+1, code)
				}
			}
			if code := serve(h, "Bearer "+f.tokens[1]); code != 429 {
				t.Errorf("request over a limit of %d: %d, want 429", small, code)
			}
			if code := serve(h, "Bearer "+f.tokens[2]); code != 200 {
				t.Errorf("another key: %d, want 200 (the limit is per key)", code)
			}
		})
	}
}

var rounds = flag.Int("rounds", 1, "repeat each comparison this many times in turn (BenchmarkMiddlewarePeers, BenchmarkBackends)")

// forRounds runs body as sub-benchmarks round=1, round=2, ... (-rounds),
// so that one run of the test binary measures every case several times,
// in turn: a burst of load from elsewhere on the machine then spreads over
// all the cases instead of skewing the one that ran during it.
func forRounds(b *testing.B, body func(b *testing.B)) {
	for i := 1; i <= *rounds; i++ {
		b.Run(fmt.Sprintf("round=%d", i), body)
	}
}
