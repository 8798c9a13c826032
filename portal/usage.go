package portal

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/apikeykit/apikey"
)

// usageResponse is the body of GET api/usage: what the owner's keys were
// used for in one calendar month (UTC), in total and key by key.
type usageResponse struct {
	// Month is 00:00 UTC on the month's 1st.
	Month time.Time `json:"month"`
	usageCount
	// Keys are all the owner's keys, newest first, each with its usage
	// (zero for a key not used that month).
	Keys []keyUsage `json:"keys"`
}

type usageCount struct {
	Requests int64 `json:"requests"`
	Units    int64 `json:"units"`
}

type keyUsage struct {
	KeyID string `json:"key_id"`
	usageCount
}

// errUsageUnsupported answers GET api/usage when the Store records no
// usage.
var errUsageUnsupported = &problemError{status: http.StatusNotImplemented, detail: "usage is not recorded by this service"}

// usage answers GET api/usage[?month=YYYY-MM]: the owner's total for the
// month (the current one by default) and each of the owner's keys' usage.
func (h *handler) usage(w http.ResponseWriter, r *http.Request, owner string) {
	month := apikey.Month.Truncate(h.cfg.now())
	if s := r.URL.Query().Get("month"); s != "" {
		m, err := parseMonth(s)
		if err != nil {
			writeError(w, r, badRequest("month", err.Error()))
			return
		}
		month = m
	}
	keys, err := h.ownerKeys(r.Context(), owner)
	if err != nil {
		writeError(w, r, err)
		return
	}
	total, per, err := h.monthUsage(r.Context(), owner, keys, month)
	if errors.Is(err, apikey.ErrUsageUnsupported) {
		writeError(w, r, errUsageUnsupported)
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	resp := usageResponse{Month: month, usageCount: total, Keys: make([]keyUsage, len(keys))}
	for i, k := range keys {
		resp.Keys[i] = keyUsage{KeyID: k.ID, usageCount: per[k.ID]}
	}
	writeJSON(w, http.StatusOK, resp)
}

// parseMonth parses a month as YYYY-MM, from 0001-01 to 9999-12.
func parseMonth(s string) (time.Time, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil || len(s) != len("2006-01") {
		return time.Time{}, errors.New("month: want YYYY-MM, such as 2026-12")
	}
	return t, nil
}

// monthUsage reads, with Manager.Usage, the owner's total in the month
// that starts at month and the usage of each of keys in it, in one query
// (UsageQuery.PerKey) however many keys the owner has. The total sums
// every row, so it includes the owner's keys that are not in keys (those
// beyond the page); a key with no row was not used in the month. It
// returns apikey.ErrUsageUnsupported when the Store records no usage.
func (h *handler) monthUsage(ctx context.Context, owner string, keys []*apikey.Key, month time.Time) (usageCount, map[string]usageCount, error) {
	rows, err := h.m.Usage(ctx, apikey.UsageQuery{Owner: owner, PerKey: true,
		From: month, To: month.AddDate(0, 1, 0), Granularity: apikey.Month})
	if err != nil {
		return usageCount{}, nil, err
	}
	var total usageCount
	per := make(map[string]usageCount, len(keys))
	for _, r := range rows {
		total.Requests += r.Requests
		total.Units += r.Units
		c := per[r.KeyID]
		c.Requests += r.Requests
		c.Units += r.Units
		per[r.KeyID] = c
	}
	return total, per, nil
}

// pageUsage is the page's usage summary for the current month.
type pageUsage struct {
	Month       string // "December 2026"
	Requests    string // "1,234"
	Units       string
	Unavailable bool // the Store failed: the page says so and shows no figures
}

// formatCount writes n with a comma between groups of three digits.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
