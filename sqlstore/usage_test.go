package sqlstore_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/sqlstore"
)

func hourUTC(y int, mo time.Month, d, h int) time.Time {
	return time.Date(y, mo, d, h, 0, 0, 0, time.UTC)
}

// TestUsageMatchesMemstore records the same hours in the database and in
// memstore, across a leap day and a month boundary, and asks both the same
// questions: the SQL roll-ups must give memstore's answers.
func TestUsageMatchesMemstore(t *testing.T) {
	ctx := context.Background()
	const a, b, c = "AAAAAAAAAAAA", "BBBBBBBBBBBB", "CCCCCCCCCCCC"
	rows := []apikey.UsageRow{
		{KeyID: a, Owner: "team-42", Start: hourUTC(2028, 1, 31, 23), Requests: 3, Units: 30},
		{KeyID: a, Owner: "team-42", Start: hourUTC(2028, 2, 28, 23), Requests: 2, Units: 11},
		{KeyID: a, Owner: "team-42", Start: hourUTC(2028, 2, 29, 0), Requests: 1, Units: 1},
		{KeyID: a, Owner: "team-42", Start: hourUTC(2028, 2, 29, 23), Requests: 4, Units: 4},
		{KeyID: b, Owner: "team-42", Start: hourUTC(2028, 2, 29, 23), Requests: 1, Units: 2},
		{KeyID: b, Owner: "team-42", Start: hourUTC(2028, 3, 1, 0), Requests: 5, Units: 5},
		{KeyID: c, Owner: "other", Start: hourUTC(2028, 2, 29, 12), Requests: 9, Units: 9},
		// The same bucket again in one batch: summed.
		{KeyID: a, Owner: "team-42", Start: hourUTC(2028, 2, 29, 0), Requests: 1, Units: 1},
	}
	var queries []apikey.UsageQuery
	for _, g := range []apikey.Granularity{apikey.Hour, apikey.Day, apikey.Month} {
		for _, sel := range []apikey.UsageQuery{{KeyID: a}, {KeyID: b}, {Owner: "team-42"}, {Owner: "other"},
			{KeyID: a, Owner: "team-42"}, {KeyID: a, Owner: "other"}, {Owner: "nobody"},
			{Owner: "team-42", PerKey: true}, {Owner: "other", PerKey: true}, {Owner: "nobody", PerKey: true}} {
			for _, span := range [][2]time.Time{{}, {hourUTC(2028, 2, 29, 0), hourUTC(2028, 3, 1, 0)},
				{hourUTC(2028, 2, 29, 23), time.Time{}}, {time.Time{}, hourUTC(2028, 2, 29, 23)}} {
				q := sel
				q.Granularity, q.From, q.To = g, span[0], span[1]
				queries = append(queries, q)
			}
		}
	}
	mem := memstore.New()
	if err := mem.RecordUsage(ctx, rows); err != nil {
		t.Fatal(err)
	}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			need(t, be)
			db, _ := be.open(t)
			st := newStore(t, db, be.dialect)
			if err := st.RecordUsage(ctx, rows); err != nil {
				t.Fatal(err)
			}
			for _, q := range queries {
				want, err := mem.Usage(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got, err := st.Usage(ctx, q)
				if err != nil {
					t.Fatalf("%+v: %v", q, err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%+v:\n got %v\nwant %v", q, got, want)
				}
			}
			// Leap day and month boundary, spelled out once.
			got, err := st.Usage(ctx, apikey.UsageQuery{Owner: "team-42", Granularity: apikey.Month})
			if err != nil {
				t.Fatal(err)
			}
			want := []apikey.UsageRow{
				{Owner: "team-42", Start: hourUTC(2028, 1, 1, 0), Requests: 3, Units: 30},
				{Owner: "team-42", Start: hourUTC(2028, 2, 1, 0), Requests: 9, Units: 19},
				{Owner: "team-42", Start: hourUTC(2028, 3, 1, 0), Requests: 5, Units: 5},
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("monthly:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestRecordUsageRejectsBadRows: one bad row fails the batch, and nothing
// of it is written.
func TestRecordUsageRejectsBadRows(t *testing.T) {
	ctx := context.Background()
	good := apikey.UsageRow{KeyID: "AAAAAAAAAAAA", Owner: "o", Start: hourUTC(2026, 1, 1, 0), Requests: 1, Units: 1}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			need(t, be)
			db, _ := be.open(t)
			st := newStore(t, db, be.dialect)
			for name, bad := range map[string]apikey.UsageRow{
				"negative units":    {KeyID: "BBBBBBBBBBBB", Owner: "o", Start: good.Start, Requests: 1, Units: -1},
				"negative requests": {KeyID: "BBBBBBBBBBBB", Owner: "o", Start: good.Start, Requests: -1},
				"not on the hour":   {KeyID: "BBBBBBBBBBBB", Owner: "o", Start: good.Start.Add(time.Minute), Requests: 1},
				"no key":            {Owner: "o", Start: good.Start, Requests: 1},
				"NUL in owner":      {KeyID: "BBBBBBBBBBBB", Owner: "o\x00", Start: good.Start, Requests: 1},
			} {
				err := st.RecordUsage(ctx, []apikey.UsageRow{good, bad})
				if !errors.Is(err, apikey.ErrInvalidRequest) {
					t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
				}
			}
			rows, err := st.Usage(ctx, apikey.UsageQuery{Owner: "o"})
			if err != nil || len(rows) != 0 {
				t.Fatalf("after refused batches: %v, %v; want nothing written", rows, err)
			}
		})
	}
}

// meteredServer serves requests through the middleware of m, costing 3
// units on /bulk and 1 elsewhere.
func meteredServer(m *apikey.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/bulk", apikey.Cost(3)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) {})
	return m.Middleware()(mux)
}

func get(t testing.TB, h http.Handler, path, key string) {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Authorization", "Bearer "+key)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("%s: status %d", path, w.Code)
	}
}

func total(t testing.TB, m *apikey.Manager, q apikey.UsageQuery) (requests, units int64) {
	t.Helper()
	rows, err := m.Usage(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		requests, units = requests+r.Requests, units+r.Units
	}
	return requests, units
}

// TestUsageExactAfterClose: N requests on SQLite through one Manager, and
// on PostgreSQL through two Managers sharing the database, concurrently;
// after Close, a fresh Manager's Usage reports exactly N requests and the
// right units, per key and per owner.
func TestUsageExactAfterClose(t *testing.T) {
	const perWorker = 300
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			need(t, be)
			db, reopen := be.open(t)
			instances := 1
			if be.dialect == sqlstore.Postgres {
				instances = 2
			}
			var ms []*apikey.Manager
			for i := range instances {
				d := db
				if i > 0 {
					d = reopen()
				}
				// A short interval and small batches, so that flushes
				// race requests and each other.
				ms = append(ms, newManager(t, newStore(t, d, be.dialect), apikey.WithUsageFlush(20*time.Millisecond, 50)))
			}
			var toks []string
			var ids []string
			for i := range 5 {
				s, k, err := ms[0].Issue(context.Background(), apikey.IssueRequest{Owner: "team-" + strconv.Itoa(i%2)})
				if err != nil {
					t.Fatal(err)
				}
				toks, ids = append(toks, s.Reveal()), append(ids, k.ID)
			}
			var wg sync.WaitGroup
			for i, m := range ms {
				h := meteredServer(m)
				for w := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for j := range perWorker {
							path := "/"
							if j%3 == 0 {
								path = "/bulk"
							}
							get(t, h, path, toks[(i+w+j)%len(toks)])
						}
					}()
				}
			}
			wg.Wait()
			for _, m := range ms {
				if err := m.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
			n := int64(instances * 4 * perWorker)
			bulk := int64(instances*4) * int64((perWorker+2)/3) // j%3 == 0
			units := n + 2*bulk                                 // a bulk request costs 3
			reader := newManager(t, newStore(t, reopen(), be.dialect), apikey.WithoutUsage())
			var gotN, gotU int64
			for _, id := range ids {
				r, u := total(t, reader, apikey.UsageQuery{KeyID: id, Granularity: apikey.Month})
				gotN, gotU = gotN+r, gotU+u
			}
			if gotN != n || gotU != units {
				t.Errorf("per key: %d requests, %d units; want %d, %d", gotN, gotU, n, units)
			}
			r0, u0 := total(t, reader, apikey.UsageQuery{Owner: "team-0", Granularity: apikey.Day})
			r1, u1 := total(t, reader, apikey.UsageQuery{Owner: "team-1"})
			if r0+r1 != n || u0+u1 != units {
				t.Errorf("per owner: %d requests, %d units; want %d, %d", r0+r1, u0+u1, n, units)
			}
		})
	}
}

// TestUsageCrashLosesAtMostOneInterval kills a process that serves
// requests (SIGKILL: no Close, no deferred flush) and checks that the
// database holds every request the process had counted one flush
// interval before it died, and none it did not make.
func TestUsageCrashLosesAtMostOneInterval(t *testing.T) {
	if os.Getenv("APIKEY_USAGE_CRASH_CHILD") != "" {
		usageCrashChild()
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	const interval = 200 * time.Millisecond
	path := filepath.Join(t.TempDir(), "keys.db")
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := newStore(t, db, sqlstore.SQLite)
	m := newManager(t, st, apikey.WithoutUsage())
	s, k, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "team-42"})
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestUsageCrashLosesAtMostOneInterval$")
	cmd.Env = append(os.Environ(), "APIKEY_USAGE_CRASH_CHILD="+path, "APIKEY_USAGE_CRASH_KEY="+s.Reveal(),
		"APIKEY_USAGE_CRASH_INTERVAL="+interval.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child prints the number of requests it has served so far, every
	// 10 ms. Let it run for a few intervals, remember what it had served
	// one interval (and a margin for the write) before the kill, and kill.
	type mark struct {
		at time.Time
		n  int64
	}
	var marks []mark
	sc := bufio.NewScanner(out)
	var start time.Time
	for sc.Scan() {
		n, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		marks = append(marks, mark{time.Now(), n})
		if start.IsZero() {
			start = time.Now() // the child is up
		}
		if time.Since(start) > 5*interval {
			break
		}
	}
	killed := time.Now()
	cmd.Process.Kill()
	cmd.Wait()
	last := marks[len(marks)-1].n // a lower bound of what it served
	var floor int64
	for _, mk := range marks {
		// Anything counted this long before the kill was flushed by a
		// tick since; 100 ms of margin for a slow write under load.
		if mk.at.Before(killed.Add(-interval - 100*time.Millisecond)) {
			floor = mk.n
		}
	}
	got, _ := total(t, m, apikey.UsageQuery{KeyID: k.ID})
	t.Logf("served at least %d, %d counted an interval before the kill, %d stored", last, floor, got)
	if floor == 0 {
		t.Fatal("the child served nothing an interval before it was killed")
	}
	if got < floor {
		t.Errorf("stored %d requests; lost more than one flush interval's (%d had been served %v before the kill)", got, floor, interval)
	}
	// Drain what the child printed before it died: the most it can have
	// had counted is a little over its last line.
	for sc.Scan() {
		if n, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64); err == nil {
			last = n
		}
	}
	if got > last+last/2+10_000 {
		t.Errorf("stored %d requests, more than the child served (%d by its last line)", got, last)
	}
}

// usageCrashChild serves requests through a metered Manager until killed,
// printing how many it has served.
func usageCrashChild() {
	interval, err := time.ParseDuration(os.Getenv("APIKEY_USAGE_CRASH_INTERVAL"))
	if err != nil {
		panic(err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(os.Getenv("APIKEY_USAGE_CRASH_CHILD")))
	if err != nil {
		panic(err)
	}
	st, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		panic(err)
	}
	m, err := apikey.NewManager(st, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithUsageFlush(interval, 1_000_000))
	if err != nil {
		panic(err)
	}
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	key := os.Getenv("APIKEY_USAGE_CRASH_KEY")
	var n int64
	last := time.Now()
	for {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			panic(fmt.Sprint("status ", w.Code))
		}
		n++
		if time.Since(last) >= 10*time.Millisecond {
			fmt.Println(n)
			last = time.Now()
		}
	}
}
