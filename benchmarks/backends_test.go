package benchmarks

// The backends, over the same 100,000 keys as the middleware comparison:
// verification without a cache on SQLite and on PostgreSQL, and rate
// limiting on Redis. Each is measured beside a floor on the same server:
//
//   - store=sqlite|postgres, impl=floor: a prepared "SELECT digest FROM
//     keys WHERE id = ?" through the same *sql.DB, then HMAC-SHA256 of the
//     token and a constant-time compare: the least that verifying against
//     a database can cost.
//   - store=sqlite|postgres, impl=verify: Manager.Verify with the cache
//     off (WithCache(0, 0)), so that every call reads the key's whole
//     record through sqlstore.
//   - limiter=redis, impl=floor: one GET round trip, the least any limiter
//     shared through Redis can cost.
//   - limiter=redis, impl=apikey: redislimit.Limiter.Allow (one EVALSHA).
//   - limiter=redis, impl=redis_rate: github.com/go-redis/redis_rate/v10,
//     the go-redis authors' GCRA limiter (also one EVALSHA).
//
// PostgreSQL and Redis come from APIKEY_TEST_POSTGRES and APIKEY_TEST_REDIS
// (source ../.ci/services.sh; start_postgres; start_redis); without them
// those cases are skipped with a message. Parallel runs keep 8 requests
// per CPU in flight, since each waits on a socket.

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/redislimit"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// A storeFixture is a migrated sqlstore holding a copy of every key of the
// middleware fixture, and a Manager over it without a cache.
type storeFixture struct {
	st      *sqlstore.Store
	m       *apikey.Manager
	selects *sql.Stmt // SELECT digest ... WHERE id = ?
	cleanup func()
	err     error
}

var (
	storeFixMu sync.Mutex
	storeFixes = map[string]*storeFixture{}
)

// loadStore opens (once per test binary) the named backend and copies the
// middleware fixture's keys into it.
func loadStore(b *testing.B, name string) *storeFixture {
	b.Helper()
	storeFixMu.Lock()
	defer storeFixMu.Unlock()
	if s, ok := storeFixes[name]; ok {
		if s.err != nil {
			b.Skip(s.err)
		}
		return s
	}
	f, _ := loadMW()
	s := &storeFixture{}
	storeFixes[name] = s
	start := time.Now()
	if s.err = s.open(name); s.err == nil {
		s.err = s.fill(f)
	}
	if s.err != nil {
		b.Skip(s.err)
	}
	b.Logf("%s: %d keys copied in %v", name, len(f.tokens), time.Since(start).Round(time.Millisecond))
	return s
}

func (s *storeFixture) open(name string) error {
	ctx := context.Background()
	var dsn string
	switch name {
	case "sqlite":
		dir, err := os.MkdirTemp("", "apikey-bench-")
		if err != nil {
			return err
		}
		s.cleanup = func() { os.RemoveAll(dir) }
		dsn = "sqlite:" + filepath.Join(dir, "keys.db")
	case "postgres":
		admin := os.Getenv("APIKEY_TEST_POSTGRES")
		if admin == "" {
			return errors.New("APIKEY_TEST_POSTGRES is not set: no PostgreSQL to measure (source ../.ci/services.sh; start_postgres)")
		}
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return err
		}
		schema := fmt.Sprintf("bench_%08x", rand.Uint32())
		if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			db.Close()
			return fmt.Errorf("create schema: %w", err)
		}
		s.cleanup = func() {
			db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
		u, err := url.Parse(admin)
		if err != nil {
			return err
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	st, err := sqlopen.Open(ctx, dsn)
	if err != nil {
		return err
	}
	s.st = st
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	query := "SELECT digest FROM apikey_keys WHERE id = $1"
	if st.Dialect() == sqlstore.SQLite {
		query = "SELECT digest FROM apikey_keys WHERE id = ?1"
	}
	if s.selects, err = st.DB().PrepareContext(ctx, query); err != nil {
		return err
	}
	s.m, err = apikey.NewManager(st, apikey.WithPrefix(mwPrefix),
		apikey.WithPepper("v1", mwPepper), apikey.WithCache(0, 0))
	return err
}

// fill copies every record of the middleware fixture's memstore, with 8
// writers at once (SQLite queues them: it has one writer).
func (s *storeFixture) fill(f *mwFixture) error {
	ctx := context.Background()
	var keys []*apikey.Key
	for cursor := ""; ; {
		page, next, err := f.store.List(ctx, apikey.ListOptions{Cursor: cursor, Limit: apikey.MaxListLimit})
		if err != nil {
			return err
		}
		keys = append(keys, page...)
		if cursor = next; cursor == "" {
			break
		}
	}
	if len(keys) != len(f.tokens) {
		return fmt.Errorf("listed %d keys of %d", len(keys), len(f.tokens))
	}
	var next atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(keys)) {
					errs <- nil
					return
				}
				if err := s.st.Create(ctx, keys[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
	for range 8 {
		err = errors.Join(err, <-errs)
	}
	return err
}

// floor is the least a verification against the database costs: read the
// digest by kid, HMAC the kid and secret, compare in constant time.
func (s *storeFixture) floor(ctx context.Context, tok string) error {
	kid := tok[len(tok)-tailLen+1 : len(tok)-tailLen+13]
	var want []byte
	if err := s.selects.QueryRowContext(ctx, kid).Scan(&want); err != nil {
		return err
	}
	// The stored digest is HMAC-SHA256(pepper, "v1|" kid "|" secret part),
	// as ARCHITECTURE.md fixes it.
	st := macPool.Get().(*macState)
	defer macPool.Put(st)
	n := copy(st.buf[:], "v1|")
	n += copy(st.buf[n:], kid)
	n += copy(st.buf[n:], "|")
	n += copy(st.buf[n:], tok[len(tok)-apikey.SecretLen-apikey.ChecksumLen:len(tok)-apikey.ChecksumLen])
	st.h.Reset()
	st.h.Write(st.buf[:n])
	if subtle.ConstantTimeCompare(st.h.Sum(st.sum[:0]), want) != 1 {
		return errors.New("digest mismatch")
	}
	return nil
}

func (s *storeFixture) close() {
	if s.m != nil {
		s.m.Close()
	}
	if s.selects != nil {
		s.selects.Close()
	}
	if s.st != nil {
		s.st.Close()
	}
	if s.cleanup != nil {
		s.cleanup()
	}
}

func closeStores() {
	storeFixMu.Lock()
	defer storeFixMu.Unlock()
	for _, s := range storeFixes {
		s.close()
	}
}

// redisClient connects to APIKEY_TEST_REDIS, or skips.
func redisClient(b testing.TB) *redis.Client {
	b.Helper()
	u := os.Getenv("APIKEY_TEST_REDIS")
	if u == "" {
		b.Skip("APIKEY_TEST_REDIS is not set: no Redis to measure (source ../.ci/services.sh; start_redis)")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		b.Fatal(err)
	}
	opt.PoolSize = 64
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	if err := c.Ping(context.Background()).Err(); err != nil {
		c.Close()
		b.Fatalf("APIKEY_TEST_REDIS: %v", err)
	}
	return c
}

// A backendCase is one operation on one key, by index into the fixture.
type backendCase struct {
	group, impl string
	setup       func(tb testing.TB) (op func(ctx context.Context, i int) error, cleanup func())
}

func storeCases() []backendCase {
	var cases []backendCase
	for _, name := range []string{"sqlite", "postgres"} {
		cases = append(cases,
			backendCase{"store=" + name, "floor", func(tb testing.TB) (func(context.Context, int) error, func()) {
				s := loadStore(tb.(*testing.B), name)
				f, _ := loadMW()
				return func(ctx context.Context, i int) error { return s.floor(ctx, f.tokens[i]) }, func() {}
			}},
			backendCase{"store=" + name, "verify", func(tb testing.TB) (func(context.Context, int) error, func()) {
				s := loadStore(tb.(*testing.B), name)
				f, _ := loadMW()
				return func(ctx context.Context, i int) error {
					_, err := s.m.Verify(ctx, f.tokens[i])
					return err
				}, func() {}
			}},
		)
	}
	return cases
}

// redisCases are the Redis limiters over kids, each allowing perHour per
// hour in bursts as large. Each call gets keys of its own in Redis, so
// that no run starts on buckets a previous one filled; they expire within
// the hour.
func redisCases(kids func() []string, perHour int) []backendCase {
	const group = "limiter=redis"
	limit := apikey.Limit{Rate: perHour, Period: time.Hour, Burst: perHour}
	run := fmt.Sprintf("bench:%08x:", rand.Uint32())
	return []backendCase{
		{group, "floor", func(b testing.TB) (func(context.Context, int) error, func()) {
			c, kid := redisClient(b), kids()
			return func(ctx context.Context, i int) error {
				if err := c.Get(ctx, run+"floor:"+kid[i]).Err(); err != nil && err != redis.Nil {
					return err
				}
				return nil
			}, func() { c.Close() }
		}},
		{group, "apikey", func(b testing.TB) (func(context.Context, int) error, func()) {
			c, kid := redisClient(b), kids()
			l, err := redislimit.NewLimiter(c, redislimit.WithPrefix(run+"apikey:"))
			if err != nil {
				b.Fatal(err)
			}
			return func(ctx context.Context, i int) error {
				d, err := l.Allow(ctx, kid[i], limit)
				if err == nil && !d.Allowed {
					err = errRefused
				}
				return err
			}, func() { c.Close() }
		}},
		{group, "redis_rate", func(b testing.TB) (func(context.Context, int) error, func()) {
			c, kid := redisClient(b), kids()
			l := redis_rate.NewLimiter(c)
			rl := redis_rate.Limit{Rate: perHour, Burst: perHour, Period: time.Hour}
			return func(ctx context.Context, i int) error {
				r, err := l.Allow(ctx, run+"redis_rate:"+kid[i], rl)
				if err == nil && r.Allowed != 1 {
					err = errRefused
				}
				return err
			}, func() { c.Close() }
		}},
	}
}

var errRefused = errors.New("refused by the limiter")

// kidsOf returns the key IDs of tokens.
func kidsOf(tokens []string) []string {
	k := make([]string, len(tokens))
	for i, tok := range tokens {
		k[i] = tok[len(tok)-tailLen+1 : len(tok)-tailLen+13]
	}
	return k
}

// BenchmarkBackends measures each case serially and with 8 requests per
// CPU in flight, over the middleware fixture's keys in its visit order.
func BenchmarkBackends(b *testing.B) {
	_, reqs := loadMW()
	n := len(reqs)
	kids := func() []string { f, _ := loadMW(); return kidsOf(f.tokens) }
	cases := append(storeCases(), redisCases(kids, mwPerHour)...)
	forRounds(b, func(b *testing.B) {
		for _, c := range cases {
			b.Run(c.group+"/impl="+c.impl, func(b *testing.B) { benchmarkBackend(b, c, n) })
		}
	})
}

func benchmarkBackend(b *testing.B, c backendCase, n int) {
	op, cleanup := c.setup(b)
	defer cleanup()
	ctx := context.Background()
	b.Run("mode=serial", func(b *testing.B) {
		b.ReportAllocs()
		i := rand.IntN(n)
		for b.Loop() {
			if err := op(ctx, i); err != nil {
				b.Fatal(err)
			}
			if i++; i == n {
				i = 0
			}
		}
	})
	b.Run("mode=parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		var failed atomic.Pointer[error]
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(n)
			for pb.Next() {
				if err := op(ctx, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				if i++; i == n {
					i = 0
				}
			}
		})
		if err := failed.Load(); err != nil {
			b.Fatal(*err)
		}
	})
}

// TestBackendsRefuse checks, on a few keys, that every case measured
// above does what it claims: the store floors and Verify accept the
// right secret and refuse a wrong one, and the Redis limiters refuse a key
// past its limit, and only that key.
func TestBackendsRefuse(t *testing.T) {
	ctx := context.Background()
	f := newMWFixture(8)
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run("store="+name, func(t *testing.T) {
			s := &storeFixture{}
			defer s.close()
			if err := s.open(name); err != nil {
				if name == "postgres" && os.Getenv("APIKEY_TEST_POSTGRES") == "" {
					t.Skip(err)
				}
				t.Fatal(err)
			}
			if err := s.fill(f); err != nil {
				t.Fatal(err)
			}
			for _, tok := range f.tokens {
				if err := s.floor(ctx, tok); err != nil {
					t.Errorf("floor refused a valid key: %v", err)
				}
				if _, err := s.m.Verify(ctx, tok); err != nil {
					t.Errorf("Verify refused a valid key: %v", err)
				}
				if err := s.floor(ctx, withSecret(tok)); err == nil {
					t.Error("floor accepted a wrong secret")
				}
				if _, err := s.m.Verify(ctx, withSecret(tok)); !errors.Is(err, apikey.ErrInvalidKey) {
					t.Errorf("Verify of a wrong secret: %v, want ErrInvalidKey", err)
				}
			}
			// Without a cache, a revocation is seen at once.
			k, err := s.m.Verify(ctx, f.tokens[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := s.m.Revoke(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.m.Verify(ctx, f.tokens[0]); !errors.Is(err, apikey.ErrRevoked) {
				t.Errorf("Verify after Revoke: %v, want ErrRevoked", err)
			}
		})
	}
	const small = 3
	kids := func() []string { return kidsOf(f.tokens) }
	for _, c := range redisCases(kids, small) {
		t.Run(c.group+"/impl="+c.impl, func(t *testing.T) {
			op, cleanup := c.setup(t)
			defer cleanup()
			for i := 0; i < small; i++ {
				if err := op(ctx, 1); err != nil {
					t.Fatalf("request %d under the limit: %v", i+1, err)
				}
			}
			err := op(ctx, 1)
			if c.impl == "floor" {
				if err != nil {
					t.Fatalf("floor: %v", err)
				}
				return
			}
			if !errors.Is(err, errRefused) {
				t.Errorf("request over a limit of %d: %v, want refused", small, err)
			}
			if err := op(ctx, 2); err != nil {
				t.Errorf("another key: %v, want allowed (the limit is per key)", err)
			}
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	closeStores()
	os.Exit(code)
}
