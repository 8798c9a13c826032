package portal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/portal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type usageBody struct {
	Month    time.Time `json:"month"`
	Requests int64     `json:"requests"`
	Units    int64     `json:"units"`
	Keys     []struct {
		KeyID    string `json:"key_id"`
		Requests int64  `json:"requests"`
		Units    int64  `json:"units"`
	} `json:"keys"`
}

// call sends n requests with token through the Manager's middleware to
// path: "/light" costs 1 unit, "/heavy" 3.
func (e *env) call(token, path string, n int) {
	e.t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/light", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	mux.Handle("/heavy", apikey.Cost(3)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	h := e.m.Middleware()(mux)
	for range n {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(e.t, http.StatusOK, w.Code, w.Body.String())
	}
}

func (e *env) usage(owner, query string) (usageBody, *httptest.ResponseRecorder) {
	e.t.Helper()
	w := e.do("GET", "/api/usage"+query, owner, "")
	var u usageBody
	if w.Code == http.StatusOK {
		require.NoError(e.t, json.Unmarshal(w.Body.Bytes(), &u), w.Body.String())
	}
	return u, w
}

func TestUsage(t *testing.T) {
	e := newEnv(t)
	a := e.create("alice", `{"name":"a"}`)
	b := e.create("alice", `{"name":"b"}`)
	idle := e.create("alice", `{"name":"idle"}`)
	other := e.create("bob", `{"name":"bob's"}`)
	e.call(a.Token, "/light", 4)
	e.call(a.Token, "/heavy", 2)
	e.call(b.Token, "/heavy", 3)
	e.call(other.Token, "/light", 5)

	u, w := e.usage("alice", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC), u.Month)
	assert.Equal(t, int64(9), u.Requests, "alice's keys only")
	assert.Equal(t, int64(4+6+9), u.Units)
	require.Len(t, u.Keys, 3)
	byID := map[string][2]int64{}
	for _, k := range u.Keys {
		byID[k.KeyID] = [2]int64{k.Requests, k.Units}
	}
	assert.Equal(t, [2]int64{6, 10}, byID[a.Key.ID])
	assert.Equal(t, [2]int64{3, 9}, byID[b.Key.ID])
	assert.Equal(t, [2]int64{0, 0}, byID[idle.Key.ID], "a key not used is listed with zeros")
	lw := e.do("GET", "/api/keys", "alice", "")
	var list struct {
		Keys []apikey.KeyView `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(lw.Body.Bytes(), &list))
	for i, k := range list.Keys {
		assert.Equal(t, k.ID, u.Keys[i].KeyID, "in the order of the list")
	}
	assert.NotContains(t, w.Body.String(), other.Key.ID, "no other owner's key")
	assert.NotContains(t, w.Body.String(), a.Token)

	// Another month: nothing, then the next month's usage apart.
	u, w = e.usage("alice", "?month=2030-05")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Zero(t, u.Requests)
	assert.Len(t, u.Keys, 3)
	e.clock.Advance(30 * 24 * time.Hour) // 1 July 12:00
	e.call(a.Token, "/light", 1)
	u, _ = e.usage("alice", "")
	assert.Equal(t, time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC), u.Month)
	assert.Equal(t, int64(1), u.Requests, "a month resets at 00:00 UTC on the 1st")
	u, _ = e.usage("alice", "?month=2030-06")
	assert.Equal(t, int64(9), u.Requests, "June stays as it was")

	bob, _ := e.usage("bob", "")
	assert.Zero(t, bob.Requests, "bob's usage was in June")
	bob, _ = e.usage("bob", "?month=2030-06")
	assert.Equal(t, int64(5), bob.Requests)
}

func TestUsageRefusals(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{"2030", "2030-13", "2030-1", "30-06", "2030-06-01", "june", "2030-06%00", "+2030-06"} {
		_, w := e.usage("alice", "?month="+m)
		require.Equal(t, http.StatusBadRequest, w.Code, m)
		assert.Equal(t, "month", problem(t, w).Field, m)
	}
	_, w := e.usage("", "")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	before := e.snapshot()
	w = e.do("POST", "/api/usage", "alice", "{}")
	assert.Equal(t, http.StatusNotFound, w.Code, "read only, as every unknown endpoint")
	problem(t, w)
	assert.Equal(t, before, e.snapshot())
}

// noUsageStore is a Store that records no usage: it hides memstore's
// UsageRecorder.
type noUsageStore struct{ apikey.Store }

func TestUsageUnsupported(t *testing.T) {
	m, err := apikey.NewManager(noUsageStore{memstore.New()}, apikey.WithPrefix("acme_live"),
		apikey.WithPepper("1", bytes.Repeat([]byte{7}, 32)))
	require.NoError(t, err)
	defer m.Close()
	h, err := portal.New(m, func(*http.Request) (string, error) { return "alice", nil })
	require.NoError(t, err)
	w := serve(h, newRequest("GET", "/api/usage", "", ""))
	assert.Equal(t, http.StatusNotImplemented, w.Code)
	assert.Contains(t, problem(t, w).Detail, "not recorded")
	w = serve(h, newRequest("GET", "/", "", ""))
	require.Equal(t, http.StatusOK, w.Code)
	assert.NotContains(t, w.Body.String(), "Usage in", "no usage on the page")
	assert.NotContains(t, w.Body.String(), "This month")
}

// failingUsageStore is memstore whose Usage fails.
type failingUsageStore struct{ *memstore.Store }

func (failingUsageStore) Usage(context.Context, apikey.UsageQuery) ([]apikey.UsageRow, error) {
	return nil, errors.New("connection refused")
}

func TestUsageStoreFailure(t *testing.T) {
	m, err := apikey.NewManager(failingUsageStore{memstore.New()}, apikey.WithPrefix("acme_live"),
		apikey.WithPepper("1", bytes.Repeat([]byte{7}, 32)), apikey.WithoutUsage())
	require.NoError(t, err)
	defer m.Close()
	h, err := portal.New(m, func(*http.Request) (string, error) { return "alice", nil })
	require.NoError(t, err)
	w := serve(h, newRequest("POST", "/api/keys", "", `{"name":"k"}`))
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	w = serve(h, newRequest("GET", "/api/usage", "", ""))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.NotContains(t, w.Body.String(), "connection refused", "the cause is logged, not told")
	w = serve(h, newRequest("GET", "/", "", ""))
	require.Equal(t, http.StatusOK, w.Code, "the keys can still be managed")
	assert.Contains(t, w.Body.String(), "is unavailable right now")
	assert.NotContains(t, w.Body.String(), "This month")
}

func TestUsageOnPage(t *testing.T) {
	e := newEnv(t)
	a := e.create("alice", `{"name":"a"}`)
	e.create("alice", `{"name":"idle"}`)
	e.call(a.Token, "/light", 1)
	e.call(a.Token, "/heavy", 1)
	w := e.do("GET", "/", "alice", "")
	require.Equal(t, http.StatusOK, w.Code)
	page := w.Body.String()
	assert.Regexp(t, regexp.MustCompile(`Usage in June 2030 \(UTC\), all keys: <strong>2</strong> requests · <strong>4</strong> units`), page)
	assert.Contains(t, page, `<dd class="key-usage">2 requests · 4 units</dd>`)
	assert.Contains(t, page, `<dd class="key-usage">0 requests · 0 units</dd>`)
	assert.Equal(t, 2, strings.Count(page, `class="key-usage"`))
	assert.NotContains(t, page, a.Token)
}

// countingStore is memstore, counting the calls to its Usage.
type countingStore struct {
	*memstore.Store
	usageCalls atomic.Int64
}

func (s *countingStore) Usage(ctx context.Context, q apikey.UsageQuery) ([]apikey.UsageRow, error) {
	s.usageCalls.Add(1)
	return s.Store.Usage(ctx, q)
}

// TestUsageOneQuery: the JSON API and the page read an owner's usage
// with one Usage call to the Store, whatever the number of keys (250
// here, more than the page shows), and still give each key its own
// figures and the owner's total.
func TestUsageOneQuery(t *testing.T) {
	store := &countingStore{Store: memstore.New()}
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_live"),
		apikey.WithPepper("1", bytes.Repeat([]byte{7}, 32)), apikey.WithClock(clock))
	require.NoError(t, err)
	defer m.Close()
	h, err := portal.New(m, func(r *http.Request) (string, error) { return r.Header.Get(ownerHeader), nil },
		portal.WithClock(clock))
	require.NoError(t, err)
	api := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	const keys = 250
	want := map[string]int64{}
	var total int64
	for i := range keys {
		s, k, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "alice"})
		require.NoError(t, err)
		for range i % 4 {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+s.Reveal())
			w := httptest.NewRecorder()
			api.ServeHTTP(w, r)
			require.Equal(t, http.StatusOK, w.Code)
		}
		want[k.ID] = int64(i % 4)
		total += int64(i % 4)
	}
	_, _, err = m.Issue(context.Background(), apikey.IssueRequest{Owner: "bob"})
	require.NoError(t, err)
	// Nothing is flushed yet (every 10 s): the one query reads the Store
	// and adds what the Manager holds in memory.

	store.usageCalls.Store(0)
	w := serve(h, newRequest("GET", "/api/usage", "alice", ""))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, int64(1), store.usageCalls.Load(), "GET api/usage: one Usage call for %d keys", keys)
	var u usageBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &u))
	assert.Equal(t, total, u.Requests)
	assert.Equal(t, total, u.Units)
	require.Len(t, u.Keys, keys)
	for _, k := range u.Keys {
		assert.Equal(t, want[k.KeyID], k.Requests, "key %s", k.KeyID)
	}

	store.usageCalls.Store(0)
	w = serve(h, newRequest("GET", "/", "alice", ""))
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, int64(1), store.usageCalls.Load(), "the page: one Usage call for %d keys", keys)
	assert.Contains(t, w.Body.String(), "all keys: <strong>"+strconv.FormatInt(total, 10)+"</strong> requests")
}
