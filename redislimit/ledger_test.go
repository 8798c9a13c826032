package redislimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/ledgertest"
	"github.com/redis/go-redis/v9"
)

// TestLedgerConformance runs ledgertest on a single Redis and on a Redis
// Cluster, with the suite's clock (WithClock); its 64 goroutines share one
// balance through Redis.
func TestLedgerConformance(t *testing.T) {
	eachRedis(t, func(t *testing.T, r testRedis) {
		c := r.client(t)
		ledgertest.Run(t, func(now func() time.Time) apikey.Ledger {
			l, err := NewLedger(c, WithPrefix(testPrefix()), WithClock(now))
			if err != nil {
				t.Fatal(err)
			}
			return l
		})
	})
}

// TestLedgerRedisClock: without WithClock, the refill period is that of
// Redis's clock: a daily balance resets at Redis's midnight, so Reset is
// the time to it, within the test's own clock's agreement with Redis's.
func TestLedgerRedisClock(t *testing.T) {
	c := testClient(t)
	l, err := NewLedger(c, WithPrefix(testPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cr := apikey.Credits{Grant: 10, Period: 24 * time.Hour}
	d, err := l.Spend(ctx, "k", cr, 3)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	_, end := cr.Window(rt)
	if !d.Allowed || d.Remaining != 7 || d.Reset <= 0 || (end.Sub(rt)-d.Reset).Abs() > 5*time.Second {
		t.Fatalf("Spend(3) by Redis's clock: %+v; want 7 left and a reset near %v", d, end.Sub(rt))
	}
	month := apikey.Credits{Grant: 10, Period: apikey.MonthPeriod, Day: 31}
	d, err = l.Spend(ctx, "m", month, 0)
	_, end = month.Window(rt)
	if err != nil || (end.Sub(rt)-d.Reset).Abs() > 5*time.Second {
		t.Fatalf("monthly on day 31 by Redis's clock: %+v, %v; want a reset near %v", d, err, end.Sub(rt))
	}
}

// TestLedgerOneRoundTrip: every Spend, Refund and TopUp is exactly one
// EVALSHA once Redis has the script, counted by INFO commandstats, on a
// single Redis and on a Cluster.
func TestLedgerOneRoundTrip(t *testing.T) {
	eachRedis(t, func(t *testing.T, r testRedis) {
		c := r.client(t)
		ctx := context.Background()
		l, err := NewLedger(c, WithPrefix(testPrefix()))
		if err != nil {
			t.Fatal(err)
		}
		cr := apikey.Credits{Grant: 1000, Period: apikey.MonthPeriod, Day: 15}
		for i := range 7 { // load the script on every node
			l.Spend(ctx, fmt.Sprint("k", i), cr, 1)
		}
		inScript := map[string]bool{"time": true, "hmget": true, "hset": true}
		before := commandStats(t, c)
		const spends, others = 100, 20
		for i := range spends {
			if _, err := l.Spend(ctx, fmt.Sprint("k", i%7), cr, 1); err != nil {
				t.Fatal(err)
			}
		}
		for i := range others / 2 {
			if _, err := l.TopUp(ctx, fmt.Sprint("k", i%7), cr, 5); err != nil {
				t.Fatal(err)
			}
			if err := l.Refund(ctx, fmt.Sprint("k", i%7), cr, 1); err != nil {
				t.Fatal(err)
			}
		}
		after := commandStats(t, c)
		if d := after["evalsha"] - before["evalsha"]; d != spends+others {
			t.Errorf("EVALSHA calls: %d, want %d (one per call)", d, spends+others)
		}
		for cmd, n := range after {
			if cmd == "evalsha" || cmd == "info" || inScript[cmd] || topology(cmd) {
				continue
			}
			if d := n - before[cmd]; d != 0 {
				t.Errorf("%d %s calls besides EVALSHA", d, strings.ToUpper(cmd))
			}
		}
	})
}

// TestLedgerRejects: what the script cannot count exactly is refused
// before any command, and a nil clock is a bad option.
func TestLedgerRejects(t *testing.T) {
	c := testClient(t)
	if _, err := NewLedger(c, WithClock(nil)); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("WithClock(nil): %v", err)
	}
	if _, err := NewLedger(nil); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("nil client: %v", err)
	}
	l, err := NewLedger(c, WithPrefix(testPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Spend(context.Background(), "k", apikey.Credits{Grant: 1, Period: time.Hour + time.Nanosecond}, 1)
	if !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("a period of 1h1ns: %v, want ErrInvalidRequest", err)
	}
}

// TestLedgerRedisDown: a Ledger without Redis fails closed.
func TestLedgerRedisDown(t *testing.T) {
	c := downClient(t)
	l, err := NewLedger(c)
	if err != nil {
		t.Fatal(err)
	}
	cr := apikey.Credits{Grant: 1, Period: time.Hour}
	if d, err := l.Spend(context.Background(), "k", cr, 1); !errors.Is(err, apikey.ErrUnavailable) || d.Allowed {
		t.Errorf("Spend: %+v, %v; want ErrUnavailable", d, err)
	}
	if _, err := l.TopUp(context.Background(), "k", cr, 1); !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("TopUp: %v; want ErrUnavailable", err)
	}
	if err := l.Refund(context.Background(), "k", cr, 1); !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("Refund: %v; want ErrUnavailable", err)
	}
}

// downClient returns a client of an address where nothing listens.
func downClient(t *testing.T) *redis.Client {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1,
		DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkRedisLedger: a Ledger's Spend next to a Counter's Add (the
// same one-script round trip for quotas), on 10,000 keys, from 8
// goroutines per CPU.
func BenchmarkRedisLedger(b *testing.B) {
	c := testClient(b)
	prefix := testPrefix()
	l, err := NewLedger(c, WithPrefix(prefix))
	if err != nil {
		b.Fatal(err)
	}
	counter := newTestCounter(b, c, testPrefix())
	ctx := context.Background()
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("credits:k%08d", i)
	}
	b.Cleanup(func() { // balances do not expire
		for i := 0; i < len(keys); i += 1000 {
			full := make([]string, 0, 1000)
			for _, k := range keys[i:min(i+1000, len(keys))] {
				full = append(full, prefix+k)
			}
			c.Del(ctx, full...)
		}
	})
	cr := apikey.Credits{Grant: 1 << 40, Period: apikey.MonthPeriod}
	q := apikey.Quota{Limit: 1 << 40, Period: apikey.MonthPeriod}
	for _, bc := range []struct {
		name string
		op   func(key string) error
	}{
		{"counter", func(key string) error { _, err := counter.Add(ctx, key, q, 1); return err }},
		{"ledger", func(key string) error { _, err := l.Spend(ctx, key, cr, 1); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.op(keys[next.Add(1)%int64(len(keys))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
