package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

// TestVerifyStorm starts distinct valid keys, none cached, all at once
// from 64 goroutines, through the middleware of a Manager on PostgreSQL
// opened as sqlopen opens it, each request with a 2 s deadline. Every
// request must succeed, or fail with 503 (a deadline passed); the pool
// must never open more than sqlopen.DefaultMaxOpenConns connections. It
// logs the time to the last success, the peak of open connections (from
// sql.DB's Stats, sampled every millisecond, and from pg_stat_activity)
// and the latency percentiles.
//
// It runs 1000 keys; APIKEY_STORM_KEYS=10000 (as scripts/benchmarks.sh
// sets it) runs more.
func TestVerifyStorm(t *testing.T) {
	admin := os.Getenv("APIKEY_TEST_POSTGRES")
	if admin == "" {
		t.Skip("APIKEY_TEST_POSTGRES is not set: no PostgreSQL to test against (source .ci/services.sh; start_postgres)")
	}
	keys := 1000
	if s := os.Getenv("APIKEY_STORM_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("APIKEY_STORM_KEYS=%q: want a positive number", s)
		}
		keys = n
	}
	const workers = 64
	ctx := context.Background()

	adb, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	schema := "storm_" + randomHex(6)
	if _, err := adb.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	defer adb.Exec("DROP SCHEMA " + schema + " CASCADE")
	u, _ := url.Parse(admin)
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("application_name", schema) // to find this pool's connections in pg_stat_activity
	u.RawQuery = q.Encode()
	st, err := sqlopen.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	// Issue the keys, 16 at a time.
	issuer, err := apikey.NewManager(st, apikey.WithPrefix("storm"), apikey.WithPepper("v1", missPepper))
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, keys)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < keys; i = int(next.Add(1) - 1) {
				sec, _, err := issuer.Issue(ctx, apikey.IssueRequest{Owner: fmt.Sprint("owner-", i%100), Scopes: []string{"orders:read"}})
				if err != nil {
					t.Error(err)
					return
				}
				tokens[i] = sec.Reveal()
			}
		})
	}
	wg.Wait()
	issuer.Close()
	if t.Failed() {
		return
	}
	t.Logf("%d keys issued in %v", keys, time.Since(start).Round(time.Millisecond))

	// A Manager whose cache has never seen them, and an idle pool.
	m, err := apikey.NewManager(st, apikey.WithPrefix("storm"), apikey.WithPepper("v1", missPepper))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := m.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	db := st.DB()
	idle := db.Stats()

	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if n := int64(db.Stats().OpenConnections); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	lat := make([]time.Duration, keys)
	status := make([]int, keys)
	var lastOK atomic.Int64
	next.Store(0)
	begin := make(chan struct{})
	for range workers {
		wg.Go(func() {
			<-begin
			for i := int(next.Add(1) - 1); i < keys; i = int(next.Add(1) - 1) {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				r := httptest.NewRequestWithContext(rctx, http.MethodGet, "/", nil)
				r.Header.Set("Authorization", "Bearer "+tokens[i])
				w := httptest.NewRecorder()
				t0 := time.Now()
				h.ServeHTTP(w, r)
				lat[i] = time.Since(t0)
				cancel()
				status[i] = w.Code
				if w.Code == http.StatusOK {
					lastOK.Store(int64(time.Since(start)))
				}
			}
		})
	}
	start = time.Now()
	close(begin)
	wg.Wait()
	total := time.Since(start)
	close(stopSampling)
	<-sampled

	var pgConns int
	if err := adb.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, schema).Scan(&pgConns); err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for _, s := range status {
		counts[s]++
	}
	for s, n := range counts {
		if s != http.StatusOK && s != http.StatusServiceUnavailable {
			t.Errorf("%d requests answered %d, want 200 or 503 only", n, s)
		}
	}
	if p := peak.Load(); p > sqlopen.DefaultMaxOpenConns {
		t.Errorf("peak of %d open connections, above the pool's bound of %d", p, sqlopen.DefaultMaxOpenConns)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Microsecond)
	}
	t.Logf("storm: %d keys cold from %d goroutines: %d ok, %d 503; last success at %v (all done at %v); "+
		"open connections: %d idle before, peak %d (sampled every 1ms; bound %d), %d in pg_stat_activity after; "+
		"latency p50 %v, p90 %v, p99 %v, max %v",
		keys, workers, counts[http.StatusOK], counts[http.StatusServiceUnavailable],
		time.Duration(lastOK.Load()).Round(time.Millisecond), total.Round(time.Millisecond),
		idle.OpenConnections, peak.Load(), sqlopen.DefaultMaxOpenConns, pgConns,
		pct(0.5), pct(0.9), pct(0.99), lat[len(lat)-1].Round(time.Microsecond))
	if counts[http.StatusOK] == 0 {
		t.Error("no request succeeded")
	}
}
