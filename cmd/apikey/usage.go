package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apikeykit/apikey"
)

// runUsage prints what keys were used, from what the services' Managers
// flushed to the database: a key's, or an owner's summed or (--per-key)
// key by key, in one query.
func runUsage(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "usage", "--owner O [--per-key] | --key ID [--by hour|day|month] [--from T] [--to T]")
	owner := fs.String("owner", "", "sum this owner's keys")
	perKey := fs.Bool("per-key", false, "with --owner: a row per key and bucket, not the keys summed")
	key := fs.String("key", "", "one key, by ID (or the whole key)")
	by := fs.String("by", "day", "bucket size: hour, day or month (UTC)")
	from := fs.String("from", "", "first hour counted: YYYY-MM-DD or RFC 3339 (default the 1st of this month, UTC)")
	to := fs.String("to", "", "hours from here on are not counted: YYYY-MM-DD or RFC 3339 (default none)")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(e.stderr, "apikey usage: "+format+"\n", a...)
		return errUsage
	}
	if *owner == "" && *key == "" {
		return bad("give --owner or --key")
	}
	if *perKey && (*owner == "" || *key != "") {
		return bad("--per-key goes with --owner, without --key")
	}
	g, err := apikey.ParseGranularity(*by)
	if err != nil {
		return bad("--by %q: want hour, day or month", *by)
	}
	now := time.Now().UTC()
	q := apikey.UsageQuery{Owner: *owner, PerKey: *perKey, Granularity: g, From: apikey.Month.Truncate(now)}
	if *key != "" {
		q.KeyID = *key
		if t, err := apikey.Parse(*key); err == nil {
			q.KeyID = t.ID
		}
	}
	if *from != "" {
		if q.From, err = parseInstant(*from); err != nil {
			return bad("--from %q: %v", *from, err)
		}
	}
	if *to != "" {
		if q.To, err = parseInstant(*to); err != nil {
			return bad("--to %q: %v", *to, err)
		}
	}
	m, done, err := openManager(ctx, e, *db, noDigests)
	if err != nil {
		return err
	}
	defer done()
	rows, err := m.Usage(ctx, q)
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		if rows == nil {
			rows = []apikey.UsageRow{}
		}
		return writeJSON(e.stdout, rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tKEY\tOWNER\tREQUESTS\tUNITS")
	var requests, units int64
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", bucketLabel(r.Start, g), dash(r.KeyID), r.Owner, r.Requests, r.Units)
		requests, units = requests+r.Requests, units+r.Units
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t%d\n", requests, units)
	return tw.Flush()
}

// parseInstant reads a date (midnight UTC) or an RFC 3339 time.
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want YYYY-MM-DD or an RFC 3339 time such as 2026-11-01T15:00:00Z")
}

func bucketLabel(t time.Time, g apikey.Granularity) string {
	switch g {
	case apikey.Month:
		return t.Format("2006-01")
	case apikey.Day:
		return t.Format(time.DateOnly)
	}
	return strings.Replace(t.Format("2006-01-02 15:04"), " ", "T", 1) + "Z"
}
