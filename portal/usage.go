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
// that starts at month and the usage of each of keys in it: one query for
// the total and one per key that can have been used in the month; a key
// revoked or expired before the month began, or created after it ended,
// is not asked about. It returns apikey.ErrUsageUnsupported when the
// Store records no usage.
func (h *handler) monthUsage(ctx context.Context, owner string, keys []*apikey.Key, month time.Time) (usageCount, map[string]usageCount, error) {
	end := month.AddDate(0, 1, 0)
	q := apikey.UsageQuery{Owner: owner, From: month, To: end, Granularity: apikey.Month}
	total, err := h.sumUsage(ctx, q)
	if err != nil {
		return usageCount{}, nil, err
	}
	per := make(map[string]usageCount, len(keys))
	for _, k := range keys {
		if !k.CreatedAt.Before(end) || !k.RevokedAt.IsZero() && k.RevokedAt.Before(month) ||
			!k.ExpiresAt.IsZero() && k.ExpiresAt.Before(month) {
			continue
		}
		q.KeyID = k.ID
		c, err := h.sumUsage(ctx, q)
		if err != nil {
			return usageCount{}, nil, err
		}
		per[k.ID] = c
	}
	return total, per, nil
}

func (h *handler) sumUsage(ctx context.Context, q apikey.UsageQuery) (usageCount, error) {
	rows, err := h.m.Usage(ctx, q)
	var c usageCount
	for _, row := range rows {
		c.Requests += row.Requests
		c.Units += row.Units
	}
	return c, err
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
