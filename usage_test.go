package apikey_test

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/internal/testclock"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// usageManager returns a Manager on a memstore with a fake clock at at,
// flushing only at Close unless opts say otherwise.
func usageManager(t *testing.T, at time.Time, opts ...apikey.Option) (*apikey.Manager, *memstore.Store, *testclock.Clock) {
	t.Helper()
	clock := newFakeClock()
	clock.Set(at)
	store := memstore.New()
	m, err := apikey.NewManager(store, append([]apikey.Option{
		apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper), apikey.WithClock(clock.Now),
		apikey.WithUsageFlush(time.Hour, 1000),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m, store, clock
}

func issue(t *testing.T, m *apikey.Manager, req apikey.IssueRequest) (string, *apikey.Key) {
	t.Helper()
	if req.Owner == "" {
		req.Owner = "team-42"
	}
	s, k, err := m.Issue(context.Background(), req)
	require.NoError(t, err)
	return s.Reveal(), k
}

func call(h http.Handler, key string) int {
	return serve(h, newRequest(withKey(key))).Code
}

func usage(t *testing.T, m *apikey.Manager, q apikey.UsageQuery) []apikey.UsageRow {
	t.Helper()
	rows, err := m.Usage(context.Background(), q)
	require.NoError(t, err)
	return rows
}

func utc(y int, mo time.Month, d, h int) time.Time { return time.Date(y, mo, d, h, 0, 0, 0, time.UTC) }

// TestUsageRollups counts requests across a leap day and a month boundary
// and reads them back per hour, per day and per month, before and after
// the flush at Close.
func TestUsageRollups(t *testing.T) {
	m, store, clock := usageManager(t, utc(2028, time.February, 28, 23).Add(time.Minute))
	tokA, a := issue(t, m, apikey.IssueRequest{})
	tokB, b := issue(t, m, apikey.IssueRequest{})
	tokC, c := issue(t, m, apikey.IssueRequest{Owner: "other"})
	h := m.Middleware(apikey.WithLimits(apikey.Limits{Cost: func(r *http.Request) int64 {
		if r.URL.Query().Has("bulk") {
			return 10
		}
		return 1
	}}))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	bulk := func(key string) int {
		r := newRequest(withKey(key))
		r.URL.RawQuery = "bulk"
		return serve(h, r).Code
	}

	// 2028-02-28 23:01: A twice (one bulk), B once.
	require.Equal(t, 200, call(h, tokA))
	require.Equal(t, 200, bulk(tokA))
	require.Equal(t, 200, call(h, tokB))
	require.Equal(t, 200, call(h, tokC))
	clock.Advance(time.Hour) // 2028-02-29 00:01, the leap day
	require.Equal(t, 200, call(h, tokA))
	clock.Advance(23 * time.Hour) // 2028-02-29 23:01
	require.Equal(t, 200, call(h, tokA))
	clock.Advance(time.Hour) // 2028-03-01 00:01
	require.Equal(t, 200, call(h, tokB))
	require.Equal(t, 200, call(h, tokB))

	check := func(t *testing.T) {
		key := apikey.UsageQuery{KeyID: a.ID}
		assert.Equal(t, []apikey.UsageRow{
			{KeyID: a.ID, Owner: "team-42", Start: utc(2028, 2, 28, 23), Requests: 2, Units: 11},
			{KeyID: a.ID, Owner: "team-42", Start: utc(2028, 2, 29, 0), Requests: 1, Units: 1},
			{KeyID: a.ID, Owner: "team-42", Start: utc(2028, 2, 29, 23), Requests: 1, Units: 1},
		}, usage(t, m, key), "hourly")
		key.Granularity = apikey.Day
		assert.Equal(t, []apikey.UsageRow{
			{KeyID: a.ID, Owner: "team-42", Start: utc(2028, 2, 28, 0), Requests: 2, Units: 11},
			{KeyID: a.ID, Owner: "team-42", Start: utc(2028, 2, 29, 0), Requests: 2, Units: 2},
		}, usage(t, m, key), "daily")

		owner := apikey.UsageQuery{Owner: "team-42", Granularity: apikey.Month}
		assert.Equal(t, []apikey.UsageRow{
			{Owner: "team-42", Start: utc(2028, 2, 1, 0), Requests: 5, Units: 14},
			{Owner: "team-42", Start: utc(2028, 3, 1, 0), Requests: 2, Units: 2},
		}, usage(t, m, owner), "monthly, the owner's keys summed")
		owner.Granularity = apikey.Day
		assert.Equal(t, []apikey.UsageRow{
			{Owner: "team-42", Start: utc(2028, 2, 28, 0), Requests: 3, Units: 12},
			{Owner: "team-42", Start: utc(2028, 2, 29, 0), Requests: 2, Units: 2},
			{Owner: "team-42", Start: utc(2028, 3, 1, 0), Requests: 2, Units: 2},
		}, usage(t, m, owner), "daily, the owner's keys summed")

		// [From, To) by the hour: the leap day alone.
		leap := apikey.UsageQuery{Owner: "team-42", Granularity: apikey.Month,
			From: utc(2028, 2, 29, 0), To: utc(2028, 3, 1, 0)}
		assert.Equal(t, []apikey.UsageRow{{Owner: "team-42", Start: utc(2028, 2, 1, 0), Requests: 2, Units: 2}},
			usage(t, m, leap), "a month bucket holds only the hours in range")
		assert.Equal(t, []apikey.UsageRow{{Owner: "other", Start: utc(2028, 2, 28, 23), Requests: 1, Units: 1}},
			usage(t, m, apikey.UsageQuery{Owner: "other"}))
		assert.Empty(t, usage(t, m, apikey.UsageQuery{KeyID: a.ID, Owner: "other"}), "the key is not other's")

		// PerKey: the owner's keys, each apart, ordered by Start and
		// then KeyID.
		perKey := apikey.UsageQuery{Owner: "team-42", PerKey: true, Granularity: apikey.Month}
		assert.Equal(t, byStartAndKey(
			apikey.UsageRow{KeyID: a.ID, Owner: "team-42", Start: utc(2028, 2, 1, 0), Requests: 4, Units: 13},
			apikey.UsageRow{KeyID: b.ID, Owner: "team-42", Start: utc(2028, 2, 1, 0), Requests: 1, Units: 1},
			apikey.UsageRow{KeyID: b.ID, Owner: "team-42", Start: utc(2028, 3, 1, 0), Requests: 2, Units: 2},
		), usage(t, m, perKey), "monthly, per key")
		perKey.Granularity, perKey.To = apikey.Hour, utc(2028, 2, 29, 0)
		assert.Equal(t, byStartAndKey(
			apikey.UsageRow{KeyID: a.ID, Owner: "team-42", Start: utc(2028, 2, 28, 23), Requests: 2, Units: 11},
			apikey.UsageRow{KeyID: b.ID, Owner: "team-42", Start: utc(2028, 2, 28, 23), Requests: 1, Units: 1},
		), usage(t, m, perKey), "hourly, per key, before the leap day")
		assert.Equal(t, []apikey.UsageRow{{KeyID: c.ID, Owner: "other", Start: utc(2028, 2, 28, 23), Requests: 1, Units: 1}},
			usage(t, m, apikey.UsageQuery{Owner: "other", PerKey: true}))
		assert.Empty(t, usage(t, m, apikey.UsageQuery{Owner: "nobody", PerKey: true}))
	}
	t.Run("in memory", check)
	before, err := store.Usage(context.Background(), apikey.UsageQuery{Owner: "team-42"})
	require.NoError(t, err)
	assert.Empty(t, before, "nothing flushed before Close with an hour's interval")
	require.NoError(t, m.Close())
	t.Run("flushed", check)
	after, err := store.Usage(context.Background(), apikey.UsageQuery{Owner: "team-42", Granularity: apikey.Month})
	require.NoError(t, err)
	assert.Len(t, after, 2, "Close flushed everything to the store")
}

// byStartAndKey returns rows in the order Usage returns them: by Start,
// then by KeyID.
func byStartAndKey(rows ...apikey.UsageRow) []apikey.UsageRow {
	slices.SortFunc(rows, func(a, b apikey.UsageRow) int {
		return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.KeyID, b.KeyID))
	})
	return rows
}

// TestUsageBadQueries: every bad query is refused with a clear error that
// matches both sentinels, and reads nothing.
func TestUsageBadQueries(t *testing.T) {
	m, _, clock := usageManager(t, utc(2026, 1, 1, 0))
	now := clock.Now()
	for _, tt := range []struct {
		name string
		q    apikey.UsageQuery
		want string
	}{
		{"neither owner nor key", apikey.UsageQuery{}, "want an Owner or a KeyID"},
		{"unknown granularity", apikey.UsageQuery{Owner: "o", Granularity: "week"}, `unknown granularity "week"`},
		{"From after To", apikey.UsageQuery{Owner: "o", From: now, To: now.Add(-time.Second)}, "is after To"},
		{"bad key ID", apikey.UsageQuery{KeyID: "short"}, "not a key ID"},
		{"bad owner", apikey.UsageQuery{Owner: "a\u202eb"}, "not a valid owner"},
		{"PerKey with a key", apikey.UsageQuery{Owner: "o", KeyID: "AAAAAAAAAAAA", PerKey: true}, "PerKey with a KeyID"},
		{"PerKey with only a key", apikey.UsageQuery{KeyID: "AAAAAAAAAAAA", PerKey: true}, "PerKey with a KeyID"},
		{"PerKey without an owner", apikey.UsageQuery{PerKey: true}, "PerKey wants an Owner"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := m.Usage(context.Background(), tt.q)
			assert.Nil(t, rows)
			assert.ErrorIs(t, err, apikey.ErrInvalidUsageQuery)
			assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, err := apikey.ParseGranularity("Month")
	assert.ErrorIs(t, err, apikey.ErrInvalidUsageQuery)
	g, err := apikey.ParseGranularity("month")
	assert.NoError(t, err)
	assert.Equal(t, apikey.Month, g)
}

// TestUsageUnsupported: a Store without UsageRecorder says so.
func TestUsageUnsupported(t *testing.T) {
	m, err := apikey.NewManager(plainStore{memstore.New()}, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	_, err = m.Usage(context.Background(), apikey.UsageQuery{Owner: "o"})
	assert.ErrorIs(t, err, apikey.ErrUsageUnsupported)
}

// plainStore hides every optional interface of its Store.
type plainStore struct{ s apikey.Store }

func (p plainStore) Create(ctx context.Context, k *apikey.Key) error { return p.s.Create(ctx, k) }
func (p plainStore) Get(ctx context.Context, id string) (*apikey.Key, error) {
	return p.s.Get(ctx, id)
}
func (p plainStore) Update(ctx context.Context, k *apikey.Key) error { return p.s.Update(ctx, k) }
func (p plainStore) List(ctx context.Context, o apikey.ListOptions) ([]*apikey.Key, string, error) {
	return p.s.List(ctx, o)
}

// TestUsageBatchFull: a full batch is flushed at once, without waiting
// for the interval.
func TestUsageBatchFull(t *testing.T) {
	m, store, _ := usageManager(t, utc(2026, 1, 1, 0), apikey.WithUsageFlush(time.Hour, 3))
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 3 {
		tok, _ := issue(t, m, apikey.IssueRequest{})
		require.Equal(t, 200, call(h, tok))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows, err := store.Usage(context.Background(), apikey.UsageQuery{Owner: "team-42"})
		require.NoError(t, err)
		if len(rows) == 1 && rows[0].Requests == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a full batch of 3 buckets was not flushed within 5s: %v", rows)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failingUsageStore fails RecordUsage while fail is set.
type failingUsageStore struct {
	*memstore.Store
	fail chan bool
}

func (s *failingUsageStore) RecordUsage(ctx context.Context, rows []apikey.UsageRow) error {
	select {
	case f := <-s.fail:
		if f {
			return errors.New("disk on fire")
		}
	default:
	}
	return s.Store.RecordUsage(ctx, rows)
}

// TestUsageFlushFailureKeepsCounts: a batch the Store refuses is kept and
// written with the next flush; Usage reads it meanwhile.
func TestUsageFlushFailureKeepsCounts(t *testing.T) {
	store := &failingUsageStore{Store: memstore.New(), fail: make(chan bool, 1)}
	var bg []error
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithUsageFlush(time.Hour, 1000), apikey.WithBackgroundErrors(func(err error) { bg = append(bg, err) }))
	require.NoError(t, err)
	tok, k := issue(t, m, apikey.IssueRequest{})
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 4 {
		require.Equal(t, 200, call(h, tok))
	}
	store.fail <- true
	err = m.Close()
	assert.ErrorIs(t, err, apikey.ErrUnavailable, "Close reports the failed flush")
	rows, err := store.Store.Usage(context.Background(), apikey.UsageQuery{KeyID: k.ID})
	require.NoError(t, err)
	assert.Empty(t, rows, "the failed batch wrote nothing")
	got := usage(t, m, apikey.UsageQuery{KeyID: k.ID})
	require.Len(t, got, 1)
	assert.Equal(t, int64(4), got[0].Requests, "the counts are kept in memory")
}

// TestUsageWithoutUsage: WithoutUsage counts nothing.
func TestUsageWithoutUsage(t *testing.T) {
	m, _, _ := usageManager(t, utc(2026, 1, 1, 0), apikey.WithoutUsage())
	tok, k := issue(t, m, apikey.IssueRequest{})
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	require.Equal(t, 200, call(h, tok))
	assert.Empty(t, usage(t, m, apikey.UsageQuery{KeyID: k.ID}))
}

func TestWithUsageFlushRejects(t *testing.T) {
	for _, o := range []apikey.Option{apikey.WithUsageFlush(0, 1), apikey.WithUsageFlush(time.Second, 0), apikey.WithUsageFlush(-time.Second, -1)} {
		_, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper), o)
		assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
	}
}
