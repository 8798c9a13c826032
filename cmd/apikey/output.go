package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apikeykit/apikey"
)

// view is a key record as the command shows it: the library's KeyView
// (no digest, times in RFC 3339, limits in the syntax the flags take).
// Text output names the status in finer words (see status).
func view(k *apikey.Key, now time.Time) apikey.KeyView { return k.View(now) }

// status says in a word or two whether k can be used now.
func status(k *apikey.Key, now time.Time) string {
	err := k.Status(now)
	switch {
	case errors.Is(err, apikey.ErrRevoked):
		return "revoked"
	case errors.Is(err, apikey.ErrSuspended):
		return "suspended"
	case errors.Is(err, apikey.ErrExpired) && k.ReplacedBy != "":
		return "rotated"
	case errors.Is(err, apikey.ErrExpired):
		return "expired"
	case errors.Is(err, apikey.ErrNotYetValid):
		return "not-yet-valid"
	case k.ReplacedBy != "":
		return "rotating"
	}
	return "active"
}

// listStatuses are the values of list --status.
var listStatuses = []string{"active", "revoked", "expired", "suspended", "not-yet-valid", "rotating", "rotated"}

// hasStatus reports whether k is in state (one of listStatuses) at now:
// a rotating key (replaced, in its grace period) is also active, and a
// rotated one (its grace period over) also expired.
func hasStatus(k *apikey.Key, now time.Time, state string) bool {
	s := status(k, now)
	return s == state || state == "active" && s == "rotating" || state == "expired" && s == "rotated"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printIssued shows a new key, once, then its record.
func printIssued(e *env, secret apikey.Secret, k *apikey.Key, asJSON bool, note string) error {
	if asJSON {
		return writeJSON(e.stdout, struct {
			Key    string         `json:"key"`
			ID     string         `json:"id"`
			Record apikey.KeyView `json:"record"`
		}{secret.Reveal(), k.ID, view(k, time.Now())})
	}
	fmt.Fprintf(e.stdout, "%s\n\n", secret.Reveal())
	fmt.Fprintln(e.stdout, "This is the only time the key is shown: only its digest is stored. Keep it in a secret manager.")
	if note != "" {
		fmt.Fprintln(e.stdout, note)
	}
	fmt.Fprintln(e.stdout)
	return printKey(e, k, false)
}

// printKey shows one record as aligned "field  value" lines.
func printKey(e *env, k *apikey.Key, asJSON bool) error {
	v := view(k, time.Now())
	if asJSON {
		return writeJSON(e.stdout, v)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(name, value string) {
		if value != "" {
			fmt.Fprintf(tw, "%s\t%s\n", name, value)
		}
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	row("id", v.ID)
	row("prefix", v.Prefix)
	row("owner", v.Owner)
	row("name", v.Name)
	row("scopes", strings.Join(v.Scopes, " "))
	row("status", status(k, time.Now()))
	row("created", ts(v.CreatedAt))
	row("expires", ts(v.ExpiresAt))
	row("not before", ts(v.NotBefore))
	row("revoked", ts(v.RevokedAt))
	row("revoked reason", v.RevokedReason)
	row("suspended", ts(v.SuspendedAt))
	row("last used", ts(v.LastUsedAt))
	row("rate limit", v.RateLimit)
	row("quota", v.Quota)
	row("credits", v.Credits)
	row("allowed IPs", strings.Join(v.AllowedIPs, " "))
	for _, name := range slices.Sorted(maps.Keys(v.Metadata)) {
		row("meta "+name, fmt.Sprintf("%q", v.Metadata[name]))
	}
	row("rotated from", v.RotatedFrom)
	row("replaced by", v.ReplacedBy)
	return tw.Flush()
}

// listPrinter prints records page by page as they are read, so that
// listing holds one page in memory, however many keys there are: as one
// JSON array, an element at a time, or as a table whose columns are
// aligned within each page.
type listPrinter struct {
	e      *env
	asJSON bool
	now    time.Time
	n      int // records printed so far
}

// page prints keys, the next page.
func (p *listPrinter) page(keys []*apikey.Key) error {
	if p.asJSON {
		for _, k := range keys {
			b, err := json.MarshalIndent(view(k, p.now), "  ", "  ")
			if err != nil {
				return err
			}
			sep := ",\n  "
			if p.n == 0 {
				sep = "[\n  "
			}
			p.n++
			if _, err := fmt.Fprintf(p.e.stdout, "%s%s", sep, b); err != nil {
				return err
			}
		}
		return nil
	}
	if len(keys) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(p.e.stdout, 0, 4, 2, ' ', 0)
	if p.n == 0 {
		fmt.Fprintln(tw, "ID\tPREFIX\tOWNER\tNAME\tSCOPES\tSTATUS\tEXPIRES\tLAST USED\tCREDITS")
	}
	for _, k := range keys {
		v := view(k, p.now)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Prefix, v.Owner, dash(v.Name),
			dash(strings.Join(v.Scopes, ",")), status(k, p.now), day(v.ExpiresAt), day(v.LastUsedAt), dash(v.Credits))
		p.n++
	}
	return tw.Flush()
}

// end finishes the output once every page is printed.
func (p *listPrinter) end() error {
	switch {
	case p.asJSON && p.n == 0:
		_, err := fmt.Fprintln(p.e.stdout, "[]")
		return err
	case p.asJSON:
		_, err := fmt.Fprint(p.e.stdout, "\n]\n")
		return err
	case p.n == 0:
		fmt.Fprintln(p.e.stderr, "no keys")
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02 15:04")
}
