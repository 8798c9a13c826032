package apikey_test

import (
	"context"
	"hash/crc32"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/internal/testclock"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/require"
)

var testPepper = []byte("test-pepper-0123456789abcdef0123")

func newFakeClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
}

// newTestManager returns a Manager on a fresh memstore with a fake clock.
func newTestManager(t testing.TB, opts ...apikey.Option) (*apikey.Manager, *memstore.Store, *testclock.Clock) {
	t.Helper()
	store := memstore.New()
	clock := newFakeClock()
	m, err := apikey.NewManager(store, append([]apikey.Option{
		apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v1", testPepper),
		apikey.WithClock(clock.Now),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m, store, clock
}

// forge builds a token with a valid checksum from chosen parts, to try
// keys whose shape is right but whose secret or prefix is not.
func forge(prefix, id, secret string) string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	body := prefix + "_" + id + "_" + secret
	c := uint64(crc32.ChecksumIEEE([]byte(body)))
	var crc [6]byte
	for i := 5; i >= 0; i-- {
		crc[i] = base62[c%62]
		c /= 62
	}
	return body + string(crc[:])
}

// parts splits a token into prefix, kid and secret.
func parts(t testing.TB, token string) (prefix, id, secret string) {
	t.Helper()
	tok, err := apikey.Parse(token)
	require.NoError(t, err)
	return tok.Prefix, tok.ID, token[len(token)-49 : len(token)-6]
}

// countingStore wraps a Store, counts Gets and can be made to fail or
// stall. It deliberately hides the wrapped store's optional interfaces.
type countingStore struct {
	apikey.Store
	gets    atomic.Int64
	failing atomic.Bool
	delay   time.Duration
	failErr error
}

func (s *countingStore) Get(ctx context.Context, id string) (*apikey.Key, error) {
	s.gets.Add(1)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.failing.Load() {
		return nil, s.failErr
	}
	return s.Store.Get(ctx, id)
}

func (s *countingStore) Update(ctx context.Context, k *apikey.Key) error {
	if s.failing.Load() {
		return s.failErr
	}
	return s.Store.Update(ctx, k)
}

// must returns v, panicking on err: for fixtures whose arguments are known
// to be valid.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
