package portal_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/portal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCreate(t *testing.T) {
	e := newEnv(t)
	kb := e.create("alice", `{"name":" ci deploy ","scopes":["orders:read","billing:read"],"allowed_ips":["203.0.113.0/24","2001:db8::1"]}`)

	tok, err := apikey.Parse(kb.Token)
	require.NoError(t, err)
	assert.Equal(t, "acme_live", tok.Prefix)
	assert.Equal(t, tok.ID, kb.Key.ID)
	require.NoError(t, e.verifies(kb.Token))

	v := kb.Key
	assert.Equal(t, "ci deploy", v.Name, "the name is trimmed")
	assert.Equal(t, "alice", v.Owner)
	assert.Equal(t, []string{"orders:read", "billing:read"}, v.Scopes)
	assert.Equal(t, apikey.StatusActive, v.Status)
	assert.Equal(t, "acme_live_"+v.ID+"_…", v.Masked)
	assert.Equal(t, e.clock.Now().Add(portal.DefaultLifetime), v.ExpiresAt, "keys expire by default")
	assert.Equal(t, []string{"203.0.113.0/24", "2001:db8::1/128"}, v.AllowedIPs)

	ev := e.lastEvent()
	assert.Equal(t, portal.AuditEvent{Time: e.clock.Now(), Owner: "alice", Action: portal.ActionCreate, KeyID: v.ID,
		ClientIP: netip.MustParseAddr("192.0.2.1")}, ev)
}

func TestCreateChoices(t *testing.T) {
	e := newEnv(t, portal.WithPrefixes("acme_live", "acme_test"), portal.WithLifetime(30*24*time.Hour, 60*24*time.Hour))
	now := e.clock.Now()
	tests := []struct {
		body       string
		prefix     string
		expiresAt  time.Time
		wantScopes []string
	}{
		{`{"name":"a"}`, "acme_live", now.Add(30 * 24 * time.Hour), []string{}},
		{`{"name":"a","prefix":"acme_test","expires_in":"7d"}`, "acme_test", now.Add(7 * 24 * time.Hour), []string{}},
		{`{"name":"a","expires_in":"36h","scopes":["orders:*"]}`, "acme_live", now.Add(36 * time.Hour), []string{"orders:*"}},
		{`{"name":"a","expires_in":"60d"}`, "acme_live", now.Add(60 * 24 * time.Hour), []string{}},
		{`{"name":"a","expires_at":"2030-07-01T00:00:00Z","scopes":["orders:eu:*"]}`, "acme_live", time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC), []string{"orders:eu:*"}},
		{`{"name":"a","expires_at":"2030-06-02T14:00:00+02:00"}`, "acme_live", time.Date(2030, 6, 2, 12, 0, 0, 0, time.UTC), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			kb := e.create("alice", tt.body)
			assert.Equal(t, tt.prefix, kb.Key.Prefix)
			assert.True(t, strings.HasPrefix(kb.Token, tt.prefix+"_"))
			assert.Equal(t, tt.expiresAt, kb.Key.ExpiresAt)
			assert.Equal(t, tt.wantScopes, kb.Key.Scopes)
		})
	}
}

func TestCreateNeverExpires(t *testing.T) {
	e := newEnv(t, portal.WithLifetime(0, 0))
	assert.True(t, e.create("alice", `{"name":"a"}`).Key.ExpiresAt.IsZero())
	assert.True(t, e.create("alice", `{"name":"a","expires_in":"never"}`).Key.ExpiresAt.IsZero())
	assert.False(t, e.create("alice", `{"name":"a","expires_in":"1000d"}`).Key.ExpiresAt.IsZero())
}

// TestCreateBadInput: each bad create is 400 (or 413, 415) with a problem
// naming the member, and writes nothing.
func TestCreateBadInput(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ctype  string // "" for application/json
		status int
		field  string
		detail string // a part of the problem's detail
	}{
		{"empty name", `{"name":""}`, "", 400, "name", "give the key a name"},
		{"blank name", `{"name":"   "}`, "", 400, "name", "give the key a name"},
		{"missing name", `{"scopes":["orders:read"]}`, "", 400, "name", "give the key a name"},
		{"overlong name", `{"name":"` + strings.Repeat("n", 256) + `"}`, "", 400, "name", "256 bytes, at most 255"},
		{"control character in name", `{"name":"a\u0007b"}`, "", 400, "name", "U+0007"},
		{"bidi override in name", `{"name":"a\u202eb"}`, "", 400, "name", "U+202E"},
		{"scope outside the policy", `{"name":"a","scopes":["billing:write"]}`, "", 400, "scopes", `"billing:write" is not within`},
		{"wider scope than granted", `{"name":"a","scopes":["billing:*"]}`, "", 400, "scopes", `"billing:*" is not within`},
		{"everything", `{"name":"a","scopes":["*"]}`, "", 400, "scopes", `"*" is not within`},
		{"orders alone", `{"name":"a","scopes":["orders"]}`, "", 400, "scopes", `"orders" is not within`},
		{"invalid scope", `{"name":"a","scopes":["orders::read"]}`, "", 400, "scopes", "empty segment"},
		{"scope twice", `{"name":"a","scopes":["orders:read","orders:read"]}`, "", 400, "scopes", "listed twice"},
		{"too many scopes", `{"name":"a","scopes":[` + strings.Repeat(`"orders:x",`, 64) + `"orders:y"]}`, "", 400, "scopes", "65, at most 64"},
		{"expiry past the maximum", `{"name":"a","expires_in":"366d"}`, "", 400, "expires_in", "past the maximum lifetime"},
		{"expiry past the maximum in hours", `{"name":"a","expires_in":"8761h"}`, "", 400, "expires_in", "past the maximum lifetime"},
		{"expiry now", `{"name":"a","expires_in":"0d"}`, "", 400, "expires_in", "at least 1m"},
		{"expiry too soon", `{"name":"a","expires_in":"59s"}`, "", 400, "expires_in", "at least 1m"},
		{"negative expiry", `{"name":"a","expires_in":"-1h"}`, "", 400, "expires_in", "negative"},
		{"expiry not a duration", `{"name":"a","expires_in":"soon"}`, "", 400, "expires_in", "not a duration"},
		{"expiry in days with sign", `{"name":"a","expires_in":"+3d"}`, "", 400, "expires_in", "not a number of days"},
		{"never with a maximum", `{"name":"a","expires_in":"never"}`, "", 400, "expires_in", "keys must expire"},
		{"expiry in the past", `{"name":"a","expires_at":"2030-05-31T12:00:00Z"}`, "", 400, "expires_at", "in the past"},
		{"expiry at now", `{"name":"a","expires_at":"2030-06-01T12:00:00Z"}`, "", 400, "expires_at", "in the past"},
		{"expiry at past the maximum", `{"name":"a","expires_at":"2031-06-02T12:00:00Z"}`, "", 400, "expires_at", "past the maximum lifetime"},
		{"expiry at not RFC 3339", `{"name":"a","expires_at":"tomorrow"}`, "", 400, "expires_at", "not an RFC 3339 time"},
		{"both expiries", `{"name":"a","expires_in":"1d","expires_at":"2030-07-01T00:00:00Z"}`, "", 400, "expires_at", "not both"},
		{"malformed CIDR", `{"name":"a","allowed_ips":["10.0.0.0/33"]}`, "", 400, "allowed_ips", "allowed_ips[0]"},
		{"CIDR with host bits text", `{"name":"a","allowed_ips":["10.0.0.1","10.0.0.0/8x"]}`, "", 400, "allowed_ips", "allowed_ips[1]"},
		{"not an address", `{"name":"a","allowed_ips":["example.com"]}`, "", 400, "allowed_ips", "not a CIDR prefix"},
		{"mapped prefix too wide", `{"name":"a","allowed_ips":["::ffff:0.0.0.0/80"]}`, "", 400, "allowed_ips", "IPv4-mapped"},
		{"prefix outside the policy", `{"name":"a","prefix":"evil_live"}`, "", 400, "prefix", "not one of"},
		{"unknown member", `{"name":"a","owner":"bob"}`, "", 400, "owner", "unknown member"},
		{"rate limit is not the customer's", `{"name":"a","rate_limit":"1000/s"}`, "", 400, "rate_limit", "unknown member"},
		{"wrong type", `{"name":"a","scopes":"orders:read"}`, "", 400, "scopes", "wrong type"},
		{"name of wrong type", `{"name":7}`, "", 400, "name", "wrong type"},
		{"array body", `[{"name":"a"}]`, "", 400, "", "JSON object"},
		{"not JSON", `name=a`, "", 400, "", "not valid JSON"},
		{"truncated JSON", `{"name":"a"`, "", 400, "", "not valid JSON"},
		{"two objects", `{"name":"a"}{"name":"b"}`, "", 400, "", "nothing after it"},
		{"too large", `{"name":"` + strings.Repeat("n", 70<<10) + `"}`, "", 413, "", "larger than"},
		{"form post", `name=a`, "application/x-www-form-urlencoded", 415, "", "Content-Type: application/json"},
		{"text/plain", `{"name":"a"}`, "text/plain", 415, "", "must be JSON"},
		{"no content type", `{"name":"a"}`, "none", 415, "", "must be JSON"},
	}
	e := newEnv(t)
	e.create("alice", `{"name":"existing"}`)
	before, events := e.snapshot(), e.eventCount()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("POST", "/api/keys", "alice", tt.body)
			switch tt.ctype {
			case "":
			case "none":
				r.Header.Del("Content-Type")
			default:
				r.Header.Set("Content-Type", tt.ctype)
			}
			w := serve(e.h, r)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			p := problem(t, w)
			assert.Equal(t, tt.field, p.Field)
			assert.Contains(t, p.Detail, tt.detail)
			assert.Equal(t, before, e.snapshot(), "the store changed")
			assert.Equal(t, events, e.eventCount(), "an audit event was reported")
		})
	}
}

func TestCreateTooManyKeys(t *testing.T) {
	e := newEnv(t, portal.WithMaxKeys(2))
	a := e.create("alice", `{"name":"a"}`)
	e.create("alice", `{"name":"b"}`)
	before := e.snapshot()
	w := e.do("POST", "/api/keys", "alice", `{"name":"c"}`)
	require.Equal(t, 400, w.Code)
	assert.Contains(t, problem(t, w).Detail, "you hold 2 keys, the most allowed")
	assert.Equal(t, before, e.snapshot())

	e.create("bob", `{"name":"bob's"}`) // another owner has a count of their own

	// Rotation replaces a key and is not refused.
	w = e.do("POST", "/api/keys/"+a.Key.ID+"/rotate", "alice", `{"grace":"1h"}`)
	require.Equal(t, 201, w.Code, w.Body.String())

	// A revoked or expired key no longer counts.
	require.Equal(t, 200, e.do("POST", "/api/keys/"+a.Key.ID+"/revoke", "alice", "").Code)
	var rot keyBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rot))
	require.Equal(t, 200, e.do("POST", "/api/keys/"+rot.Key.ID+"/revoke", "alice", "").Code)
	e.create("alice", `{"name":"c"}`)
}

func TestCreateRequireAllowedIPs(t *testing.T) {
	e := newEnv(t, portal.WithRequireAllowedIPs())
	empty := e.snapshot()
	for _, body := range []string{`{"name":"a"}`, `{"name":"a","allowed_ips":[]}`} {
		w := e.do("POST", "/api/keys", "alice", body)
		require.Equal(t, 400, w.Code)
		assert.Equal(t, "allowed_ips", problem(t, w).Field)
	}
	assert.Equal(t, empty, e.snapshot())
	kb := e.create("alice", `{"name":"a","allowed_ips":["198.51.100.7"]}`)
	before := e.snapshot()
	w := e.do("PATCH", "/api/keys/"+kb.Key.ID, "alice", `{"allowed_ips":[]}`)
	require.Equal(t, 400, w.Code)
	assert.Equal(t, "allowed_ips", problem(t, w).Field)
	assert.Equal(t, before, e.snapshot())
}

func TestGet(t *testing.T) {
	e := newEnv(t)
	kb := e.create("alice", `{"name":"a","scopes":["orders:read"]}`)
	w := e.do("GET", "/api/keys/"+kb.Key.ID, "alice", "")
	require.Equal(t, 200, w.Code)
	var got keyBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.Equal(t, kb.Key, got.Key)
	assert.Empty(t, got.Token)
	assert.NotContains(t, w.Body.String(), "digest")
	assert.NotContains(t, w.Body.String(), "token")

	for _, id := range []string{"AAAAAAAAAAAA", "short", "not!base62!!", kb.Token} {
		w := e.do("GET", "/api/keys/"+id, "alice", "")
		require.Equal(t, 404, w.Code, id)
		assert.Equal(t, "no such key", problem(t, w).Detail)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 7 {
		ids = append(ids, e.create("alice", fmt.Sprintf(`{"name":"k%d"}`, i)).Key.ID)
		e.clock.Advance(time.Minute)
	}
	e.create("bob", `{"name":"bob's"}`)

	var got []string
	cursor := ""
	pages := 0
	for {
		path := "/api/keys?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		w := e.do("GET", path, "alice", "")
		require.Equal(t, 200, w.Code, w.Body.String())
		var lr struct {
			Keys       []apikey.KeyView `json:"keys"`
			NextCursor string           `json:"next_cursor"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &lr))
		for _, k := range lr.Keys {
			assert.Equal(t, "alice", k.Owner)
			got = append(got, k.ID)
		}
		pages++
		if lr.NextCursor == "" {
			break
		}
		cursor = lr.NextCursor
	}
	assert.Equal(t, 3, pages)
	want := make([]string, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id
	}
	assert.Equal(t, want, got, "newest first, every key once")

	w := e.do("GET", "/api/keys", "carol", "")
	require.Equal(t, 200, w.Code)
	assert.JSONEq(t, `{"keys":[]}`, w.Body.String())

	for _, q := range []string{"limit=0", "limit=201", "limit=x", "limit=-1"} {
		w := e.do("GET", "/api/keys?"+q, "alice", "")
		require.Equal(t, 400, w.Code, q)
		assert.Equal(t, "limit", problem(t, w).Field)
	}
	bobs := e.do("GET", "/api/keys", "bob", "")
	var lr struct{ Keys []apikey.KeyView }
	require.NoError(t, json.Unmarshal(bobs.Body.Bytes(), &lr))
	for _, c := range []string{"nope", lr.Keys[0].ID} { // a cursor of another owner's list is no cursor
		w := e.do("GET", "/api/keys?cursor="+c, "alice", "")
		require.Equal(t, 400, w.Code, c)
		assert.Equal(t, "cursor", problem(t, w).Field)
	}
}

func TestPatch(t *testing.T) {
	e := newEnv(t)
	kb := e.create("alice", `{"name":"a","scopes":["orders:read"],"allowed_ips":["10.0.0.0/8"]}`)
	id := kb.Key.ID
	path := "/api/keys/" + id

	w := e.do("PATCH", path, "alice", `{"name":"renamed","scopes":["orders:*","billing:read"],"allowed_ips":["192.0.2.0/24"]}`)
	require.Equal(t, 200, w.Code, w.Body.String())
	var got keyBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.Equal(t, "renamed", got.Key.Name)
	assert.Equal(t, []string{"orders:*", "billing:read"}, got.Key.Scopes)
	assert.Equal(t, []string{"192.0.2.0/24"}, got.Key.AllowedIPs)
	assert.Equal(t, kb.Key.ExpiresAt, got.Key.ExpiresAt)
	assert.Empty(t, got.Token)
	assert.Equal(t, portal.ActionUpdate, e.lastEvent().Action)
	assert.Equal(t, id, e.lastEvent().KeyID)
	require.NoError(t, e.verifies(kb.Token), "the key keeps working")

	// Clearing: an empty list, while null leaves a field alone.
	w = e.do("PATCH", path, "alice", `{"name":null,"allowed_ips":[],"scopes":[]}`)
	require.Equal(t, 200, w.Code, w.Body.String())
	var cleared keyBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &cleared))
	assert.Equal(t, "renamed", cleared.Key.Name)
	assert.Empty(t, cleared.Key.AllowedIPs)
	assert.Empty(t, cleared.Key.Scopes)

	events := e.eventCount()
	w = e.do("PATCH", path, "alice", `{}`)
	require.Equal(t, 200, w.Code)
	assert.Equal(t, events, e.eventCount(), "an empty change is not a change")

	bad := []struct {
		body, field, detail string
		status              int
	}{
		{`{"name":""}`, "name", "give the key a name", 400},
		{`{"name":"` + strings.Repeat("x", 300) + `"}`, "name", "at most 255", 400},
		{`{"scopes":["billing:write"]}`, "scopes", "not within", 400},
		{`{"scopes":["orders:read","*"]}`, "scopes", "not within", 400},
		{`{"allowed_ips":["10.0.0.256/8"]}`, "allowed_ips", "not a CIDR prefix", 400},
		{`{"expires_at":"2031-01-01T00:00:00Z"}`, "expires_at", "unknown member", 400},
		{`{"prefix":"acme_test"}`, "prefix", "unknown member", 400},
		{`{"scopes":{"a":1}}`, "scopes", "wrong type", 400},
	}
	before := e.snapshot()
	for _, b := range bad {
		t.Run(b.body, func(t *testing.T) {
			w := e.do("PATCH", path, "alice", b.body)
			require.Equal(t, b.status, w.Code, w.Body.String())
			p := problem(t, w)
			assert.Equal(t, b.field, p.Field)
			assert.Contains(t, p.Detail, b.detail)
			assert.Equal(t, before, e.snapshot())
		})
	}

	require.Equal(t, 200, e.do("POST", path+"/revoke", "alice", "").Code)
	before = e.snapshot()
	w = e.do("PATCH", path, "alice", `{"name":"after revoke"}`)
	require.Equal(t, 400, w.Code)
	assert.Equal(t, "the key is revoked", problem(t, w).Detail)
	assert.Equal(t, before, e.snapshot())
}

func TestRotate(t *testing.T) {
	e := newEnv(t)
	kb := e.create("alice", `{"name":"a","scopes":["orders:read"],"expires_in":"30d"}`)
	w := e.do("POST", "/api/keys/"+kb.Key.ID+"/rotate", "alice", `{"grace":"2h"}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	var rot keyBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rot))
	require.NotNil(t, rot.OldKey)
	assert.Equal(t, kb.Key.ID, rot.OldKey.ID)
	assert.Equal(t, rot.Key.ID, rot.OldKey.ReplacedBy)
	assert.Equal(t, kb.Key.ID, rot.Key.RotatedFrom)
	assert.Equal(t, e.clock.Now().Add(2*time.Hour), rot.OldKey.ExpiresAt, "the old key stops at the end of the grace")
	assert.Equal(t, []string{"orders:read"}, rot.Key.Scopes)
	assert.Equal(t, e.clock.Now().Add(30*24*time.Hour), rot.Key.ExpiresAt, "the same lifetime")
	ev := e.lastEvent()
	assert.Equal(t, portal.ActionRotate, ev.Action)
	assert.Equal(t, kb.Key.ID, ev.KeyID)
	assert.Equal(t, rot.Key.ID, ev.NewKeyID)

	require.NoError(t, e.verifies(kb.Token), "the old key works during the grace")
	require.NoError(t, e.verifies(rot.Token))
	e.clock.Advance(2*time.Hour + time.Second)
	require.ErrorIs(t, e.verifies(kb.Token), apikey.ErrExpired)
	require.NoError(t, e.verifies(rot.Token))

	// Without grace, the default (24 hours); with "0", at once.
	b := e.create("alice", `{"name":"b"}`)
	w = e.do("POST", "/api/keys/"+b.Key.ID+"/rotate", "alice", "")
	require.Equal(t, 201, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rot))
	assert.Equal(t, e.clock.Now().Add(portal.DefaultRotationGrace), rot.OldKey.ExpiresAt)
	c := e.create("alice", `{"name":"c"}`)
	w = e.do("POST", "/api/keys/"+c.Key.ID+"/rotate", "alice", `{"grace":"0"}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rot))
	assert.Equal(t, apikey.StatusRevoked, rot.OldKey.Status)
	require.ErrorIs(t, e.verifies(c.Token), apikey.ErrRevoked)
}

func TestRotateBadInput(t *testing.T) {
	e := newEnv(t, portal.WithRotationGrace(time.Hour, 48*time.Hour))
	live := e.create("alice", `{"name":"live"}`).Key.ID
	revoked := e.create("alice", `{"name":"revoked"}`).Key.ID
	require.Equal(t, 200, e.do("POST", "/api/keys/"+revoked+"/revoke", "alice", "").Code)
	rotated := e.create("alice", `{"name":"rotated"}`).Key.ID
	require.Equal(t, 201, e.do("POST", "/api/keys/"+rotated+"/rotate", "alice", "").Code)
	suspended := e.create("alice", `{"name":"suspended"}`).Key.ID
	require.NoError(t, e.m.Suspend(t.Context(), suspended))
	expired := e.create("alice", `{"name":"expired","expires_in":"1h"}`).Key.ID
	e.clock.Advance(2 * time.Hour)

	tests := []struct {
		name, id, body, field, detail string
	}{
		{"grace past the maximum", live, `{"grace":"49h"}`, "grace", "past the longest allowed, 2d"},
		{"negative grace", live, `{"grace":"-1s"}`, "grace", "negative"},
		{"grace not a duration", live, `{"grace":"a while"}`, "grace", "not a duration"},
		{"grace of wrong type", live, `{"grace":3600}`, "grace", "wrong type"},
		{"unknown member", live, `{"grace":"1h","scopes":["*"]}`, "scopes", "unknown member"},
		{"revoked key", revoked, `{}`, "", "the key is revoked"},
		{"rotated key", rotated, `{}`, "", "already rotated"},
		{"suspended key", suspended, `{}`, "", "the key is suspended"},
		{"expired key", expired, `{}`, "", "the key has expired"},
	}
	before, events := e.snapshot(), e.eventCount()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do("POST", "/api/keys/"+tt.id+"/rotate", "alice", tt.body)
			require.Equal(t, 400, w.Code, w.Body.String())
			p := problem(t, w)
			assert.Equal(t, tt.field, p.Field)
			assert.Contains(t, p.Detail, tt.detail)
			assert.NotContains(t, w.Body.String(), "token")
			assert.Equal(t, before, e.snapshot())
			assert.Equal(t, events, e.eventCount())
		})
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	kb := e.create("alice", `{"name":"a"}`)
	path := "/api/keys/" + kb.Key.ID + "/revoke"
	w := e.do("POST", path, "alice", "")
	require.Equal(t, 200, w.Code, w.Body.String())
	var got keyBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.Equal(t, apikey.StatusRevoked, got.Key.Status)
	assert.Equal(t, e.clock.Now(), got.Key.RevokedAt)
	require.ErrorIs(t, e.verifies(kb.Token), apikey.ErrRevoked)
	assert.Equal(t, portal.ActionRevoke, e.lastEvent().Action)

	before, events := e.snapshot(), e.eventCount()
	e.clock.Advance(time.Hour)
	w = e.do("POST", path, "alice", `{}`)
	require.Equal(t, 200, w.Code, "revoking twice is idempotent")
	var again keyBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &again))
	assert.Equal(t, got.Key.RevokedAt, again.Key.RevokedAt)
	assert.Equal(t, before, e.snapshot())
	assert.Equal(t, events, e.eventCount(), "no second event")

	w = e.do("POST", path, "alice", `{"reason":"x"}`)
	require.Equal(t, 400, w.Code)
	assert.Equal(t, "reason", problem(t, w).Field)
}

// TestOwnership: one owner cannot see, change, rotate or revoke another's
// key, and cannot tell it from a key that does not exist.
func TestOwnership(t *testing.T) {
	e := newEnv(t)
	alices := e.create("alice", `{"name":"alice's"}`)
	bobs := e.create("bob", `{"name":"bob's"}`)
	before, events := e.snapshot(), e.eventCount()
	missing := "AAAAAAAAAAAA"
	for _, r := range []struct{ method, suffix, body string }{
		{"GET", "", ""},
		{"PATCH", "", `{"name":"mine now"}`},
		{"POST", "/rotate", `{}`},
		{"POST", "/revoke", `{}`},
	} {
		t.Run(r.method+r.suffix, func(t *testing.T) {
			other := e.do(r.method, "/api/keys/"+alices.Key.ID+r.suffix, "bob", r.body)
			none := e.do(r.method, "/api/keys/"+missing+r.suffix, "bob", r.body)
			require.Equal(t, 404, other.Code)
			assert.Equal(t, none.Code, other.Code)
			assert.Equal(t, none.Body.String(), other.Body.String())
			assert.Equal(t, none.Header(), other.Header())
			assert.Equal(t, before, e.snapshot())
			assert.Equal(t, events, e.eventCount())
		})
	}
	w := e.do("GET", "/api/keys", "bob", "")
	assert.Contains(t, w.Body.String(), bobs.Key.ID)
	assert.NotContains(t, w.Body.String(), alices.Key.ID)
	page := e.do("GET", "/", "bob", "")
	assert.Contains(t, page.Body.String(), bobs.Key.ID)
	assert.NotContains(t, page.Body.String(), alices.Key.ID)
	require.NoError(t, e.verifies(alices.Token))
}

func TestSignInRequired(t *testing.T) {
	e := newEnv(t)
	kb := e.create("alice", `{"name":"a"}`)
	before := e.snapshot()
	page := e.do("GET", "/", "", "")
	require.Equal(t, 401, page.Code)
	assert.Equal(t, "Sign in to manage your API keys.\n", page.Body.String())
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/keys", ""},
		{"POST", "/api/keys", `{"name":"x"}`},
		{"GET", "/api/keys/" + kb.Key.ID, ""},
		{"PATCH", "/api/keys/" + kb.Key.ID, `{"name":"x"}`},
		{"POST", "/api/keys/" + kb.Key.ID + "/rotate", `{}`},
		{"POST", "/api/keys/" + kb.Key.ID + "/revoke", `{}`},
	} {
		w := e.do(r.method, r.path, "", r.body)
		require.Equal(t, 401, w.Code, r.path)
		assert.Contains(t, problem(t, w).Detail, "sign in")
	}
	assert.Equal(t, before, e.snapshot())
	require.NoError(t, e.verifies(kb.Token))
}

func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t)
	kb := e.create("alice", `{"name":"a"}`)
	before, events := e.snapshot(), e.eventCount()
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example"},
	} {
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/api/keys", `{"name":"x"}`},
			{"PATCH", "/api/keys/" + kb.Key.ID, `{"name":"x"}`},
			{"POST", "/api/keys/" + kb.Key.ID + "/rotate", `{}`},
			{"POST", "/api/keys/" + kb.Key.ID + "/revoke", `{}`},
		} {
			req := newRequest(r.method, r.path, "alice", r.body)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			w := serve(e.h, req)
			require.Equal(t, 403, w.Code, "%v %s %s", hdr, r.method, r.path)
			assert.Contains(t, problem(t, w).Detail, "cross-origin")
		}
	}
	assert.Equal(t, before, e.snapshot())
	assert.Equal(t, events, e.eventCount())

	// A same-origin browser request passes.
	req := newRequest("POST", "/api/keys", "alice", `{"name":"x"}`)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	assert.Equal(t, 201, serve(e.h, req).Code)
	// And reading is never refused.
	req = newRequest("GET", "/api/keys", "alice", "")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	assert.Equal(t, 200, serve(e.h, req).Code)
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	kb := e.create("alice", `{"name":"a"}`)
	want := map[string]string{
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
	}
	for _, r := range []struct {
		method, path, owner, body string
		status                    int
	}{
		{"GET", "/", "alice", "", 200},
		{"GET", "/", "", "", 401},
		{"GET", "/static/portal.js", "", "", 200},
		{"GET", "/static/portal.css", "", "", 200},
		{"GET", "/static/favicon.svg", "", "", 200},
		{"GET", "/static/nope", "", "", 404},
		{"GET", "/api/keys", "alice", "", 200},
		{"GET", "/api/nope", "alice", "", 404},
		{"POST", "/api/keys", "alice", `{"name":"b"}`, 201},
		{"POST", "/api/keys", "alice", `{"name":""}`, 400},
		{"GET", "/api/keys/" + kb.Key.ID, "alice", "", 200},
		{"POST", "/api/keys/" + kb.Key.ID + "/rotate", "alice", "", 201},
		{"POST", "/api/keys/" + kb.Key.ID + "/revoke", "alice", "", 200},
	} {
		w := e.do(r.method, r.path, r.owner, r.body)
		require.Equal(t, r.status, w.Code, "%s %s: %s", r.method, r.path, w.Body.String())
		for k, v := range want {
			assert.Equal(t, v, w.Header().Get(k), "%s %s: %s", r.method, r.path, k)
		}
	}
	js := e.do("GET", "/static/portal.js", "", "")
	assert.Equal(t, "text/javascript; charset=utf-8", js.Header().Get("Content-Type"))
}

// TestMountedUnderPrefix: the portal works under http.StripPrefix on the
// standard mux, and the page refers to its files relatively.
func TestMountedUnderPrefix(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	mux.Handle("/account/keys/", http.StripPrefix("/account/keys", e.h))
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/account/keys/", ""},
		{"GET", "/account/keys/static/portal.css", ""},
		{"GET", "/account/keys/api/keys", ""},
		{"POST", "/account/keys/api/keys", `{"name":"a"}`},
	} {
		w := serve(mux, newRequest(r.method, r.path, "alice", r.body))
		assert.Less(t, w.Code, 300, "%s %s: %d %s", r.method, r.path, w.Code, w.Body.String())
	}
	page := serve(mux, newRequest("GET", "/account/keys/", "alice", "")).Body.String()
	assert.Contains(t, page, `href="static/portal.css"`)
	assert.Contains(t, page, `src="static/portal.js"`)
	assert.NotContains(t, page, `="/`, "no absolute URL, which would leave the mount point")
}

func TestNewRejectsBadOptions(t *testing.T) {
	e := newEnv(t)
	owner := func(*http.Request) (string, error) { return "x", nil }
	for name, opt := range map[string]portal.Option{
		"bad scope":             portal.WithGrantableScopes("orders::read"),
		"scope twice":           portal.WithGrantableScopes("a", "a"),
		"zero keys":             portal.WithMaxKeys(0),
		"negative lifetime":     portal.WithLifetime(-1, 0),
		"default over maximum":  portal.WithLifetime(2*time.Hour, time.Hour),
		"no default with a max": portal.WithLifetime(0, time.Hour),
		"no prefixes":           portal.WithPrefixes(),
		"bad prefix":            portal.WithPrefixes("Acme"),
		"prefix twice":          portal.WithPrefixes("a", "a"),
		"grace over maximum":    portal.WithRotationGrace(2*time.Hour, time.Hour),
		"negative grace":        portal.WithRotationGrace(-1, time.Hour),
		"nil audit":             portal.WithAudit(nil),
		"nil actor":             portal.WithActor(nil),
		"nil clock":             portal.WithClock(nil),
		"invalid trusted proxy": portal.WithTrustedProxies(netip.Prefix{}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := portal.New(e.m, owner, opt)
			assert.ErrorIs(t, err, portal.ErrInvalidOption)
		})
	}
	_, err := portal.New(nil, owner)
	assert.ErrorIs(t, err, portal.ErrInvalidOption)
	_, err = portal.New(e.m, nil)
	assert.ErrorIs(t, err, portal.ErrInvalidOption)
}

func TestAuditEvent(t *testing.T) {
	e := newEnv(t, portal.WithActor(func(r *http.Request) string { return "support:" + r.Header.Get("X-Test-Actor") }),
		portal.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	r := newRequest("POST", "/api/keys", "alice", `{"name":"a"}`)
	r.RemoteAddr = "10.1.2.3:4444"
	r.Header.Set("X-Forwarded-For", "198.51.100.9")
	r.Header.Set("X-Test-Actor", "dana")
	w := serve(e.h, r)
	require.Equal(t, 201, w.Code)
	var kb keyBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &kb))
	assert.Equal(t, portal.AuditEvent{
		Time: e.clock.Now(), Owner: "alice", Actor: "support:dana", Action: portal.ActionCreate,
		KeyID: kb.Key.ID, ClientIP: netip.MustParseAddr("198.51.100.9"),
	}, e.lastEvent())
	// The event, however it is printed, holds no key.
	for _, s := range []string{fmt.Sprint(e.lastEvent()), fmt.Sprintf("%+v", e.lastEvent()), fmt.Sprintf("%#v", e.lastEvent())} {
		assert.NotContains(t, s, kb.Token)
		assert.NotContains(t, s, kb.Token[len(kb.Token)-49:])
	}
}

// TestCreateConcurrentlyKeepsMaxKeys: creates racing for one owner never
// pass WithMaxKeys, while another owner's go on.
func TestCreateConcurrentlyKeepsMaxKeys(t *testing.T) {
	e := newEnv(t, portal.WithMaxKeys(5))
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for i := range 40 {
		wg.Go(func() {
			owner := "alice"
			if i%4 == 0 {
				owner = "bob"
			}
			codes <- e.do("POST", "/api/keys", owner, `{"name":"racer"}`).Code
		})
	}
	wg.Wait()
	close(codes)
	created := 0
	for c := range codes {
		if c == 201 {
			created++
		} else {
			assert.Equal(t, 400, c)
		}
	}
	assert.Equal(t, 10, created, "5 for each owner")
	for _, owner := range []string{"alice", "bob"} {
		var lr struct{ Keys []apikey.KeyView }
		require.NoError(t, json.Unmarshal(e.do("GET", "/api/keys", owner, "").Body.Bytes(), &lr))
		assert.Len(t, lr.Keys, 5, owner)
	}
}
