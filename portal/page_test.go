package portal_test

import (
	"context"
	"encoding/json"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey/portal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyCard returns the part of the page that lists key id.
func keyCard(t *testing.T, page, id string) string {
	t.Helper()
	i := strings.Index(page, `<li class="key" data-id="`+id+`"`)
	require.GreaterOrEqual(t, i, 0, "key %s not on the page", id)
	card := page[i+1:]
	if j := strings.Index(card, `<li class="key"`); j >= 0 {
		return card[:j]
	}
	return card[:strings.Index(card, "</section>")]
}

// element returns the element of the page that starts with start and
// ends with the first end after it.
func element(t *testing.T, page, start, end string) string {
	t.Helper()
	i := strings.Index(page, start)
	require.GreaterOrEqual(t, i, 0, "%s not on the page", start)
	j := strings.Index(page[i:], end)
	require.GreaterOrEqual(t, j, 0)
	return page[i : i+j]
}

func TestPageBadges(t *testing.T) {
	e := newEnv(t, portal.WithLifetime(30*24*time.Hour, 365*24*time.Hour))
	ctx := context.Background()
	old := e.create("alice", `{"name":"old unused","expires_in":"365d"}`).Key.ID
	e.clock.Advance(91 * 24 * time.Hour)
	soon := e.create("alice", `{"name":"soon","expires_in":"3d"}`).Key.ID
	later := e.create("alice", `{"name":"later"}`).Key.ID
	expired := e.create("alice", `{"name":"expired","expires_in":"1h"}`).Key.ID
	revoked := e.create("alice", `{"name":"revoked"}`).Key.ID
	suspended := e.create("alice", `{"name":"suspended"}`).Key.ID
	require.NoError(t, e.m.Suspend(ctx, suspended))
	require.Equal(t, 200, e.do("POST", "/api/keys/"+revoked+"/revoke", "alice", "").Code)
	e.clock.Advance(2 * time.Hour)

	w := e.do("GET", "/", "alice", "")
	require.Equal(t, 200, w.Code)
	assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	page := w.Body.String()
	for id, want := range map[string][]string{
		old:       {"active", "expires in 274 days", "unused for 90 days"},
		soon:      {"active", `badge warn">expires in 3 days`},
		later:     {"active", `badge info">expires in 30 days`},
		expired:   {`badge bad">expired`},
		revoked:   {`badge bad">revoked`},
		suspended: {`badge bad">suspended`},
	} {
		card := keyCard(t, page, id)
		for _, s := range want {
			assert.Contains(t, card, s, "key %s", id)
		}
	}
	assert.NotContains(t, keyCard(t, page, later), "unused")
	assert.NotContains(t, keyCard(t, page, revoked), `class="revoke`, "a revoked key offers no revoke")
	assert.NotContains(t, keyCard(t, page, revoked), `class="rotate`)
	assert.Contains(t, keyCard(t, page, later), `class="rotate"`)
	assert.Contains(t, keyCard(t, page, later), "Last used</dt><dd>never")

	// A use shows when it happened.
	tok := e.create("alice", `{"name":"used"}`)
	_, err := e.m.Verify(ctx, tok.Token)
	require.NoError(t, err)
	require.NoError(t, e.m.Close()) // flushes last-used times
	page = e.do("GET", "/", "alice", "").Body.String()
	assert.Contains(t, keyCard(t, page, tok.Key.ID), "Last used</dt><dd>"+e.clock.Now().Format("2006-01-02 15:04 UTC"))
}

func TestPagePolicy(t *testing.T) {
	e := newEnv(t, portal.WithLifetime(30*24*time.Hour, 180*24*time.Hour), portal.WithPrefixes("acme_live", "acme_test"),
		portal.WithRequireAllowedIPs(), portal.WithRotationGrace(time.Hour, 3*24*time.Hour))
	page := e.do("GET", "/", "alice", "").Body.String()
	// The scope picker offers the policy's scopes, and only them.
	assert.Equal(t, 2, strings.Count(page, `name="scopes"`))
	assert.Contains(t, page, `value="orders:*"`)
	assert.Contains(t, page, `value="billing:read"`)
	// The expiry picker preselects the default and stops at the maximum.
	assert.Contains(t, page, `<option value="30d" selected>30 days</option>`)
	assert.Contains(t, page, `<option value="180d">180 days</option>`)
	assert.NotContains(t, page, `value="365d"`)
	assert.NotContains(t, page, `value="never"`)
	assert.Contains(t, page, `<option value="acme_test">acme_test</option>`)
	assert.Contains(t, page, `id="create-ips" name="allowed_ips" rows="2" required`)
	grace := element(t, page, `<select id="grace">`, "</select>")
	assert.Contains(t, grace, `<option value="0">stop at once</option>`)
	assert.Contains(t, grace, `<option value="1h" selected>1 hour</option>`)
	assert.Contains(t, grace, `<option value="3d">3 days</option>`)
	assert.NotContains(t, grace, `value="7d"`)
	// Every control has a label.
	for _, id := range []string{"create-name", "create-expires", "create-prefix", "create-ips", "grace", "token-stored"} {
		assert.True(t, strings.Contains(page, `for="`+id+`"`) || strings.Contains(page, `id="`+id+`"> `), id)
	}
	// No inline script or style, which the CSP would block.
	assert.NotContains(t, page, "<script>")
	assert.NotContains(t, page, "style=")
	assert.NotRegexp(t, `\son[a-z]+=`, page, "no inline event handler")
}

func TestPageAtMaxKeys(t *testing.T) {
	e := newEnv(t, portal.WithMaxKeys(1))
	e.create("alice", `{"name":"only"}`)
	page := e.do("GET", "/", "alice", "").Body.String()
	assert.Contains(t, page, "You hold the most keys allowed (1)")
	assert.Contains(t, page, `id="create-submit" disabled`)
}

func TestPageEscapes(t *testing.T) {
	e := newEnv(t)
	id := e.create("alice", `{"name":"<script>alert(1)</script>\"'&"}`).Key.ID
	r := newRequest("GET", "/", `<b>mallory</b>`, "")
	w := serve(e.h, r)
	page := w.Body.String()
	assert.NotContains(t, page, "<b>mallory")
	assert.Contains(t, page, html.EscapeString("<b>mallory</b>"))

	page = e.do("GET", "/", "alice", "").Body.String()
	assert.NotContains(t, page, "<script>alert")
	assert.Contains(t, keyCard(t, page, id), "&lt;script&gt;alert(1)&lt;/script&gt;")
}

func TestPageShowsRevocationReason(t *testing.T) {
	e := newEnv(t)
	id := e.create("alice", `{"name":"leaked one"}`).Key.ID
	require.NoError(t, e.m.RevokeWithReason(t.Context(), id, "leaked: https://github.com/acme/app/blob/main/<x>.env"))
	card := keyCard(t, e.do("GET", "/", "alice", "").Body.String(), id)
	assert.Contains(t, card, "Revoked because")
	assert.Contains(t, card, html.EscapeString("leaked: https://github.com/acme/app/blob/main/<x>.env"))

	var got keyBody
	require.NoError(t, json.Unmarshal(e.do("GET", "/api/keys/"+id, "alice", "").Body.Bytes(), &got))
	assert.Equal(t, "leaked: https://github.com/acme/app/blob/main/<x>.env", got.Key.RevokedReason)
}
