package apikey_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseQuotaMonth(t *testing.T) {
	q, err := apikey.ParseQuota("1000000/month")
	require.NoError(t, err)
	assert.Equal(t, apikey.Quota{Limit: 1000000, Period: apikey.MonthPeriod}, q)
	assert.Equal(t, "1000000/month", q.String())
	assert.NoError(t, q.Validate())
	for _, bad := range []string{"0/month", "/month", "-1/month", "1/2month", "1/months", "1/Month", "99999999999999999999/month", "1/month/month"} {
		_, err := apikey.ParseQuota(bad)
		assert.ErrorIs(t, err, apikey.ErrInvalidRequest, bad)
	}
	assert.Error(t, apikey.Quota{Limit: 1, Period: -2}.Validate(), "only -1 is a month")
}

func TestQuotaWindow(t *testing.T) {
	month := apikey.Quota{Limit: 1, Period: apikey.MonthPeriod}
	for _, tt := range []struct{ at, start, end time.Time }{
		{utc(2028, 2, 29, 23), utc(2028, 2, 1, 0), utc(2028, 3, 1, 0)},
		{utc(2027, 2, 28, 23), utc(2027, 2, 1, 0), utc(2027, 3, 1, 0)},
		{utc(2026, 12, 31, 23).Add(time.Hour - time.Nanosecond), utc(2026, 12, 1, 0), utc(2027, 1, 1, 0)},
		{utc(2027, 1, 1, 0), utc(2027, 1, 1, 0), utc(2027, 2, 1, 0)},
		// Another zone: the month is UTC's.
		{time.Date(2026, 3, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600)), utc(2026, 2, 1, 0), utc(2026, 3, 1, 0)},
	} {
		s, e := month.Window(tt.at)
		assert.Equal(t, tt.start, s, "start of %v", tt.at)
		assert.Equal(t, tt.end, e, "end of %v", tt.at)
	}
	day := apikey.Quota{Limit: 1, Period: 24 * time.Hour}
	s, e := day.Window(utc(2028, 2, 29, 13))
	assert.Equal(t, utc(2028, 2, 29, 0), s)
	assert.Equal(t, utc(2028, 3, 1, 0), e)
}

// TestMiddlewareMonthQuota: a monthly quota on the Manager's own counter
// lasts until 00:00 UTC on the 1st, and its RateLimit fields say so.
func TestMiddlewareMonthQuota(t *testing.T) {
	m, _, clock := usageManager(t, utc(2027, 1, 31, 23).Add(59*time.Minute))
	tok, _ := issue(t, m, apikey.IssueRequest{Quota: apikey.Quota{Limit: 2, Period: apikey.MonthPeriod}})
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := serve(h, newRequest(withKey(tok)))
	require.Equal(t, 200, w.Code)
	assert.Equal(t, `"quota";q=2;w=2678400`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"quota";r=1;t=60`, w.Header().Get("RateLimit"))
	require.Equal(t, 200, call(h, tok))
	w = serve(h, newRequest(withKey(tok)))
	require.Equal(t, 429, w.Code, "the month's quota is spent")
	assert.Equal(t, "60", w.Header().Get("Retry-After"))
	clock.Advance(time.Minute) // 2027-02-01 00:00
	assert.Equal(t, 200, call(h, tok), "a new month")
}
