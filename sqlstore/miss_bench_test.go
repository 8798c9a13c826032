package sqlstore_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

// missFixture is a database opened as sqlopen opens it, holding keys
// issued by a Manager, for BenchmarkVerifyMiss.
type missFixture struct {
	st     *sqlstore.Store
	m      *apikey.Manager // cache off: every Verify reads the Store
	quiet  *apikey.Manager // the same, flushing last uses hourly
	tokens []string
	ids    []string
	floor  *sql.Stmt // SELECT digest … WHERE id = ?
	raw    *sql.Stmt // a key's 29 columns, scanned into any
}

var (
	missMu  sync.Mutex
	missFix = map[string]*missFixture{}
)

var missPepper = []byte("bench pepper of at least 32 bytes, not a secret")

func openMissFixture(b *testing.B, be backend, n int) *missFixture {
	b.Helper()
	missMu.Lock()
	defer missMu.Unlock()
	if f, ok := missFix[be.name]; ok {
		return f
	}
	ctx := context.Background()
	var dsn string
	switch be.dialect {
	case sqlstore.SQLite:
		dir, err := os.MkdirTemp("", "apikey-miss-")
		if err != nil {
			b.Fatal(err)
		}
		benchCleanup = append(benchCleanup, func() { os.RemoveAll(dir) })
		dsn = "sqlite:" + filepath.Join(dir, "keys.db")
	case sqlstore.Postgres:
		admin := os.Getenv("APIKEY_TEST_POSTGRES")
		db, err := sql.Open("pgx", admin)
		if err != nil {
			b.Fatal(err)
		}
		schema := "miss_" + randomHex(6)
		if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
			b.Fatal(err)
		}
		benchCleanup = append(benchCleanup, func() {
			db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		})
		u, _ := url.Parse(admin)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		dsn = u.String()
	case sqlstore.MySQL:
		admin, err := sql.Open("mysql", mysqlConfig(b).FormatDSN())
		if err != nil {
			b.Fatal(err)
		}
		name := "miss_" + randomHex(6)
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			b.Fatal(err)
		}
		benchCleanup = append(benchCleanup, func() {
			admin.Exec("DROP DATABASE " + name)
			admin.Close()
		})
		u, _ := url.Parse(os.Getenv("APIKEY_TEST_MYSQL"))
		u.Path = "/" + name
		dsn = u.String()
	}
	st, err := sqlopen.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	issuer, err := apikey.NewManager(st, apikey.WithPrefix("bench"), apikey.WithPepper("v1", missPepper))
	if err != nil {
		b.Fatal(err)
	}
	f := &missFixture{st: st}
	limit := apikey.Limit{Rate: 100, Period: time.Minute, Burst: 20}
	for i := range n {
		sec, k, err := issuer.Issue(ctx, apikey.IssueRequest{
			Owner: fmt.Sprint("owner-", i%100), Name: fmt.Sprint("bench key ", i),
			Scopes: []string{"orders:read", "billing:*"}, RateLimit: limit,
			Metadata: map[string]string{"plan": "pro"},
		})
		if err != nil {
			b.Fatal(err)
		}
		f.tokens = append(f.tokens, sec.Reveal())
		f.ids = append(f.ids, k.ID)
	}
	issuer.Close()
	if f.m, err = apikey.NewManager(st, apikey.WithPrefix("bench"), apikey.WithPepper("v1", missPepper), apikey.WithCache(0, 0)); err != nil {
		b.Fatal(err)
	}
	if f.quiet, err = apikey.NewManager(st, apikey.WithPrefix("bench"), apikey.WithPepper("v1", missPepper), apikey.WithCache(0, 0),
		apikey.WithLastUsedInterval(time.Hour)); err != nil {
		b.Fatal(err)
	}
	p := "$1"
	switch be.dialect {
	case sqlstore.SQLite:
		p = "?1"
	case sqlstore.MySQL:
		p = "?" // st.DB() is the plain *sql.DB, without the Store's rebinder
	}
	if f.floor, err = st.DB().PrepareContext(ctx, "SELECT digest FROM apikey_keys WHERE id = "+p); err != nil {
		b.Fatal(err)
	}
	if f.raw, err = st.DB().PrepareContext(ctx, `SELECT id, prefix, owner, name, scopes, digest, digest_version,
		created_at, expires_at, not_before, revoked_at, suspended_at, last_used_at,
		rate_limit_rate, rate_limit_period_ns, rate_limit_burst, quota_limit, quota_period_ns,
		allowed_ips, metadata, rotated_from, replaced_by, revoked_reason,
		quota_day, credits_grant, credits_period_ns, credits_day, lineage, revision
		FROM apikey_keys WHERE id = `+p); err != nil {
		b.Fatal(err)
	}
	benchCleanup = append(benchCleanup, func() { f.m.Close(); f.quiet.Close(); f.floor.Close(); f.raw.Close(); st.Close() })
	missFix[be.name] = f
	return f
}

// floorVerify is the least a verification against the database costs:
// the digest by kid, HMAC-SHA256 of "v1|kid|secret", a constant-time
// compare.
func (f *missFixture) floorVerify(ctx context.Context, i int) error {
	tok, err := apikey.Parse(f.tokens[i])
	if err != nil {
		return err
	}
	var want []byte
	if err := f.floor.QueryRowContext(ctx, tok.ID).Scan(&want); err != nil {
		return err
	}
	mac := hmac.New(sha256.New, missPepper)
	mac.Write([]byte("v1|" + tok.ID + "|"))
	tail := f.tokens[i][len(f.tokens[i])-apikey.SecretLen-apikey.ChecksumLen : len(f.tokens[i])-apikey.ChecksumLen]
	mac.Write([]byte(tail))
	if subtle.ConstantTimeCompare(mac.Sum(nil), want) != 1 {
		return errors.New("digest mismatch")
	}
	return nil
}

func (f *missFixture) rawGet(ctx context.Context, i int) error {
	var vals [29]any
	var ptrs [29]any
	for j := range vals {
		ptrs[j] = &vals[j]
	}
	return f.raw.QueryRowContext(ctx, f.ids[i]).Scan(ptrs[:]...)
}

// BenchmarkVerifyMiss is the cache-miss path of Verify on each backend,
// against its floor, measured side by side in one loop so that load from
// elsewhere hits all alike: floor (the digest column, HMAC, compare),
// raw (a key's 29 columns, scanned into any by database/sql, as Get reads
// them on MySQL; on SQLite and PostgreSQL it reads the record instead),
// get (Store.Get, decoded into a Key) and verify
// (Manager.Verify with the cache off), and verify-quiet (the same, with
// the last uses it records flushed hourly, so not during the run: every
// miss records one, since with the cache off every Verify makes a new
// entry, and the flush every 5 s writes them). Each step reads a key of its own,
// drawn at random from 500. The ratios to floor are reported as
// metrics; each step also runs alone (NAME-only), serially and in
// parallel, for profiles and allocations.
func BenchmarkVerifyMiss(b *testing.B) {
	ctx := context.Background()
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			need(b, be)
			f := openMissFixture(b, be, 500)
			n := len(f.tokens)
			steps := []struct {
				name string
				op   func(i int) error
			}{
				{"floor", func(i int) error { return f.floorVerify(ctx, i) }},
				{"raw", func(i int) error { return f.rawGet(ctx, i) }},
				{"get", func(i int) error { _, err := f.st.Get(ctx, f.ids[i]); return err }},
				{"verify", func(i int) error { _, err := f.m.Verify(ctx, f.tokens[i]); return err }},
				{"verify-quiet", func(i int) error { _, err := f.quiet.Verify(ctx, f.tokens[i]); return err }},
			}
			b.Run("paired", func(b *testing.B) {
				spent := make([]time.Duration, len(steps))
				iters := 0
				for b.Loop() {
					for j, s := range steps {
						t0 := time.Now()
						if err := s.op(rand.IntN(n)); err != nil {
							b.Fatal(s.name, ": ", err)
						}
						spent[j] += time.Since(t0)
					}
					iters++
				}
				for j, s := range steps {
					b.ReportMetric(float64(spent[j].Nanoseconds())/float64(iters), s.name+"-ns/op")
					if j > 0 {
						b.ReportMetric(float64(spent[j])/float64(spent[0]), s.name+"/floor")
					}
				}
			})
			for s := range steps {
				b.Run(steps[s].name+"-only", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := steps[s].op(rand.IntN(n)); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run(steps[s].name+"-only/parallel", func(b *testing.B) {
					b.ReportAllocs()
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := steps[s].op(rand.IntN(n)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}
