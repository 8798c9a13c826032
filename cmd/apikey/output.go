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

// keyView is a key record as the command shows it: no digest, times in
// RFC 3339, limits in the syntax the flags take.
type keyView struct {
	ID          string            `json:"id"`
	Prefix      string            `json:"prefix"`
	Owner       string            `json:"owner"`
	Name        string            `json:"name,omitempty"`
	Scopes      []string          `json:"scopes"`
	Status      string            `json:"status"`
	CreatedAt   *time.Time        `json:"created_at,omitempty"`
	ExpiresAt   *time.Time        `json:"expires_at,omitempty"`
	NotBefore   *time.Time        `json:"not_before,omitempty"`
	RevokedAt   *time.Time        `json:"revoked_at,omitempty"`
	LastUsedAt  *time.Time        `json:"last_used_at,omitempty"`
	RateLimit   string            `json:"rate_limit,omitempty"`
	Quota       string            `json:"quota,omitempty"`
	AllowedIPs  []string          `json:"allowed_ips,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	RotatedFrom string            `json:"rotated_from,omitempty"`
	ReplacedBy  string            `json:"replaced_by,omitempty"`
}

func view(k *apikey.Key, now time.Time) keyView {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	v := keyView{
		ID: k.ID, Prefix: k.Prefix, Owner: k.Owner, Name: k.Name, Scopes: k.Scopes,
		Status:    status(k, now),
		CreatedAt: opt(k.CreatedAt), ExpiresAt: opt(k.ExpiresAt), NotBefore: opt(k.NotBefore),
		RevokedAt: opt(k.RevokedAt), LastUsedAt: opt(k.LastUsedAt),
		Metadata: k.Metadata, RotatedFrom: k.RotatedFrom, ReplacedBy: k.ReplacedBy,
	}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if !k.RateLimit.IsZero() {
		v.RateLimit = k.RateLimit.String()
	}
	if !k.Quota.IsZero() {
		v.Quota = k.Quota.String()
	}
	for _, p := range k.AllowedIPs {
		v.AllowedIPs = append(v.AllowedIPs, p.String())
	}
	return v
}

// status says in a word or two whether k can be used now.
func status(k *apikey.Key, now time.Time) string {
	err := k.Status(now)
	switch {
	case errors.Is(err, apikey.ErrRevoked):
		return "revoked"
	case errors.Is(err, apikey.ErrExpired) && k.ReplacedBy != "":
		return "rotated"
	case errors.Is(err, apikey.ErrExpired):
		return "expired"
	case errors.Is(err, apikey.ErrNotYetValid):
		return "not yet valid"
	case k.ReplacedBy != "":
		return "rotating"
	}
	return "active"
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
			Key    string  `json:"key"`
			ID     string  `json:"id"`
			Record keyView `json:"record"`
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
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	row("id", v.ID)
	row("prefix", v.Prefix)
	row("owner", v.Owner)
	row("name", v.Name)
	row("scopes", strings.Join(v.Scopes, " "))
	row("status", v.Status)
	row("created", ts(v.CreatedAt))
	row("expires", ts(v.ExpiresAt))
	row("not before", ts(v.NotBefore))
	row("revoked", ts(v.RevokedAt))
	row("last used", ts(v.LastUsedAt))
	row("rate limit", v.RateLimit)
	row("quota", v.Quota)
	row("allowed IPs", strings.Join(v.AllowedIPs, " "))
	for _, name := range slices.Sorted(maps.Keys(v.Metadata)) {
		row("meta "+name, fmt.Sprintf("%q", v.Metadata[name]))
	}
	row("rotated from", v.RotatedFrom)
	row("replaced by", v.ReplacedBy)
	return tw.Flush()
}

// printKeys shows records as a table, one per line.
func printKeys(e *env, keys []*apikey.Key, asJSON bool) error {
	now := time.Now()
	if asJSON {
		views := make([]keyView, 0, len(keys))
		for _, k := range keys {
			views = append(views, view(k, now))
		}
		return writeJSON(e.stdout, views)
	}
	if len(keys) == 0 {
		fmt.Fprintln(e.stderr, "no keys")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tOWNER\tNAME\tSCOPES\tSTATUS\tEXPIRES\tLAST USED")
	for _, k := range keys {
		v := view(k, now)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Prefix, v.Owner, dash(v.Name),
			dash(strings.Join(v.Scopes, ",")), v.Status, day(v.ExpiresAt), day(v.LastUsedAt))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func day(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format("2006-01-02 15:04")
}
