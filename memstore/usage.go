package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
)

type usageBucket struct {
	id   string
	hour int64 // Unix seconds
}

type usageCell struct {
	owner           string
	requests, units int64
}

// RecordUsage implements apikey.UsageRecorder. It refuses a batch with a
// row that is not on a whole hour or has negative counts, and then records
// none of it.
func (s *Store) RecordUsage(ctx context.Context, rows []apikey.UsageRow) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.KeyID == "" || !r.Start.Equal(r.Start.Truncate(time.Hour)) || r.Requests < 0 || r.Units < 0 {
			return fmt.Errorf("%w: memstore: usage row for %q at %v: want a key, a whole hour and counts ≥ 0",
				apikey.ErrInvalidRequest, r.KeyID, r.Start)
		}
	}
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	for _, r := range rows {
		b := usageBucket{r.KeyID, r.Start.Unix()}
		c := s.usage[b]
		c.owner = r.Owner
		c.requests += r.Requests
		c.units += r.Units
		s.usage[b] = c
	}
	return nil
}

// Usage implements apikey.UsageRecorder, looking at every bucket held.
func (s *Store) Usage(ctx context.Context, q apikey.UsageQuery) ([]apikey.UsageRow, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	type group struct {
		id    string
		start int64
	}
	sums := make(map[group]*apikey.UsageRow)
	var rows []*apikey.UsageRow
	s.usageMu.Lock()
	for b, c := range s.usage {
		hour := time.Unix(b.hour, 0).UTC()
		if !q.Includes(b.id, c.owner, hour) {
			continue
		}
		g := group{start: q.Granularity.Truncate(hour).Unix()}
		if q.ByKey() {
			g.id = b.id
		}
		r := sums[g]
		if r == nil {
			r = &apikey.UsageRow{KeyID: g.id, Owner: q.Owner, Start: time.Unix(g.start, 0).UTC()}
			if q.ByKey() {
				r.Owner = c.owner
			}
			sums[g] = r
			rows = append(rows, r)
		}
		r.Requests += c.requests
		r.Units += c.units
	}
	s.usageMu.Unlock()
	slices.SortFunc(rows, func(a, b *apikey.UsageRow) int {
		return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.KeyID, b.KeyID))
	})
	out := make([]apikey.UsageRow, len(rows))
	for i, r := range rows {
		out[i] = *r
	}
	return out, nil
}
