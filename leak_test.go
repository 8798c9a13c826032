package apikey_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captureLog is everything a leak could end up in: log records, errors,
// printed values, responses. It is safe for concurrent use.
type captureLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *captureLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *captureLog) printf(format string, args ...any) { fmt.Fprintf(c, format+"\n", args...) }

func (c *captureLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// printAll captures v with %v, %+v, %#v, %s, %q, %d and %p, as careless
// code might log it.
func (c *captureLog) printAll(what string, vs ...any) {
	for _, v := range vs {
		c.printf("%s: %v | %+v | %#v | %s | %q | %d | %p", what, v, v, v, v, v, v, v)
	}
}

// captureHandler is a slog.Handler that writes every record, with every
// attribute resolved and every group flattened, as text into a captureLog,
// and also hands it to slog's own text and JSON handlers writing there,
// as a production logger would.
type captureHandler struct {
	out    *captureLog
	attrs  []slog.Attr // from WithAttrs, already qualified by their group
	group  string      // from WithGroup, "a.b."
	others []slog.Handler
}

func newCaptureHandler(out *captureLog) *captureHandler {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug, AddSource: true}
	return &captureHandler{out: out, others: []slog.Handler{
		slog.NewTextHandler(out, opts),
		slog.NewJSONHandler(out, opts),
	}}
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %q", r.Time.Format(time.RFC3339Nano), r.Level, r.Message)
	for _, a := range h.attrs {
		writeAttr(&b, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.out.Write([]byte(b.String()))
	for _, o := range h.others {
		if err := o.Handle(ctx, r.Clone()); err != nil {
			return err
		}
	}
	return nil
}

// writeAttr writes a as key=value, resolving LogValuers and descending
// into groups; values of kind Any are written with %v, %+v and %#v.
func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			writeAttr(b, p, g)
		}
	case slog.KindAny:
		x := v.Any()
		fmt.Fprintf(b, " %s%s=%v | %+v | %#v", prefix, a.Key, x, x, x)
		if err, ok := x.(error); ok {
			fmt.Fprintf(b, " | %s", err.Error())
		}
	default:
		fmt.Fprintf(b, " %s%s=%s", prefix, a.Key, v.String())
	}
}

func (h *captureHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if h.group != "" {
			a.Key = strings.TrimSuffix(h.group, ".") + "." + a.Key
		}
		c.attrs = append(c.attrs, a)
	}
	c.others = nil
	for _, o := range h.others {
		c.others = append(c.others, o.WithAttrs(attrs))
	}
	return &c
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	c.others = nil
	for _, o := range h.others {
		c.others = append(c.others, o.WithGroup(name))
	}
	return &c
}

// leakStore is a memstore that can be made to fail, including in the
// optional interfaces that run in the background (last-used batches and
// watching), so that background errors are produced and logged.
type leakStore struct {
	*memstore.Store
	failing   atomic.Bool // last-used batches fail
	watchFail atomic.Bool // Watch fails
}

var errLeakBackend = errors.New("pq: connection to 10.0.0.9:5432 refused")

func (s *leakStore) RecordLastUsed(ctx context.Context, used map[string]time.Time) error {
	if s.failing.Load() {
		return fmt.Errorf("record last use of %d keys: %w", len(used), errLeakBackend)
	}
	return s.Store.RecordLastUsed(ctx, used)
}

func (s *leakStore) Watch(ctx context.Context, changed func(id string)) error {
	if s.watchFail.Load() {
		return fmt.Errorf("listen: %w", errLeakBackend)
	}
	return s.Store.Watch(ctx, changed)
}

// TestNoSecretInLogs drives a realistic workload through the Manager and
// the middleware with every log, event, error and printed value captured,
// and checks that no API key, nor the secret part of any issued key,
// appears anywhere in it.
func TestNoSecretInLogs(t *testing.T) {
	out := &captureLog{}
	logger := slog.New(newCaptureHandler(out)).With("service", "leakcheck").WithGroup("req")
	old := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(old) })

	ctx := context.Background()
	clock := newFakeClock()
	var secrets []string // secret parts of every issued key
	var issued []string  // every issued key, for the checks below
	remember := func(s apikey.Secret) string {
		_, _, secret := parts(t, s.Reveal())
		secrets = append(secrets, secret)
		issued = append(issued, s.Reveal())
		return s.Reveal()
	}
	// logErr captures an error as returned, and as logged.
	logErr := func(what string, err error) {
		if err == nil {
			return
		}
		out.printf("%s: %s", what, err.Error())
		out.printAll(what, err)
		slog.Error(what, "err", err)
	}

	// Managers whose background work fails and is logged: one with
	// WithBackgroundErrors, one with the default (slog.Default).
	bg := &leakStore{Store: memstore.New()}
	bg.watchFail.Store(true)
	bgDefault, err := apikey.NewManager(bg, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	t.Cleanup(func() { bgDefault.Close() })
	bgm, err := apikey.NewManager(bg,
		apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v1", testPepper),
		apikey.WithClock(clock.Now),
		apikey.WithLastUsedInterval(5*time.Millisecond),
		apikey.WithBackgroundErrors(func(err error) {
			logger.Error("apikey background", "err", err)
			out.printAll("background error", err)
		}),
	)
	require.NoError(t, err)
	t.Cleanup(func() { bgm.Close() })

	// The Manager behind the middleware: default logging of background
	// errors (slog.Default, i.e. the capture), a store that can fail.
	store := &countingStore{Store: memstore.New(), failErr: errBackend}
	m, err := apikey.NewManager(store,
		apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v2", append([]byte("second-"), testPepper...)),
		apikey.WithPreviousPepper("v1", testPepper),
		apikey.WithClock(clock.Now),
	)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })

	issue := func(mgr *apikey.Manager, req apikey.IssueRequest) (string, *apikey.Key) {
		if req.Owner == "" {
			req.Owner = "team-42"
		}
		s, k, err := mgr.Issue(ctx, req)
		require.NoError(t, err)
		tok, err := apikey.Parse(s.Reveal())
		require.NoError(t, err)
		out.printAll("issued secret", s)
		out.printAll("issued key", k, *k)
		out.printAll("parsed token", tok)
		// A caller's own struct, whose fields fmt cannot call methods on.
		type issued struct {
			secret apikey.Secret
			token  apikey.Token
		}
		out.printAll("in a caller's struct", issued{s, tok}, &issued{s, tok}, []issued{{s, tok}})
		logger.Info("issued", "secret", s, "key", k, "token", tok, slog.Group("g", "secret", s, "token", tok))
		return remember(s), k
	}

	// Keys in every state.
	now := clock.Now()
	valid, validKey := issue(m, apikey.IssueRequest{
		Name:      "CI deploy key",
		Scopes:    []string{"orders:read", "billing:*"},
		Metadata:  map[string]string{"ticket": "OPS-1"},
		RateLimit: apikey.Limit{Rate: 3, Period: time.Minute},
	})
	quota, _ := issue(m, apikey.IssueRequest{Quota: apikey.Quota{Limit: 2, Period: time.Hour}, Owner: "quota-owner"})
	live, _ := issue(m, apikey.IssueRequest{Prefix: "acme_live", Owner: "owner-live"})
	revoked, revokedKey := issue(m, apikey.IssueRequest{})
	expiring, _ := issue(m, apikey.IssueRequest{ExpiresAt: now.Add(time.Hour)})
	notYet, _ := issue(m, apikey.IssueRequest{NotBefore: now.Add(48 * time.Hour)})
	ipOnly, _ := issue(m, apikey.IssueRequest{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	toRotate, toRotateKey := issue(m, apikey.IssueRequest{Scopes: []string{"orders:write"}})
	bgKey, _ := issue(bgm, apikey.IssueRequest{})
	// A key digested under the previous pepper, re-digested when m
	// verifies it.
	m1, err := apikey.NewManager(store.Store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper), apikey.WithClock(clock.Now))
	require.NoError(t, err)
	t.Cleanup(func() { m1.Close() })
	oldPepper, _ := issue(m1, apikey.IssueRequest{})

	logErr("revoke", m.Revoke(ctx, revokedKey.ID))
	logErr("revoke again", m.Revoke(ctx, revokedKey.ID))
	logErr("revoke unknown", m.Revoke(ctx, "AAAAAAAAAAAA"))

	// Rotation, and its refusals.
	rotated, rk, err := m.Rotate(ctx, toRotateKey.ID, time.Minute)
	require.NoError(t, err)
	out.printAll("rotated", rotated, rk)
	logger.Info("rotated", "secret", rotated, "key", rk)
	remember(rotated)
	_, _, err = m.Rotate(ctx, toRotateKey.ID, time.Minute)
	logErr("rotate twice", err)
	_, _, err = m.Rotate(ctx, revokedKey.ID, 0)
	logErr("rotate revoked", err)
	_, _, err = m.Rotate(ctx, validKey.ID, -time.Second)
	logErr("rotate negative grace", err)
	_, _, err = m.Rotate(ctx, "BBBBBBBBBBBB", 0)
	logErr("rotate unknown", err)

	// Issue refusals.
	for _, req := range []apikey.IssueRequest{
		{},
		{Owner: "x", Scopes: []string{"BAD SCOPE"}},
		{Owner: "x", Prefix: "Bad-Prefix"},
		{Owner: "x", ExpiresAt: now.Add(-time.Hour)},
		{Owner: "x", RateLimit: apikey.Limit{Rate: -1, Period: time.Second}},
	} {
		s, k, err := m.Issue(ctx, req)
		require.Error(t, err)
		logErr("issue refused", err)
		out.printAll("refused issue", s, k)
	}

	// Verify, in every outcome.
	_, _, validSecret := parts(t, valid)
	_, validID, _ := parts(t, valid)
	wrongSecret := forge("acme_test", validID, strings.Repeat("y", apikey.SecretLen))
	unknownKid := forge("acme_test", "AAAAAAAAAAAA", validSecret)
	wrongPrefix := forge("acme_live", validID, validSecret)
	flipped := flipChecksum(valid)
	verifyAll := func(label string, mgr *apikey.Manager, tokens ...string) {
		for _, tok := range tokens {
			k, err := mgr.Verify(ctx, tok)
			logErr(label, err)
			if k != nil {
				out.printAll(label+" key", k, *k)
				logger.Info(label, "key", k, "owner", k.Owner)
			}
			t2, perr := apikey.Parse(tok)
			logErr(label+" parse", perr)
			out.printAll(label+" token", t2, apikey.NewSecret(tok))
		}
	}
	verifyAll("verify", m, oldPepper, oldPepper, valid, quota, live, revoked, expiring, notYet, ipOnly, rotated.Reveal(), toRotate,
		wrongSecret, unknownKid, wrongPrefix, flipped, valid[:40], valid+"x", "", "   ", strings.Repeat("z", 300))
	verifyAll("verify bg", bgm, bgKey)

	// Time passes: the expiring key expires, the rotated-out key's grace
	// period ends.
	clock.Advance(2 * time.Hour)
	verifyAll("verify later", m, expiring, toRotate, valid)

	// Get and List print whole records.
	k, err := m.Get(ctx, validKey.ID)
	require.NoError(t, err)
	out.printAll("get", k)
	_, err = m.Get(ctx, "CCCCCCCCCCCC")
	logErr("get unknown", err)
	keys, nextPage, err := m.List(ctx, apikey.ListOptions{})
	require.NoError(t, err)
	out.printAll("list", keys, nextPage)
	logger.Info("list", "keys", keys)
	_, err = apikey.SecretFromEnv("APIKEY_LEAK_TEST_UNSET")
	logErr("secret from env", err)

	// The middleware, with every event logged with all its fields, and
	// every refusal printed.
	onEvent := func(e apikey.Event) {
		logger.Info("apikey event",
			slog.Any("event", e),
			"outcome", e.Outcome, "reason", e.Reason, "status", e.Status,
			"kid", e.KeyID, "owner", e.Owner, "client_ip", e.ClientIP,
			"method", e.Method, "path", e.Path, "duration", e.Duration, "err", e.Err,
			slog.Group("e", "event", e, "err", e.Err))
		out.printAll("event", e, &e)
	}
	onError := func(w http.ResponseWriter, r *http.Request, e *apikey.AuthError) {
		out.printAll("auth error", e, *e)
		out.printf("auth error: %s", e.Error())
		slog.Warn("refused", "auth_error", e)
		apikey.WriteProblem(w, r, e)
	}
	limiter := must(memlimit.NewLimiter(memlimit.WithClock(clock.Now)))
	t.Cleanup(func() { limiter.Close() })
	counter := must(memlimit.NewCounter(memlimit.WithClock(clock.Now)))
	t.Cleanup(func() { counter.Close() })
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context())
		slog.InfoContext(r.Context(), "handled", "key", k)
		w.Write([]byte("hello " + k.Owner))
	})
	mw := m.Middleware(
		apikey.WithOnEvent(onEvent),
		apikey.WithErrorHandler(onError),
		apikey.WithQueryParam("api_key"),
		apikey.WithLimits(apikey.Limits{
			Limiter:    limiter,
			Counter:    counter,
			Default:    apikey.Limit{Rate: 2, Period: time.Minute},
			PerOwner:   apikey.Limit{Rate: 5, Period: time.Minute},
			FailedAuth: apikey.Limit{Rate: 4, Period: time.Minute},
		}),
	)(next)
	h := apikey.RequireScopes("orders:read")(next)
	scoped := m.Middleware(apikey.WithOnEvent(onEvent), apikey.WithErrorHandler(onError))(h)
	broken := newRecordingLimiter(clock.Now)
	broken.err = fmt.Errorf("redis: %w", errBackend)
	brokenMW := m.Middleware(apikey.WithOnEvent(onEvent), apikey.WithErrorHandler(onError),
		apikey.WithLimits(apikey.Limits{Limiter: broken, Default: apikey.Limit{Rate: 100, Period: time.Second}}))(next)

	var statuses = map[int]int{}
	do := func(handler http.Handler, remote string, setup func(r *http.Request)) {
		r := httptest.NewRequest(http.MethodGet, "/orders", nil)
		r.RemoteAddr = remote
		if setup != nil {
			setup(r)
		}
		w := serve(handler, r)
		statuses[w.Code]++
		for name, vs := range w.Header() {
			out.printf("response header %s: %s", name, strings.Join(vs, ", "))
		}
		out.printf("response %d: %s", w.Code, w.Body.String())
	}
	bearer := func(tok string) func(r *http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	inQuery := func(tok string) func(r *http.Request) {
		return func(r *http.Request) { r.URL.RawQuery = "api_key=" + tok }
	}
	const client, other = "198.51.100.7:40000", "192.0.2.1:1234"
	clock.Advance(time.Minute) // fresh rate-limit windows
	for range 4 {              // key limit 3/min: the 4th is 429
		do(mw, client, bearer(valid))
	}
	for range 3 { // default limit 2/min
		do(mw, client, inQuery(live))
	}
	for range 3 { // quota 2/h
		clock.Advance(time.Minute)
		do(mw, client, bearer(quota))
	}
	do(mw, client, nil)
	do(mw, client, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+valid)
		r.URL.RawQuery = "api_key=" + valid
	})
	do(mw, client, func(r *http.Request) { r.Header.Set("Authorization", "Basic "+valid) })
	do(mw, client, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+valid+" "+valid) })
	do(mw, client, bearer(ipOnly))
	do(scoped, client, bearer(live)) // no orders:read
	do(scoped, client, bearer(valid))
	do(brokenMW, client, bearer(live)) // limiter failure: 503
	for _, tok := range []string{flipped, valid[:50], strings.Repeat(valid, 4)} {
		do(mw, "192.0.2.50:1", bearer(tok)) // checksum, malformed, too long
	}
	for _, tok := range []string{revoked, expiring, notYet, toRotate, wrongSecret, unknownKid, flipped, valid[:50]} {
		do(mw, other, bearer(tok)) // failed-auth limit 4/min: 429s after that
	}
	// The store fails: a key that is no longer cached gets 503.
	clock.Advance(time.Hour)
	store.failing.Store(true)
	do(mw, "192.0.2.99:1", bearer(valid))
	verifyAll("verify failing", m, valid, live)
	logErr("revoke failing", m.Revoke(ctx, validKey.ID))
	_, _, err = m.Rotate(ctx, validKey.ID, 0)
	logErr("rotate failing", err)
	store.failing.Store(false)

	// Background failures: a last-used batch that cannot be written (the
	// watchers have been failing since the start).
	bg.failing.Store(true)
	verifyAll("verify bg failing", bgm, bgKey)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "record last use") && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // the batch is flushed every 5ms
	}
	bg.failing.Store(false)
	require.NoError(t, bgm.Close())
	require.NoError(t, bgDefault.Close())
	require.NoError(t, m1.Close())
	require.NoError(t, m.Close())

	for _, code := range []int{200, 400, 401, 403, 429, 503} {
		assert.NotZero(t, statuses[code], "the workload should produce a %d", code)
	}
	captured := out.String()
	for _, want := range []string{"apikey background", "apikey: background work failed", "record last use",
		"watching the store for changes stopped", "connection to 10.0.0.9:5432 refused"} {
		assert.True(t, strings.Contains(captured, want), "the workload should have logged %q", want)
	}
	for _, reason := range []string{"no_credential", "two_credentials", "malformed_authorization", "malformed", "checksum",
		"invalid", "revoked", "expired", "not_yet_valid", "ip_not_allowed", "insufficient_scope", "rate_limit",
		"quota", "failed_auth_limit", "store", "limiter", "too_long"} {
		// Not assert.Contains, which would print all of captured.
		assert.True(t, strings.Contains(captured, "req.reason="+reason+" "), "the workload should produce an event with reason %q", reason)
	}
	t.Logf("captured %d bytes from %d keys; statuses %v", len(captured), len(issued), statuses)

	// The check itself: Scan finds no key, and no secret part appears.
	var findings []apikey.Finding
	require.NoError(t, apikey.Scan(strings.NewReader(captured), func(f apikey.Finding) error {
		findings = append(findings, f)
		return nil
	}))
	for _, f := range findings {
		line := strings.Split(captured, "\n")[f.Line-1]
		t.Errorf("key %s_%s_… found at line %d, column %d, in: %.200s", f.Prefix, f.ID, f.Line, f.Column, redactLine(line, secrets))
	}
	for _, s := range secrets {
		if strings.Contains(captured, s) {
			t.Errorf("the secret part of a key issued with kid … appears in the captured output (%d occurrences)", strings.Count(captured, s))
		}
	}
	// Not even half a secret, in case a key is cut or wrapped.
	for _, s := range secrets {
		// Not assert.NotContains, which would print all of captured.
		assert.False(t, strings.Contains(captured, s[:20]), "the first 20 characters of a secret part appear")
		assert.False(t, strings.Contains(captured, s[len(s)-20:]), "the last 20 characters of a secret part appear")
	}

	// Positive control: the same checks on the same output with one raw
	// key written into it must find it.
	leaked := captured + "oops: token=" + valid + "\n"
	var found []apikey.Finding
	require.NoError(t, apikey.Scan(strings.NewReader(leaked), func(f apikey.Finding) error {
		found = append(found, f)
		return nil
	}))
	require.Len(t, found, 1, "Scan must find a raw key: otherwise this test cannot fail")
	assert.Equal(t, validID, found[0].ID)
	assert.Equal(t, "acme_test", found[0].Prefix)
	assert.True(t, strings.Contains(leaked, validSecret), "the secret-part check must find the raw key too")
}

// redactLine hides secret parts in a line reported by a failure, so the
// failure message does not itself leak.
func redactLine(line string, secrets []string) string {
	for _, s := range secrets {
		line = strings.ReplaceAll(line, s, "[SECRET]")
	}
	return line
}
