package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
)

// testUsageRecorder checks apikey.UsageRecorder, when the store implements
// it: buckets are added up, read back per key, per owner and per key of an
// owner (PerKey) in every granularity, across a month boundary, in the
// contract's order; a PerKey query gives the rows a query per key would;
// and a Manager over the store refuses a PerKey query with a KeyID.
func testUsageRecorder(t *testing.T, s apikey.Store) {
	r, ok := s.(apikey.UsageRecorder)
	if !ok {
		t.Skip("store does not implement apikey.UsageRecorder")
	}
	ctx := context.Background()
	owner, other := newOwner(t), newOwner(t)
	ids := []string{newID(t), newID(t), newID(t), newID(t)}
	a, b, c, moved := ids[0], ids[1], ids[2], ids[3]
	hour := func(mo time.Month, d, h int) time.Time { return time.Date(2026, mo, d, h, 0, 0, 0, time.UTC) }
	rows := []apikey.UsageRow{
		{KeyID: a, Owner: owner, Start: hour(3, 31, 22), Requests: 2, Units: 5},
		{KeyID: a, Owner: owner, Start: hour(3, 31, 23), Requests: 1, Units: 1},
		{KeyID: a, Owner: owner, Start: hour(4, 1, 0), Requests: 4, Units: 4},
		{KeyID: b, Owner: owner, Start: hour(3, 31, 23), Requests: 3, Units: 30},
		{KeyID: c, Owner: other, Start: hour(3, 31, 23), Requests: 7, Units: 7},
		// A key that changed hands: its March is other's, its April owner's.
		{KeyID: moved, Owner: other, Start: hour(3, 2, 10), Requests: 1, Units: 2},
		{KeyID: moved, Owner: owner, Start: hour(4, 2, 10), Requests: 5, Units: 6},
		// The same bucket again in one batch adds to it.
		{KeyID: a, Owner: owner, Start: hour(3, 31, 23), Requests: 1, Units: 2},
	}
	if err := r.RecordUsage(ctx, rows); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}
	read := func(q apikey.UsageQuery) []apikey.UsageRow {
		t.Helper()
		got, err := r.Usage(ctx, q)
		if err != nil {
			t.Fatalf("Usage(%+v): %v", q, err)
		}
		return got
	}
	same := func(what string, want, got []apikey.UsageRow) {
		t.Helper()
		if len(want) != len(got) {
			t.Errorf("%s:\n got %s\nwant %s", what, showRows(got), showRows(want))
			return
		}
		for i := range want {
			if want[i].KeyID != got[i].KeyID || want[i].Owner != got[i].Owner || !want[i].Start.Equal(got[i].Start) ||
				want[i].Requests != got[i].Requests || want[i].Units != got[i].Units {
				t.Errorf("%s:\n got %s\nwant %s", what, showRows(got), showRows(want))
				return
			}
		}
	}
	byStartAndKey := func(rows ...apikey.UsageRow) []apikey.UsageRow {
		slices.SortFunc(rows, func(x, y apikey.UsageRow) int {
			return cmp.Or(x.Start.Compare(y.Start), strings.Compare(x.KeyID, y.KeyID))
		})
		return rows
	}
	march, april := hour(3, 1, 0), hour(4, 1, 0)

	same("the owner's months", []apikey.UsageRow{
		{Owner: owner, Start: march, Requests: 7, Units: 38},
		{Owner: owner, Start: april, Requests: 9, Units: 10},
	}, read(apikey.UsageQuery{Owner: owner, Granularity: apikey.Month}))
	same("one key's days", []apikey.UsageRow{
		{KeyID: a, Owner: owner, Start: hour(3, 31, 0), Requests: 4, Units: 8},
		{KeyID: a, Owner: owner, Start: hour(4, 1, 0), Requests: 4, Units: 4},
	}, read(apikey.UsageQuery{KeyID: a, Granularity: apikey.Day}))
	same("per key, by month", byStartAndKey(
		apikey.UsageRow{KeyID: a, Owner: owner, Start: march, Requests: 4, Units: 8},
		apikey.UsageRow{KeyID: b, Owner: owner, Start: march, Requests: 3, Units: 30},
		apikey.UsageRow{KeyID: a, Owner: owner, Start: april, Requests: 4, Units: 4},
		apikey.UsageRow{KeyID: moved, Owner: owner, Start: april, Requests: 5, Units: 6},
	), read(apikey.UsageQuery{Owner: owner, PerKey: true, Granularity: apikey.Month}))
	same("per key, by hour, [From, To)", byStartAndKey(
		apikey.UsageRow{KeyID: a, Owner: owner, Start: hour(3, 31, 23), Requests: 2, Units: 3},
		apikey.UsageRow{KeyID: b, Owner: owner, Start: hour(3, 31, 23), Requests: 3, Units: 30},
		apikey.UsageRow{KeyID: a, Owner: owner, Start: hour(4, 1, 0), Requests: 4, Units: 4},
	), read(apikey.UsageQuery{Owner: owner, PerKey: true, From: hour(3, 31, 23), To: hour(4, 1, 1)}))
	same("per key of the other owner", []apikey.UsageRow{
		{KeyID: moved, Owner: other, Start: hour(3, 2, 0), Requests: 1, Units: 2},
		{KeyID: c, Owner: other, Start: hour(3, 31, 0), Requests: 7, Units: 7},
	}, read(apikey.UsageQuery{Owner: other, PerKey: true, Granularity: apikey.Day}))
	same("per key of an owner with no usage", nil, read(apikey.UsageQuery{Owner: newOwner(t), PerKey: true}))

	// One PerKey query is the queries per key, with the owner, together.
	for _, g := range []apikey.Granularity{apikey.Hour, apikey.Day, apikey.Month} {
		var want []apikey.UsageRow
		for _, id := range ids {
			want = append(want, read(apikey.UsageQuery{Owner: owner, KeyID: id, Granularity: g})...)
		}
		same(fmt.Sprintf("PerKey by %s against a query per key", g), byStartAndKey(want...),
			read(apikey.UsageQuery{Owner: owner, PerKey: true, Granularity: g}))
	}

	m, err := apikey.NewManager(s, apikey.WithPrefix("storetest"),
		apikey.WithPepper("v1", []byte("storetest-pepper-0123456789abcdef")), apikey.WithoutUsage(),
		apikey.WithBackgroundErrors(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, q := range []apikey.UsageQuery{{Owner: owner, KeyID: a, PerKey: true}, {KeyID: a, PerKey: true}, {PerKey: true}} {
		got, err := m.Usage(ctx, q)
		if !errors.Is(err, apikey.ErrInvalidUsageQuery) || !errors.Is(err, apikey.ErrInvalidRequest) || got != nil {
			t.Errorf("Manager.Usage(%+v) = %v, %v; want an error matching ErrInvalidUsageQuery and ErrInvalidRequest", q, got, err)
		}
	}
	same("through a Manager", read(apikey.UsageQuery{Owner: owner, PerKey: true, Granularity: apikey.Day}),
		mustUsage(t, m, apikey.UsageQuery{Owner: owner, PerKey: true, Granularity: apikey.Day}))
}

func mustUsage(t *testing.T, m *apikey.Manager, q apikey.UsageQuery) []apikey.UsageRow {
	t.Helper()
	rows, err := m.Usage(context.Background(), q)
	if err != nil {
		t.Fatalf("Manager.Usage(%+v): %v", q, err)
	}
	return rows
}

func showRows(rows []apikey.UsageRow) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "\n\t%s %s %s %d/%d", r.Start.UTC().Format(time.RFC3339), r.KeyID, r.Owner, r.Requests, r.Units)
	}
	return b.String()
}
