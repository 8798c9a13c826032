package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/ledgertest"
	"github.com/apikeykit/apikey/sqlstore"
)

// clockedLedger is the Store's Ledger at the times of a test's clock, as
// ledgertest needs: SpendAt, RefundAt and TopUpAt at now().
type clockedLedger struct {
	l   *sqlstore.Ledger
	now func() time.Time
}

func (c clockedLedger) Spend(ctx context.Context, key string, cr apikey.Credits, n int64) (apikey.Decision, error) {
	return c.l.SpendAt(ctx, key, cr, n, c.now())
}

func (c clockedLedger) Refund(ctx context.Context, key string, cr apikey.Credits, n int64) error {
	return c.l.RefundAt(ctx, key, cr, n, c.now())
}

func (c clockedLedger) TopUp(ctx context.Context, key string, cr apikey.Credits, n int64) (int64, error) {
	return c.l.TopUpAt(ctx, key, cr, n, c.now())
}

// TestLedgerConformance runs ledgertest on SQLite, PostgreSQL and MySQL
// (MariaDB in CI), each subtest on a fresh database; its 64 goroutines
// share one balance through the database.
func TestLedgerConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			ledgertest.Run(t, func(now func() time.Time) apikey.Ledger {
				db, _ := b.open(t)
				return clockedLedger{newStore(t, db, b.dialect).Ledger(), now}
			})
		})
	}
}

// TestLedgerTwoStores: two Stores on one database (two processes) share
// balances: what one spends and tops up, the other sees.
func TestLedgerTwoStores(t *testing.T) {
	ctx := context.Background()
	c := apikey.Credits{Grant: 10, Period: apikey.MonthPeriod, Day: 15}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			a := newStore(t, db, b.dialect).Ledger()
			bl := newStore(t, reopen(), b.dialect).Ledger()
			if _, err := a.Spend(ctx, "owner-credits:o", c, 4); err != nil {
				t.Fatal(err)
			}
			if bal, err := bl.TopUp(ctx, "owner-credits:o", c, 5); err != nil || bal != 11 {
				t.Fatalf("TopUp on the second Store: %d, %v; want 11", bal, err)
			}
			if d, err := a.Spend(ctx, "owner-credits:o", c, 0); err != nil || d.Remaining != 11 || d.Limit != 15 {
				t.Fatalf("Spend(0) on the first Store: %+v, %v", d, err)
			}
		})
	}
}

// TestLedgerUnavailable: a closed database is ErrUnavailable, and a
// database not migrated is ErrNotMigrated; neither is a success.
func TestLedgerUnavailable(t *testing.T) {
	ctx := context.Background()
	c := apikey.Credits{Grant: 10, Period: 24 * time.Hour}
	b := backends()[0]
	db, reopen := b.open(t)
	l := newStore(t, db, b.dialect).Ledger()
	db.Close()
	if d, err := l.Spend(ctx, "k", c, 1); !errors.Is(err, apikey.ErrUnavailable) || d.Allowed {
		t.Errorf("Spend on a closed database: %+v, %v; want ErrUnavailable", d, err)
	}
	if _, err := l.TopUp(ctx, "k", c, 1); !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("TopUp on a closed database: %v; want ErrUnavailable", err)
	}
	if err := l.Refund(ctx, "k", c, 1); !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("Refund on a closed database: %v; want ErrUnavailable", err)
	}
	_ = reopen

	fresh, _ := b.open(t)
	st, err := sqlstore.New(fresh, b.dialect)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Exec(`DROP TABLE IF EXISTS apikey_schema_version`); err != nil {
		t.Fatal(err)
	}
	if d, err := st.Ledger().Spend(ctx, "k", c, 1); !errors.Is(err, sqlstore.ErrNotMigrated) || d.Allowed {
		t.Errorf("Spend on a database not migrated: %+v, %v; want ErrNotMigrated", d, err)
	}
}

// TestLedgerLongPeriod: a refill period the Store cannot count in Unix
// nanoseconds is refused.
func TestLedgerLongPeriod(t *testing.T) {
	b := backends()[0]
	db, _ := b.open(t)
	l := newStore(t, db, b.dialect).Ledger()
	_, err := l.Spend(context.Background(), "k", apikey.Credits{Grant: 1, Period: 200 * 365 * 24 * time.Hour}, 1)
	if !errors.Is(err, apikey.ErrInvalidRequest) || !strings.Contains(err.Error(), "maximum") {
		t.Errorf("a two-century refill: %v, want ErrInvalidRequest", err)
	}
}

// BenchmarkLedgerSpend: Spend of 1 unit on 10,000 balances, from 4
// goroutines per CPU, next to BenchmarkCounterAdd (the same upsert shape
// for quotas) on each dialect.
func BenchmarkLedgerSpend(b *testing.B) {
	ctx := context.Background()
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			need(b, be)
			db, _ := be.open(b)
			l := newStore(b, db, be.dialect).Ledger()
			c := apikey.Credits{Grant: 1 << 40, Period: apikey.MonthPeriod}
			keys := make([]string, 10_000)
			for i := range keys {
				keys[i] = fmt.Sprintf("credits:k%08d", i)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Spend(ctx, keys[next.Add(1)%int64(len(keys))], c, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestLedgerLongKeys: an owner's ledger key of 269 bytes (the longest
// owner MySQL stores, 255 bytes, with its prefix) works on every dialect;
// on MySQL, a key past the column's 512 bytes is ErrInvalidRequest.
func TestLedgerLongKeys(t *testing.T) {
	ctx := context.Background()
	c := apikey.Credits{Grant: 10, Period: 24 * time.Hour}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			l := newStore(t, db, b.dialect).Ledger()
			owner := apikey.OwnerCreditsKey(strings.Repeat("o", 255))
			if d, err := l.Spend(ctx, owner, c, 3); err != nil || d.Remaining != 7 {
				t.Fatalf("Spend on a 269-byte key: %+v, %v", d, err)
			}
			if b.dialect != sqlstore.MySQL {
				return
			}
			long := strings.Repeat("k", 513)
			if _, err := l.Spend(ctx, long, c, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Errorf("Spend on a 513-byte key: %v, want ErrInvalidRequest", err)
			}
			if _, err := l.TopUp(ctx, long, c, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Errorf("TopUp on a 513-byte key: %v, want ErrInvalidRequest", err)
			}
			if err := l.Refund(ctx, long, c, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Errorf("Refund on a 513-byte key: %v, want ErrInvalidRequest", err)
			}
		})
	}
}
