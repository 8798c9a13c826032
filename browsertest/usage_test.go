package browsertest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPortalUsageInBrowser creates two keys by clicking, makes a known
// number of authenticated requests with each (and refused ones, which
// count nothing), and checks that the page, reloaded, shows each key's
// usage this month and the owner's total, and that GET api/usage, with
// the browser's session, gives the same figures.
func TestPortalUsageInBrowser(t *testing.T) {
	ctx, problems := browser(t)
	s := newServer(t, nil)
	step(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/signin?as=alice"),
		chromedp.WaitVisible(css("#create-form")),
	)
	session := sessionOf(t, s)
	assert.Contains(t, value(t, ctx, chromedp.Text(css("#usage-total"))), "all keys: 0 requests · 0 units", "nothing used yet")

	create := func(name string) string {
		step(t, ctx, "create "+name,
			chromedp.Click(css("#create-name")),
			chromedp.SendKeys(css("#create-name"), name),
			chromedp.Click(css(`input[name="scopes"][value="orders:*"]`)),
			chromedp.Click(css("#create-submit")),
			chromedp.WaitVisible(css("#token-value")),
		)
		key := value(t, ctx, chromedp.Text(css("#token-value")))
		_, err := apikey.Parse(key)
		require.NoError(t, err)
		closeTokenDialog(t, ctx)
		return key
	}
	busy, quiet := create("busy"), create("quiet")
	for range 7 {
		require.Equal(t, 200, s.call(t, busy))
	}
	for range 2 {
		require.Equal(t, 200, s.call(t, quiet))
	}
	broken := busy[:len(busy)-1] + "x"
	if broken == busy { // the last character was an x already
		broken = busy[:len(busy)-1] + "y"
	}
	require.Equal(t, 401, s.call(t, broken), "a broken key is refused")
	// Another owner's usage is not alice's.
	bobKey, _, err := s.m.Issue(t.Context(), apikey.IssueRequest{Owner: "bob", Scopes: []string{"orders:read"}})
	require.NoError(t, err)
	require.Equal(t, 200, s.call(t, bobKey.Reveal()))

	step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(css("li.key .key-usage")))
	month := time.Now().UTC().Format("January 2006")
	assert.Equal(t, "Usage in "+month+" (UTC), all keys: 9 requests · 9 units", value(t, ctx, chromedp.Text(css("#usage-total"))))
	kid := func(key string) string { return key[len("acme_live_"):][:apikey.IDLen] }
	card := func(key string) string { return `li.key[data-id="` + kid(key) + `"] .key-usage` }
	assert.Equal(t, "7 requests · 7 units", value(t, ctx, chromedp.Text(css(card(busy)))))
	assert.Equal(t, "2 requests · 2 units", value(t, ctx, chromedp.Text(css(card(quiet)))))
	assertKeyGone(t, ctx, s, session, busy)
	assertKeyGone(t, ctx, s, session, quiet)

	// The JSON API, with the browser's session cookie, says the same.
	req, err := http.NewRequest("GET", s.URL+"/portal/api/usage", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: "session", Value: session})
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, string(body))
	var u struct {
		Requests, Units int64
		Keys            []struct {
			KeyID    string `json:"key_id"`
			Requests int64
		}
	}
	require.NoError(t, json.Unmarshal(body, &u))
	assert.Equal(t, int64(9), u.Requests)
	assert.Equal(t, int64(9), u.Units)
	got := map[string]int64{}
	for _, k := range u.Keys {
		got[k.KeyID] = k.Requests
	}
	assert.Equal(t, map[string]int64{kid(busy): 7, kid(quiet): 2}, got)
	for _, key := range []string{busy, quiet, bobKey.Reveal()} {
		assert.NotContains(t, string(body), key[strings.LastIndexByte(key, '_')+1:])
	}
	assert.NotContains(t, string(body), "bob")
	assert.Empty(t, problems(), "the page logged errors (a refusal by the CSP is one)")
}
