package sqlstore_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
)

// BenchmarkRecordUsage10k measures one flush of 10,000 keys' hourly
// buckets (the default batch) through RecordUsage: new rows each
// iteration ("insert", the first flush of an hour) or the same rows again
// ("update", every later flush in the hour). statements/op counts the
// statements sent to the database, through a counting driver.
func BenchmarkRecordUsage10k(b *testing.B) {
	ctx := context.Background()
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			need(b, be)
			db, _ := be.open(b)
			counted := countingDB(b, db)
			st := newStore(b, counted, be.dialect)
			rows := make([]apikey.UsageRow, 10_000)
			for i := range rows {
				rows[i] = apikey.UsageRow{KeyID: fmt.Sprintf("k%011d", i), Owner: fmt.Sprint("owner-", i%100), Requests: 7, Units: 9}
			}
			hour := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, mode := range []string{"insert", "update"} {
				b.Run(mode, func(b *testing.B) {
					b.ReportAllocs()
					start := statements.Load()
					for b.Loop() {
						if mode == "insert" {
							hour = hour.Add(time.Hour)
						}
						for i := range rows {
							rows[i].Start = hour
						}
						if err := st.RecordUsage(ctx, rows); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(statements.Load()-start)/float64(b.N), "statements/op")
				})
			}
		})
	}
}

// statements counts what countingDB's connections send.
var statements atomic.Int64

var registerOnce sync.Map

// countingDB returns a *sql.DB on the same database as db whose
// connections count their Exec and Query calls in statements.
func countingDB(b *testing.B, db *sql.DB) *sql.DB {
	name := fmt.Sprintf("counting-%T", db.Driver())
	if _, loaded := registerOnce.LoadOrStore(name, true); !loaded {
		sql.Register(name, countingDriver{})
	}
	c, err := db.Conn(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	c.Close()
	cdb := sql.OpenDB(countingConnector{db: db})
	b.Cleanup(func() { cdb.Close() })
	return cdb
}

type countingDriver struct{}

func (countingDriver) Open(string) (driver.Conn, error) { return nil, fmt.Errorf("use sql.OpenDB") }

// countingConnector hands out the connections of db's driver, counted.
type countingConnector struct{ db *sql.DB }

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	raw, err := c.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var inner driver.Conn
	err = raw.Raw(func(dc any) error { inner = dc.(driver.Conn); return nil })
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: inner, raw: raw}, nil
}

func (c countingConnector) Driver() driver.Driver { return countingDriver{} }

type countingConn struct {
	driver.Conn
	raw *sql.Conn // keeps the borrowed connection out of db's pool
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	statements.Add(1)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	statements.Add(1)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *countingConn) Close() error { return c.raw.Close() }
