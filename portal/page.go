package portal

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
)

//go:embed templates/page.html
var templateFS embed.FS

//go:embed static
var embeddedStatic embed.FS

// serveStatic serves the page's CSS and script from the embedded files.
// It writes them itself, rather than through http.FileServer, so that a
// miss keeps the security headers and no directory is ever listed.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ctype := mime.TypeByExtension(path.Ext(name))
	body, err := fs.ReadFile(embeddedStatic, "static/"+name)
	if err != nil || ctype == "" || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(body)
}

// Page limits and thresholds.
const (
	pageKeys      = 100                 // keys shown on the page, newest first; the API pages through all
	unusedAfter   = 90 * 24 * time.Hour // "unused for 90 days"
	expiringSoon  = 14 * 24 * time.Hour // "expires in N days" turns to a warning
	timeFormatUTC = "2006-01-02 15:04 UTC"
)

type page struct{ tmpl *template.Template }

func newPage() (*page, error) {
	t, err := template.New("page.html").ParseFS(templateFS, "templates/page.html")
	if err != nil {
		return nil, fmt.Errorf("portal: page template: %w", err)
	}
	return &page{tmpl: t}, nil
}

// pageData is what the page template shows.
type pageData struct {
	Owner       string
	Keys        []keyItem
	Hidden      int // keys not shown, past pageKeys
	Scopes      []string
	Lifetimes   []choice
	Graces      []choice
	Prefixes    []string
	RequireIPs  bool
	MaxKeys     int
	LiveKeys    int
	AtMaxKeys   bool
	DefaultName string
	Usage       *pageUsage // nil when the Store records no usage
}

// choice is an option of a select.
type choice struct {
	Value, Label string
	Selected     bool
}

// keyItem is one key as the page lists it.
type keyItem struct {
	apikey.KeyView
	Badges     []badge
	Created    string
	Expires    string
	LastUsed   string
	CanEdit    bool
	CanRotate  bool
	CanRevoke  bool
	ScopesText string
	IPsText    string
	// UsageText is the key's usage this month, "12 requests · 15 units",
	// or "" when the page shows none.
	UsageText string
}

type badge struct{ Text, Class string }

// serve renders the page for owner.
func (p *page) serve(h *handler) ownerFunc {
	return func(w http.ResponseWriter, r *http.Request, owner string) {
		keys, err := h.ownerKeys(r.Context(), owner)
		if err != nil {
			slog.ErrorContext(r.Context(), "portal: listing keys for the page", slog.String("error", err.Error()))
			http.Error(w, "The key store is unavailable; try again shortly.", http.StatusServiceUnavailable)
			return
		}
		now := h.cfg.now()
		d := pageData{
			Owner:      owner,
			Scopes:     h.cfg.scopes,
			Lifetimes:  lifetimeChoices(h.cfg.lifetime, h.cfg.maxLifetime),
			Graces:     graceChoices(h.cfg.grace, h.cfg.maxGrace),
			Prefixes:   h.cfg.prefixes,
			RequireIPs: h.cfg.requireIPs,
			MaxKeys:    h.cfg.maxKeys,
		}
		for _, k := range keys {
			if live(k, now) {
				d.LiveKeys++
			}
		}
		d.AtMaxKeys = d.LiveKeys >= d.MaxKeys
		if len(keys) > pageKeys {
			d.Hidden = len(keys) - pageKeys
			keys = keys[:pageKeys]
		}
		month := apikey.Month.Truncate(now)
		total, per, err := h.monthUsage(r.Context(), owner, keys, month)
		switch {
		case errors.Is(err, apikey.ErrUsageUnsupported):
		case err != nil:
			slog.ErrorContext(r.Context(), "portal: reading usage for the page", slog.String("error", err.Error()))
			d.Usage = &pageUsage{Month: month.Format("January 2006"), Unavailable: true}
		default:
			d.Usage = &pageUsage{Month: month.Format("January 2006"), Requests: formatCount(total.Requests), Units: formatCount(total.Units)}
		}
		for _, k := range keys {
			it := newKeyItem(k, now)
			if d.Usage != nil && !d.Usage.Unavailable {
				c := per[k.ID]
				it.UsageText = plural(c.Requests, "request") + " · " + plural(c.Units, "unit")
			}
			d.Keys = append(d.Keys, it)
		}
		var buf bytes.Buffer
		if err := p.tmpl.Execute(&buf, d); err != nil {
			slog.ErrorContext(r.Context(), "portal: rendering the page", slog.String("error", err.Error()))
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
	}
}

func newKeyItem(k *apikey.Key, now time.Time) keyItem {
	v := k.View(now)
	it := keyItem{
		KeyView:    v,
		Created:    v.CreatedAt.Format(timeFormatUTC),
		Expires:    "never",
		LastUsed:   "never",
		ScopesText: strings.Join(v.Scopes, " "),
		IPsText:    strings.Join(v.AllowedIPs, ", "),
	}
	if !v.ExpiresAt.IsZero() {
		it.Expires = v.ExpiresAt.Format(timeFormatUTC)
	}
	if !v.LastUsedAt.IsZero() {
		it.LastUsed = v.LastUsedAt.Format(timeFormatUTC)
	}
	it.CanRevoke = v.Status != apikey.StatusRevoked
	it.CanEdit = it.CanRevoke
	it.CanRotate = v.Status == apikey.StatusActive && v.ReplacedBy == ""
	it.Badges = badges(k, v, now)
	return it
}

// badges says what a customer should notice about a key.
func badges(k *apikey.Key, v apikey.KeyView, now time.Time) []badge {
	var b []badge
	switch v.Status {
	case apikey.StatusRevoked:
		return append(b, badge{"revoked", "bad"})
	case apikey.StatusSuspended:
		b = append(b, badge{"suspended", "bad"})
	case apikey.StatusExpired:
		b = append(b, badge{"expired", "bad"})
	case apikey.StatusNotYetValid:
		b = append(b, badge{"not yet valid", "info"})
	case apikey.StatusActive:
		b = append(b, badge{"active", "ok"})
	}
	if v.ReplacedBy != "" && v.Status != apikey.StatusExpired {
		b = append(b, badge{"rotated: ends " + v.ExpiresAt.Format(timeFormatUTC), "warn"})
	} else if left := k.ExpiresAt.Sub(now); !k.ExpiresAt.IsZero() && left > 0 {
		days := int((left + 24*time.Hour - 1) / (24 * time.Hour))
		text := fmt.Sprintf("expires in %d days", days)
		if days == 1 {
			text = "expires in 1 day"
		}
		class := "info"
		if left <= expiringSoon {
			class = "warn"
		}
		b = append(b, badge{text, class})
	}
	last := k.LastUsedAt
	if last.IsZero() {
		last = k.CreatedAt
	}
	if v.Status == apikey.StatusActive && now.Sub(last) >= unusedAfter {
		b = append(b, badge{"unused for 90 days", "warn"})
	}
	return b
}

// lifetimeChoices are the expiry picker's options: common lifetimes up to
// the maximum, with the default preselected, and "never" when there is no
// maximum.
func lifetimeChoices(def, max time.Duration) []choice {
	day := 24 * time.Hour
	var out []choice
	added := false
	for _, d := range []time.Duration{7 * day, 30 * day, 90 * day, 180 * day, 365 * day, 730 * day} {
		if max > 0 && d > max {
			break
		}
		if !added && def > 0 && def < d {
			out = append(out, choice{formatDuration(def), describe(def), true})
			added = true
		}
		out = append(out, choice{formatDuration(d), describe(d), d == def})
		added = added || d == def
	}
	if !added && def > 0 {
		out = append(out, choice{formatDuration(def), describe(def), true})
	}
	if max > 0 && (len(out) == 0 || out[len(out)-1].Value != formatDuration(max)) && max > def {
		out = append(out, choice{formatDuration(max), describe(max) + " (the maximum)", false})
	}
	if max == 0 {
		out = append(out, choice{"never", "never expires", def == 0})
	}
	return out
}

// graceChoices are the rotation dialog's options for how long the old key
// keeps working, up to the maximum, with the default preselected.
func graceChoices(def, max time.Duration) []choice {
	var out []choice
	for _, d := range []time.Duration{0, time.Hour, 24 * time.Hour, 3 * 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour} {
		if d > max {
			break
		}
		label := describe(d)
		if d == 0 {
			label = "stop at once"
		}
		out = append(out, choice{formatDuration(d), label, d == def})
	}
	found := false
	for _, c := range out {
		found = found || c.Selected
	}
	if !found {
		out = append(out, choice{formatDuration(def), describe(def), true})
	}
	return out
}

// plural writes n and noun, with an s unless n is 1: "1 request",
// "1,204 units".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return formatCount(n) + " " + noun + "s"
}

// describe names a duration for a person: "90 days", "1 hour", "36h0m0s".
func describe(d time.Duration) string {
	day := 24 * time.Hour
	switch {
	case d >= day && d%day == 0:
		if n := d / day; n != 1 {
			return fmt.Sprintf("%d days", n)
		}
		return "1 day"
	case d >= time.Hour && d%time.Hour == 0:
		if n := d / time.Hour; n != 1 {
			return fmt.Sprintf("%d hours", n)
		}
		return "1 hour"
	}
	return d.String()
}
