package apikey_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
)

func TestParseCredits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want apikey.Credits
	}{
		{"0", apikey.Credits{Grant: 0, Period: apikey.NoRefill}},
		{"5000", apikey.Credits{Grant: 5000, Period: apikey.NoRefill}},
		{"1000/d", apikey.Credits{Grant: 1000, Period: 24 * time.Hour}},
		{"10/h", apikey.Credits{Grant: 10, Period: time.Hour}},
		{"100000/month", apikey.Credits{Grant: 100000, Period: apikey.MonthPeriod}},
		{"100000/month@15", apikey.Credits{Grant: 100000, Period: apikey.MonthPeriod, Day: 15}},
		{"7/month@31", apikey.Credits{Grant: 7, Period: apikey.MonthPeriod, Day: 31}},
		{"0/d", apikey.Credits{Grant: 0, Period: 24 * time.Hour}},
		{"9007199254740992", apikey.Credits{Grant: apikey.MaxCredits, Period: apikey.NoRefill}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := apikey.ParseCredits(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.NoError(t, got.Validate())
			assert.Equal(t, tc.in, got.String(), "String round-trips")
		})
	}
}

func TestParseCreditsInvalid(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "missing number"},
		{"-1", `unexpected '-'`},
		{"00", "must be at least 1"},
		{"1.5", `unexpected '.'`},
		{"9007199254740993", "grant above"},
		{"1000/", "missing period unit"},
		{"1000/y", `unknown period unit "y"`},
		{"1000/month@0", "day of the month must be at least 1"},
		{"1000/month@32", "day of the month past 31"},
		{"1000/month@", "day of the month missing number"},
		{"1000/month@x", "day of the month unexpected 'x'"},
		{"1000/0d", "period must be at least 1"},
		{"1000/d/d", "unknown period unit"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := apikey.ParseCredits(tc.in)
			require.Error(t, err)
			assert.True(t, errors.Is(err, apikey.ErrInvalidRequest), "%v", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCreditsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    apikey.Credits
	}{
		{"zero", apikey.Credits{}},
		{"negative grant", apikey.Credits{Grant: -1, Period: apikey.NoRefill}},
		{"grant above MaxCredits", apikey.Credits{Grant: apikey.MaxCredits + 1, Period: apikey.NoRefill}},
		{"no period", apikey.Credits{Grant: 10}},
		{"negative period", apikey.Credits{Grant: 10, Period: -5}},
		{"day on a daily refill", apikey.Credits{Grant: 10, Period: 24 * time.Hour, Day: 3}},
		{"day on NoRefill", apikey.Credits{Grant: 10, Period: apikey.NoRefill, Day: 3}},
		{"day 32", apikey.Credits{Grant: 10, Period: apikey.MonthPeriod, Day: 32}},
		{"day -1", apikey.Credits{Grant: 10, Period: apikey.MonthPeriod, Day: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			assert.True(t, errors.Is(err, apikey.ErrInvalidRequest), "%v", err)
		})
	}
}

// TestMonthWindowDay: months that start on day D, clamped to a short
// month's last day, across a leap day and a year boundary.
func TestMonthWindowDay(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		day        int
		at         time.Time
		start, end time.Time
	}{
		{0, d(2026, 3, 10), d(2026, 3, 1), d(2026, 4, 1)},
		{1, d(2026, 3, 10), d(2026, 3, 1), d(2026, 4, 1)},
		{15, d(2026, 3, 10), d(2026, 2, 15), d(2026, 3, 15)},
		{15, d(2026, 3, 15), d(2026, 3, 15), d(2026, 4, 15)},
		{15, d(2026, 3, 15).Add(-time.Nanosecond), d(2026, 2, 15), d(2026, 3, 15)},
		{31, d(2026, 3, 1), d(2026, 2, 28), d(2026, 3, 31)},
		{31, d(2028, 3, 1), d(2028, 2, 29), d(2028, 3, 31)}, // leap year
		{30, d(2028, 2, 29), d(2028, 2, 29), d(2028, 3, 30)},
		{31, d(2026, 4, 30), d(2026, 4, 30), d(2026, 5, 31)},
		{31, d(2026, 12, 31), d(2026, 12, 31), d(2027, 1, 31)},
		{20, d(2027, 1, 5), d(2026, 12, 20), d(2027, 1, 20)},
	} {
		q := apikey.Quota{Limit: 1, Period: apikey.MonthPeriod, Day: tc.day}
		start, end := q.Window(tc.at)
		assert.Equal(t, tc.start, start, "day %d at %v: start", tc.day, tc.at)
		assert.Equal(t, tc.end, end, "day %d at %v: end", tc.day, tc.at)
		c := apikey.Credits{Grant: 1, Period: apikey.MonthPeriod, Day: tc.day}
		cs, ce := c.Window(tc.at)
		assert.Equal(t, start, cs)
		assert.Equal(t, end, ce)
	}
	// Consecutive windows tile time: each ends where the next starts.
	for day := 0; day <= 31; day++ {
		q := apikey.Quota{Limit: 1, Period: apikey.MonthPeriod, Day: day}
		_, end := q.Window(d(2027, 11, 3))
		for range 30 {
			s, e := q.Window(end)
			require.Equal(t, end, s, "day %d", day)
			require.True(t, e.After(s))
			end = e
		}
	}
}

func TestCreditsWindowNoRefill(t *testing.T) {
	start, end := apikey.Credits{Grant: 5, Period: apikey.NoRefill}.Window(time.Now())
	assert.Equal(t, time.Unix(0, 0).UTC(), start)
	assert.True(t, end.IsZero())
}

func TestParseQuotaMonthDay(t *testing.T) {
	q, err := apikey.ParseQuota("1000000/month@15")
	require.NoError(t, err)
	assert.Equal(t, apikey.Quota{Limit: 1000000, Period: apikey.MonthPeriod, Day: 15}, q)
	assert.Equal(t, "1000000/month@15", q.String())
	for _, bad := range []string{"1/month@0", "1/month@32", "1/month@", "1/month@1x", "1/month@-1"} {
		_, err := apikey.ParseQuota(bad)
		assert.True(t, errors.Is(err, apikey.ErrInvalidRequest), "%q: %v", bad, err)
		assert.True(t, strings.Contains(err.Error(), "day of the month"), "%q: %v", bad, err)
	}
	assert.Error(t, apikey.Quota{Limit: 1, Period: time.Hour, Day: 2}.Validate())
	assert.Error(t, apikey.Quota{Limit: 1, Period: apikey.MonthPeriod, Day: 32}.Validate())
	assert.NoError(t, apikey.Quota{Limit: 1, Period: apikey.MonthPeriod, Day: 31}.Validate())
}

func FuzzParseCredits(f *testing.F) {
	for _, s := range []string{"0", "5000", "1000/d", "100/month@15", "1/month@32", "9007199254740993", "1/", "x/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := apikey.ParseCredits(s)
		if err != nil {
			if !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Fatalf("%q: error %v does not wrap ErrInvalidRequest", s, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%q parsed to %+v, which Validate refuses: %v", s, c, err)
		}
		again, err := apikey.ParseCredits(c.String())
		if err != nil || again != c {
			t.Fatalf("%q: String %q does not round-trip: %+v, %v", s, c.String(), again, err)
		}
	})
}
