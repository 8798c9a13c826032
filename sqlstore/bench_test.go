package sqlstore_test

import (
	"context"
	"database/sql"
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
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/sqlstore"
)

// Benchmark databases are filled once per test binary and kept for all
// sub-benchmarks and -count repetitions; TestMain removes them.
var (
	benchMu      sync.Mutex
	benchDBs     = map[string]*benchDB{}
	benchCleanup []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range benchCleanup {
		f()
	}
	os.Exit(code)
}

type benchDB struct {
	db  *sql.DB
	st  *sqlstore.Store
	ids []string
}

// benchSizes are the table sizes BenchmarkSQLStoreGet runs at. The 1M
// tables take 40-50 s per backend to build (on a 2-vCPU machine) and a
// few hundred MB of disk, so they are only built with APIKEY_BENCH_LARGE=1.
func benchSizes() []int {
	sizes := []int{1_000, 100_000}
	if os.Getenv("APIKEY_BENCH_LARGE") == "1" {
		sizes = append(sizes, 1_000_000)
	}
	return sizes
}

// fillSQL generates n rows in SQL (a recursive CTE in SQLite,
// generate_series in PostgreSQL), with random-looking IDs so that the
// primary key's B-tree is shaped as by real inserts.
const (
	fillSQLite = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?1)
		INSERT OR IGNORE INTO apikey_keys (id, prefix, owner, name, scopes, digest, digest_version, created_at,
			rate_limit_rate, rate_limit_period_ns, rate_limit_burst, metadata, revision)
		SELECT lower(hex(randomblob(6))), 'acme_live', 'owner-' || (n % 1000), 'bench key ' || n,
			'["orders:read","billing:*"]', randomblob(32), 'hmac-sha256/v1', 1764158400000000 + n,
			100, 60000000000, 20, '{"plan":"pro"}', 1
		FROM g`
	fillPostgres = `INSERT INTO apikey_keys (id, prefix, owner, name, scopes, digest, digest_version, created_at,
			rate_limit_rate, rate_limit_period_ns, rate_limit_burst, metadata, revision)
		SELECT substr(md5(random()::text || g::text), 1, 12), 'acme_live', 'owner-' || (g % 1000), 'bench key ' || g,
			'["orders:read","billing:*"]', decode(md5(g::text) || md5(g::text), 'hex'), 'hmac-sha256/v1',
			now() + g * interval '1 microsecond', 100, 60000000000, 20, '{"plan":"pro"}', 1
		FROM generate_series(1, $1) g
		ON CONFLICT (id) DO NOTHING`
	fillMySQL = `INSERT INTO apikey_keys (id, prefix, owner, name, scopes, digest, digest_version, created_at,
			rate_limit_rate, rate_limit_period_ns, rate_limit_burst, metadata, revision)
		WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
		SELECT LEFT(MD5(CONCAT(RAND(), n)), 12), 'acme_live', CONCAT('owner-', n % 1000), CONCAT('bench key ', n),
			'["orders:read","billing:*"]', UNHEX(CONCAT(MD5(n), MD5(n))), 'hmac-sha256/v1',
			UTC_TIMESTAMP(6) + INTERVAL n MICROSECOND, 100, 60000000000, 20, '{"plan":"pro"}', 1
		FROM g
		ON DUPLICATE KEY UPDATE id = apikey_keys.id`
)

// openBenchDB returns a migrated database of backend be holding n keys.
func openBenchDB(b *testing.B, be backend, n int) *benchDB {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	name := fmt.Sprint(be.name, "/", n)
	if d, ok := benchDBs[name]; ok {
		return d
	}
	var db *sql.DB
	var err error
	switch be.dialect {
	case sqlstore.SQLite:
		dir, err := os.MkdirTemp("", "apikey-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchCleanup = append(benchCleanup, func() { os.RemoveAll(dir) })
		db, err = sql.Open("sqlite", sqliteDSN(filepath.Join(dir, "keys.db")))
		if err != nil {
			b.Fatal(err)
		}
	case sqlstore.Postgres:
		dsn := os.Getenv("APIKEY_TEST_POSTGRES")
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			b.Fatal(err)
		}
		schema := "bench_" + randomHex(6)
		if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
			b.Fatal(err)
		}
		benchCleanup = append(benchCleanup, func() {
			admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			admin.Close()
		})
		u, _ := url.Parse(dsn)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		db, err = sql.Open("pgx", u.String())
		if err != nil {
			b.Fatal(err)
		}
	case sqlstore.MySQL:
		cfg := mysqlConfig(b)
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			b.Fatal(err)
		}
		cfg.DBName = "bench_" + randomHex(6)
		if _, err := admin.Exec("CREATE DATABASE " + cfg.DBName); err != nil {
			b.Fatal(err)
		}
		benchCleanup = append(benchCleanup, func() {
			admin.Exec("DROP DATABASE " + cfg.DBName)
			admin.Close()
		})
		db, err = sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			b.Fatal(err)
		}
	}
	benchCleanup = append(benchCleanup, func() { db.Close() })
	st := newStore(b, db, be.dialect)

	start := time.Now()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	fill := fillSQLite
	if be.dialect == sqlstore.MySQL {
		// MySQL 8 stops recursive CTEs at 1000 rows by default; MariaDB
		// has no such variable.
		tx.Exec(`SET SESSION cte_max_recursion_depth = 10000000`)
		fill = fillMySQL
	}
	if be.dialect == sqlstore.Postgres {
		// No change notifications for a million generated rows.
		if _, err := tx.Exec(`SET LOCAL session_replication_role = replica`); err != nil {
			b.Fatal(err)
		}
		fill = fillPostgres
	}
	if _, err := tx.Exec(fill, n); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if be.dialect == sqlstore.MySQL {
		if _, err := db.Exec(`ANALYZE TABLE apikey_keys`); err != nil {
			b.Fatal(err)
		}
	}
	if be.dialect == sqlstore.Postgres {
		// Settle the table as it would be in production: hint bits set,
		// statistics current, the bulk load checkpointed. Otherwise the
		// first sub-benchmark pays for writes that the load left behind.
		for _, q := range []string{`VACUUM ANALYZE apikey_keys`, `CHECKPOINT`} {
			if _, err := db.Exec(q); err != nil {
				b.Fatal(err)
			}
		}
	}
	d := &benchDB{db: db, st: st}
	rows, err := db.Query(`SELECT id FROM apikey_keys`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		d.ids = append(d.ids, id)
	}
	rows.Close()
	b.Logf("%s: %d keys filled in %v", name, len(d.ids), time.Since(start).Round(time.Millisecond))
	benchDBs[name] = d
	return d
}

// BenchmarkSQLStoreGet measures Store.Get on a random key of tables of
// growing size, beside the same SELECT run raw through the same *sql.DB
// (unprepared, as Store.Get runs it, and prepared), scanning the same
// columns into plain values: the difference is the Store's decoding.
//
//	go test -run '^$' -bench BenchmarkSQLStoreGet ./sqlstore/
func BenchmarkSQLStoreGet(b *testing.B) {
	ctx := context.Background()
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			need(b, be)
			raw := `SELECT id, prefix, owner, name, scopes, digest, digest_version,
				created_at, expires_at, not_before, revoked_at, last_used_at,
				rate_limit_rate, rate_limit_period_ns, rate_limit_burst, quota_limit, quota_period_ns,
				allowed_ips, metadata, rotated_from, replaced_by, revision
				FROM apikey_keys WHERE id = $1`
			switch be.dialect {
			case sqlstore.SQLite:
				raw = raw[:len(raw)-2] + "?1"
			case sqlstore.MySQL:
				raw = raw[:len(raw)-2] + "?"
			}
			for _, n := range benchSizes() {
				b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
					d := openBenchDB(b, be, n)
					b.Run("store", func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							if _, err := d.st.Get(ctx, d.ids[rand.IntN(len(d.ids))]); err != nil {
								b.Fatal(err)
							}
						}
					})
					scanRaw := func(row *sql.Row) error {
						var vals [22]any
						var ptrs [22]any
						for i := range vals {
							ptrs[i] = &vals[i]
						}
						return row.Scan(ptrs[:]...)
					}
					b.Run("raw", func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							if err := scanRaw(d.db.QueryRowContext(ctx, raw, d.ids[rand.IntN(len(d.ids))])); err != nil {
								b.Fatal(err)
							}
						}
					})
					// The machine may be busy with other work; measuring
					// the three side by side in one loop gives ratios that
					// noise does not skew.
					b.Run("paired", func(b *testing.B) {
						stmt, err := d.db.PrepareContext(ctx, raw)
						if err != nil {
							b.Fatal(err)
						}
						defer stmt.Close()
						var store, unprepared, prepared time.Duration
						iters := 0
						for b.Loop() {
							// A key of its own for each, so that none finds
							// the pages another just read.
							n := len(d.ids)
							t0 := time.Now()
							if _, err := d.st.Get(ctx, d.ids[rand.IntN(n)]); err != nil {
								b.Fatal(err)
							}
							t1 := time.Now()
							if err := scanRaw(d.db.QueryRowContext(ctx, raw, d.ids[rand.IntN(n)])); err != nil {
								b.Fatal(err)
							}
							t2 := time.Now()
							if err := scanRaw(stmt.QueryRowContext(ctx, d.ids[rand.IntN(n)])); err != nil {
								b.Fatal(err)
							}
							store, unprepared, prepared = store+t1.Sub(t0), unprepared+t2.Sub(t1), prepared+time.Since(t2)
							iters++
						}
						b.ReportMetric(float64(store.Nanoseconds())/float64(iters), "store-ns/op")
						b.ReportMetric(float64(unprepared.Nanoseconds())/float64(iters), "raw-ns/op")
						b.ReportMetric(float64(prepared.Nanoseconds())/float64(iters), "rawprep-ns/op")
						b.ReportMetric(float64(store)/float64(unprepared), "store/raw")
						b.ReportMetric(float64(store)/float64(prepared), "store/rawprep")
					})
					b.Run("raw-prepared", func(b *testing.B) {
						stmt, err := d.db.PrepareContext(ctx, raw)
						if err != nil {
							b.Fatal(err)
						}
						defer stmt.Close()
						b.ReportAllocs()
						for b.Loop() {
							if err := scanRaw(stmt.QueryRowContext(ctx, d.ids[rand.IntN(len(d.ids))])); err != nil {
								b.Fatal(err)
							}
						}
					})
				})
			}
		})
	}
}

// BenchmarkVerifyCached measures Manager.Verify on a cache hit with
// sqlstore underneath, beside the same over memstore: the store should
// make no difference, since a hit does no I/O. (B/op includes what the
// Manager's background goroutines allocate meanwhile: on SQLite, Watch
// polling the change log four times a second.)
//
//	go test -run '^$' -bench BenchmarkVerifyCached ./sqlstore/
func BenchmarkVerifyCached(b *testing.B) {
	const keys = 10_000
	ctx := context.Background()
	stores := []struct {
		name string
		open func(b *testing.B) apikey.Store
	}{{"memstore", func(*testing.B) apikey.Store { return memstore.New() }}}
	for _, be := range backends() {
		stores = append(stores, struct {
			name string
			open func(b *testing.B) apikey.Store
		}{"sqlstore-" + be.name, func(b *testing.B) apikey.Store {
			need(b, be)
			db, _ := be.open(b)
			return newStore(b, db, be.dialect)
		}})
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			m := newManager(b, s.open(b), apikey.WithCache(2*keys, time.Hour))
			tokens := make([]string, keys)
			for i := range tokens {
				secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: fmt.Sprint("owner-", i%100), Scopes: []string{"orders:read"}})
				if err != nil {
					b.Fatal(err)
				}
				tokens[i] = secret.Reveal()
			}
			// Each Create is announced back to the Manager (by NOTIFY or
			// the SQLite change log), which drops that ID from its cache;
			// let those arrive before warming the cache.
			time.Sleep(time.Second)
			for _, tok := range tokens {
				if _, err := m.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := m.Verify(ctx, tokens[i%keys]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkCounterAdd measures Counter.Add, the quota upsert on the
// request path, on many distinct keys from parallel goroutines.
//
//	go test -run '^$' -bench BenchmarkCounterAdd ./sqlstore/
func BenchmarkCounterAdd(b *testing.B) {
	ctx := context.Background()
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			need(b, be)
			db, _ := be.open(b)
			c := newStore(b, db, be.dialect).Counter()
			q := apikey.Quota{Limit: 1 << 40, Period: time.Hour}
			keys := make([]string, 10_000)
			for i := range keys {
				keys[i] = fmt.Sprintf("quota:k%08d", i)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Add(ctx, keys[next.Add(1)%int64(len(keys))], q, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
