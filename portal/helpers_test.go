package portal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/internal/testclock"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/portal"
	"github.com/stretchr/testify/require"
)

// env is a portal over a fresh memstore, with a clock, the audit events
// it reported, and a host whose sign-in is the X-Test-Owner header.
type env struct {
	t      *testing.T
	m      *apikey.Manager
	clock  *testclock.Clock // shared by the Manager and the portal
	h      http.Handler
	mu     sync.Mutex
	events []portal.AuditEvent
}

const ownerHeader = "X-Test-Owner"

func newEnv(t *testing.T, opts ...portal.Option) *env {
	t.Helper()
	c := testclock.New(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"),
		apikey.WithPepper("1", bytes.Repeat([]byte{7}, 32)), apikey.WithClock(c.Now))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	e := &env{t: t, m: m, clock: c}
	base := []portal.Option{
		portal.WithClock(c.Now),
		portal.WithGrantableScopes("orders:*", "billing:read"),
		portal.WithAudit(func(ev portal.AuditEvent) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		}),
	}
	e.h, err = portal.New(m, func(r *http.Request) (string, error) {
		if o := r.Header.Get(ownerHeader); o != "" {
			return o, nil
		}
		return "", portal.ErrNoOwner
	}, append(base, opts...)...)
	require.NoError(t, err)
	return e
}

// do sends a request as owner ("" for nobody) with a JSON body ("" for none).
func (e *env) do(method, path, owner, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, path, nil)
		if method != http.MethodGet {
			r.Header.Set("Content-Type", "application/json")
		}
	}
	if owner != "" {
		r.Header.Set(ownerHeader, owner)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

type keyBody struct {
	Key    apikey.KeyView  `json:"key"`
	Token  string          `json:"token"`
	OldKey *apikey.KeyView `json:"old_key"`
}

// create makes a key for owner through the API and returns the answer.
func (e *env) create(owner, body string) keyBody {
	e.t.Helper()
	w := e.do("POST", "/api/keys", owner, body)
	require.Equal(e.t, http.StatusCreated, w.Code, w.Body.String())
	var kb keyBody
	require.NoError(e.t, json.Unmarshal(w.Body.Bytes(), &kb))
	return kb
}

// snapshot is every stored record, of every owner, as JSON: equal
// snapshots mean nothing was written.
func (e *env) snapshot() string {
	e.t.Helper()
	var all []*apikey.Key
	opts := apikey.ListOptions{Limit: apikey.MaxListLimit}
	for {
		keys, next, err := e.m.List(context.Background(), opts)
		require.NoError(e.t, err)
		all = append(all, keys...)
		if next == "" {
			break
		}
		opts.Cursor = next
	}
	b, err := json.Marshal(all)
	require.NoError(e.t, err)
	return string(b)
}

func (e *env) eventCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.events)
}

func (e *env) lastEvent() portal.AuditEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	require.NotEmpty(e.t, e.events)
	return e.events[len(e.events)-1]
}

// problem decodes a problem answer and checks its shape.
func problem(t *testing.T, w *httptest.ResponseRecorder) portal.Problem {
	t.Helper()
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"), w.Body.String())
	var p portal.Problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p), w.Body.String())
	require.Equal(t, w.Code, p.Status)
	require.Equal(t, http.StatusText(w.Code), p.Title)
	require.Equal(t, "about:blank", p.Type)
	return p
}

// verifies reports whether token verifies now.
func (e *env) verifies(token string) error {
	_, err := e.m.Verify(context.Background(), token)
	return err
}

func newRequest(method, path, owner, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if method != http.MethodGet {
		r.Header.Set("Content-Type", "application/json")
	}
	if owner != "" {
		r.Header.Set(ownerHeader, owner)
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
