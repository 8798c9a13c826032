package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/webhook"
)

// verify checks a message as the Standard Webhooks specification says,
// written from the specification, independently of the Sender: the
// signature header holds space-separated "v1,<base64>" signatures, one of
// which must be the HMAC-SHA256 under the secret's bytes of
// id.timestamp.body, and the timestamp must be within 5 minutes.
func verify(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return err
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp out of tolerance")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid signature")
}

// receiver is an httptest server that verifies every message and answers
// with the status its fail function gives.
type receiver struct {
	*httptest.Server
	secret   string
	mu       sync.Mutex
	attempts []http.Header
	bodies   [][]byte // of messages answered 2xx
	badSigs  atomic.Int64
	status   func(n int) int // n: attempt number, from 1
}

func newReceiver(t *testing.T, secret webhook.Secret, status func(n int) int) *receiver {
	r := &receiver{secret: secret.Reveal(), status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := verify(r.secret, req.Header, body); err != nil {
			r.badSigs.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		r.attempts = append(r.attempts, req.Header.Clone())
		n := len(r.attempts)
		code := r.status(n)
		if code < 300 {
			r.bodies = append(r.bodies, body)
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) delivered() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

func (r *receiver) attemptCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.attempts)
}

func always(code int) func(int) int { return func(int) int { return code } }

func newSecret(t *testing.T) webhook.Secret {
	s, err := webhook.NewSecret()
	require.NoError(t, err)
	return s
}

func event(typ apikey.KeyEventType, id string) apikey.KeyEvent {
	now := time.Now()
	k := &apikey.Key{ID: id, Prefix: "acme_live", Owner: "alice", CreatedAt: now, Digest: []byte("digest-bytes-0123456789abcdefghij")}
	return apikey.KeyEvent{Type: typ, At: now, Key: k.View(now)}
}

func fast() webhook.Option { return webhook.WithRetries(5, 5*time.Millisecond, 20*time.Millisecond) }

// TestRetriedAfter500: a message answered 500 twice is attempted again,
// with the same webhook-id, and delivered once when the receiver
// recovers; every attempt verifies.
func TestRetriedAfter500(t *testing.T) {
	secret := newSecret(t)
	r := newReceiver(t, secret, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	var errs []error
	s, err := webhook.New(r.URL, secret, fast(), webhook.WithBackgroundErrors(func(err error) { errs = append(errs, err) }))
	require.NoError(t, err)
	require.NoError(t, s.Send(event(apikey.KeyRevoked, "AbCdEf123456")))
	require.NoError(t, s.Close(context.Background()))
	assert.Equal(t, 3, r.attemptCount())
	require.Len(t, r.delivered(), 1, "delivered once")
	assert.Zero(t, r.badSigs.Load())
	ids := map[string]bool{}
	for _, h := range r.attempts {
		ids[h.Get("webhook-id")] = true
	}
	assert.Len(t, ids, 1, "every attempt has the same webhook-id")
	assert.Empty(t, errs)

	var p struct {
		Type string `json:"type"`
		Data struct {
			Key apikey.KeyView `json:"key"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.delivered()[0], &p))
	assert.Equal(t, "key.revoked", p.Type)
	assert.Equal(t, "AbCdEf123456", p.Data.Key.ID)
	assert.NotContains(t, string(r.delivered()[0]), "digest")
}

// TestQueueBounded: while the receiver hangs, the queue holds at most
// WithQueueSize messages and Send refuses the rest with ErrQueueFull;
// what was accepted is delivered once the receiver recovers.
func TestQueueBounded(t *testing.T) {
	secret := newSecret(t)
	release := make(chan struct{})
	var down atomic.Bool
	down.Store(true)
	r := newReceiver(t, secret, always(http.StatusOK))
	inner := r.Server.Config.Handler
	r.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if down.Load() {
			<-release
		}
		inner.ServeHTTP(w, req)
	})
	s, err := webhook.New(r.URL, secret, webhook.WithQueueSize(3), fast())
	require.NoError(t, err)
	accepted := 0
	for i := range 50 {
		err := s.Send(event(apikey.KeyExpiring, "AbCdEf1234"+strconv.Itoa(10+i)))
		if err == nil {
			accepted++
		} else {
			require.ErrorIs(t, err, webhook.ErrQueueFull)
			assert.NotContains(t, err.Error(), secret.Reveal())
		}
		assert.LessOrEqual(t, s.Len(), 3)
	}
	assert.GreaterOrEqual(t, accepted, 3)
	assert.LessOrEqual(t, accepted, 4, "the queue and the one message in flight")
	down.Store(false)
	close(release)
	require.NoError(t, s.Close(context.Background()))
	assert.Len(t, r.delivered(), accepted)
	assert.ErrorIs(t, s.Send(event(apikey.KeyExpiring, "AbCdEf123456")), webhook.ErrClosed)
}

// TestGivesUp: a 4xx answer is final; a receiver that keeps failing is
// given up after the last attempt; both go to the background-error hook,
// naming the message and the key, never the secret. Close with a deadline
// while the receiver is down gives up on what is left.
func TestGivesUp(t *testing.T) {
	secret := newSecret(t)
	var mu sync.Mutex
	var errs []error
	onErr := webhook.WithBackgroundErrors(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })

	r := newReceiver(t, secret, always(http.StatusBadRequest))
	s, err := webhook.New(r.URL, secret, fast(), onErr)
	require.NoError(t, err)
	require.NoError(t, s.Send(event(apikey.KeyCreated, "AbCdEf123456")))
	require.NoError(t, s.Close(context.Background()))
	assert.Equal(t, 1, r.attemptCount(), "a 400 is not retried")

	r = newReceiver(t, secret, always(http.StatusServiceUnavailable))
	s, err = webhook.New(r.URL, secret, webhook.WithRetries(3, time.Millisecond, time.Millisecond), onErr)
	require.NoError(t, err)
	require.NoError(t, s.Send(event(apikey.KeyCreated, "ZZCdEf123456")))
	require.NoError(t, s.Close(context.Background()))
	assert.Equal(t, 3, r.attemptCount())

	s, err = webhook.New(r.URL, secret, webhook.WithRetries(1000, 50*time.Millisecond, time.Second), onErr)
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, s.Send(event(apikey.KeyCreated, "YYCdEf123456")))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	assert.ErrorIs(t, s.Close(ctx), context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second, "Close returns soon after its deadline")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, errs, 5)
	assert.Contains(t, errs[0].Error(), "AbCdEf123456")
	assert.Contains(t, errs[0].Error(), "400")
	assert.Contains(t, errs[1].Error(), "after 3 attempts")
	for _, err := range errs {
		assert.Contains(t, err.Error(), "msg_")
		assert.NotContains(t, err.Error(), strings.TrimPrefix(secret.Reveal(), "whsec_"))
	}
}

// TestManagerEvents: a Manager's and a leak handler's hooks feed a
// Sender; the receiver gets each lifecycle event, verified, and no body
// holds the key.
func TestManagerEvents(t *testing.T) {
	ctx := context.Background()
	secret := newSecret(t)
	r := newReceiver(t, secret, always(http.StatusOK))
	s, err := webhook.New(r.URL, secret, fast())
	require.NoError(t, err)
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("webhook-test-pepper-0123456789ab")), apikey.WithKeyEvents(s.Notify))
	require.NoError(t, err)
	defer m.Close()
	key, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "alice"})
	require.NoError(t, err)
	next, k2, err := m.Rotate(ctx, k.ID, time.Hour)
	require.NoError(t, err)
	require.NoError(t, m.Suspend(ctx, k2.ID))
	require.NoError(t, m.RevokeWithReason(ctx, k2.ID, "leaked: https://example.com/x"))
	s.Notify(apikey.KeyEvent{Type: apikey.KeyLeaked, At: time.Now(), Key: k2.View(time.Now()), Source: "github", URL: "https://example.com/x"})
	require.NoError(t, s.Close(ctx))

	var types []string
	for _, b := range r.delivered() {
		for _, secretText := range []string{key.Reveal(), next.Reveal()} {
			assert.NotContains(t, string(b), secretText)
			assert.NotContains(t, string(b), secretText[len(secretText)-49:])
		}
		var p struct {
			Type string `json:"type"`
			Data struct {
				Key    apikey.KeyView `json:"key"`
				Source string         `json:"source"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(b, &p))
		types = append(types, p.Type)
	}
	assert.Equal(t, []string{"key.created", "key.rotated", "key.suspended", "key.revoked", "key.leaked"}, types)
	assert.Zero(t, r.badSigs.Load())
}

func TestOptions(t *testing.T) {
	secret := newSecret(t)
	for name, opt := range map[string]webhook.Option{
		"WithHTTPClient":       webhook.WithHTTPClient(nil),
		"WithQueueSize":        webhook.WithQueueSize(0),
		"WithRetries":          webhook.WithRetries(0, time.Second, time.Second),
		"WithRetries max":      webhook.WithRetries(3, time.Second, time.Millisecond),
		"WithAttemptTimeout":   webhook.WithAttemptTimeout(0),
		"WithBackgroundErrors": webhook.WithBackgroundErrors(nil),
		"WithClock":            webhook.WithClock(nil),
		"nil":                  nil,
	} {
		_, err := webhook.New("https://example.com/hook", secret, opt)
		assert.ErrorIs(t, err, apikey.ErrInvalidRequest, name)
	}
	_, err := webhook.New("ftp://example.com", secret)
	assert.ErrorIs(t, err, webhook.ErrInvalidOption)
	_, err = webhook.New("https://example.com", webhook.Secret{})
	assert.ErrorIs(t, err, webhook.ErrInvalidOption)
}
