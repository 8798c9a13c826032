package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

// TestMySQLLimitsOfLaterVersions: the legacy records, event claims and
// usage rows that MySQL's VARBINARY(255) columns cannot hold are
// ErrInvalidRequest and write nothing; the largest that fit go in.
func TestMySQLLimitsOfLaterVersions(t *testing.T) {
	ctx := context.Background()
	b := backends()[2]
	need(t, b)
	db, _ := b.open(t)
	st := newStore(t, db, sqlstore.MySQL)
	long, edge := strings.Repeat("x", 256), strings.Repeat("y", 255)
	hour := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

	for _, r := range []apikey.LegacyRecord{
		{Lookup: long, KeyID: "k1", Hash: "bcrypt"},
		{Lookup: "id:k1", KeyID: long, Hash: "bcrypt"},
	} {
		k := &apikey.Key{ID: "k1", Owner: "o", Digest: []byte{1}, DigestVersion: "legacy"}
		if err := st.CreateLegacy(ctx, []*apikey.Key{k}, []apikey.LegacyRecord{r}); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("CreateLegacy(lookup %.20q, key %.20q): %v, want ErrInvalidRequest", r.Lookup, r.KeyID, err)
		}
	}
	if _, err := st.Get(ctx, "k1"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("a refused import left its key: %v", err)
	}
	k := &apikey.Key{ID: "k1", Owner: "o", Digest: []byte{1}, DigestVersion: "legacy"}
	if err := st.CreateLegacy(ctx, []*apikey.Key{k}, []apikey.LegacyRecord{{Lookup: edge, KeyID: "k1", Hash: "bcrypt"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetLegacy(ctx, []string{edge, long}); err != nil || len(got) != 1 || got[0].Lookup != edge {
		t.Fatalf("GetLegacy = %+v, %v; want the 255-byte lookup alone", got, err)
	}

	if _, err := st.ClaimEvent(ctx, "k1", long, hour); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("ClaimEvent(256-byte event): %v, want ErrInvalidRequest", err)
	}
	if _, err := st.ClaimEvent(ctx, long, "e", hour); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("ClaimEvent(256-byte key ID): %v, want ErrInvalidRequest", err)
	}
	for i, want := range []bool{true, false} {
		if ok, err := st.ClaimEvent(ctx, edge, edge, hour); err != nil || ok != want {
			t.Fatalf("ClaimEvent #%d (255 bytes) = %v, %v; want %v", i+1, ok, err, want)
		}
	}

	for _, r := range []apikey.UsageRow{
		{KeyID: long, Owner: "o", Start: hour, Requests: 1, Units: 1},
		{KeyID: "k1", Owner: long, Start: hour, Requests: 1, Units: 1},
	} {
		ok := apikey.UsageRow{KeyID: "k2", Owner: "o", Start: hour, Requests: 1, Units: 1}
		if err := st.RecordUsage(ctx, []apikey.UsageRow{ok, r}); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("RecordUsage(key %.20q, owner %.20q): %v, want ErrInvalidRequest", r.KeyID, r.Owner, err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM apikey_usage`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d usage rows after refused batches (%v), want none", n, err)
	}
	if err := st.RecordUsage(ctx, []apikey.UsageRow{{KeyID: edge, Owner: edge, Start: hour, Requests: 2, Units: 5}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Usage(ctx, apikey.UsageQuery{Owner: edge, Granularity: apikey.Hour})
	if err != nil || len(got) != 1 || got[0].Owner != edge || got[0].Requests != 2 || got[0].Units != 5 {
		t.Fatalf("Usage = %+v, %v", got, err)
	}
}

// TestMySQLUsageMonthIgnoresTimeZone: monthly buckets are UTC months
// whatever the session's time_zone: an hour late on 31 March (UTC) stays
// in March on a session at +05:00, where it is already April.
func TestMySQLUsageMonthIgnoresTimeZone(t *testing.T) {
	ctx := context.Background()
	b := backends()[2]
	need(t, b)
	db, _ := b.open(t)
	newStore(t, db, sqlstore.MySQL) // migrated
	var name string
	if err := db.QueryRow(`SELECT DATABASE()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	cfg := mysqlConfig(t)
	cfg.DBName = name
	cfg.Params = map[string]string{"time_zone": "'+05:00'"}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	east := sql.OpenDB(c)
	t.Cleanup(func() { east.Close() })
	st, err := sqlstore.New(east, sqlstore.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	march, april := time.Date(2026, 3, 31, 22, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	if err := st.RecordUsage(ctx, []apikey.UsageRow{
		{KeyID: "k", Owner: "o", Start: march, Requests: 1, Units: 1},
		{KeyID: "k", Owner: "o", Start: april, Requests: 10, Units: 10},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Usage(ctx, apikey.UsageQuery{Owner: "o", Granularity: apikey.Month})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Start.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || got[0].Requests != 1 ||
		!got[1].Start.Equal(april) || got[1].Requests != 10 {
		t.Fatalf("monthly usage at +05:00 = %+v; want March 1 request, April 10", got)
	}
}

// TestMySQLChangeLogSeesRevocationReason: an operator's plain UPDATE of
// revoked_reason alone is in the change log that Watch polls; an UPDATE
// that leaves it as it was is not.
func TestMySQLChangeLogSeesRevocationReason(t *testing.T) {
	ctx := context.Background()
	b := backends()[2]
	need(t, b)
	db, _ := b.open(t)
	st := newStore(t, db, sqlstore.MySQL)
	if err := st.Create(ctx, &apikey.Key{ID: "k1", Owner: "o", Digest: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	changes := func() (n int) {
		t.Helper()
		if err := db.QueryRow(`SELECT COUNT(*) FROM apikey_changes WHERE id = 'k1'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		reason string
		more   int
	}{{"leaked", 1}, {"leaked", 0}, {"leaked ", 1}} {
		before := changes()
		if _, err := db.Exec(`UPDATE apikey_keys SET revoked_reason = ? WHERE id = 'k1'`, c.reason); err != nil {
			t.Fatal(err)
		}
		if got := changes() - before; got != c.more {
			t.Errorf("UPDATE revoked_reason = %q: %d new changes, want %d", c.reason, got, c.more)
		}
	}
}
