package leaks_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/leaks"
	"github.com/apikeykit/apikey/memstore"
)

// TestActions: with Suspend the key is suspended, not revoked, and a
// redelivery gets the same answer; with ReportOnly the key keeps working
// and the event is still emitted.
func TestActions(t *testing.T) {
	ctx := context.Background()
	gh := newSigner(t, "key-1")
	ks := newKeyServer(t, gh)

	t.Run("suspend", func(t *testing.T) {
		m, _ := newMemManager(t)
		var evs events
		h := newGitHub(t, m, ks, leaks.WithAction(leaks.Suspend), leaks.WithOnEvent(evs.add))
		secret, k := issue(t, m)
		b := body(t, report{Token: secret.Reveal(), Type: "t", URL: leakURL})
		first := postGitHub(t, h, gh, b)
		assert.Equal(t, "true_positive", decode(t, first)[0].Label)
		_, err := m.Verify(ctx, secret.Reveal())
		assert.ErrorIs(t, err, apikey.ErrSuspended)
		again := postGitHub(t, h, gh, b)
		assert.Equal(t, first.Body.String(), again.Body.String())
		stored, err := m.Get(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, int64(2), stored.Revision, "suspended once")
		assert.True(t, stored.RevokedAt.IsZero())
		require.Len(t, evs.list(), 1)
		assert.Equal(t, apikey.StatusSuspended, evs.list()[0].Key.Status)
	})
	t.Run("report only", func(t *testing.T) {
		m, store := newMemManager(t)
		var evs events
		h := newGitHub(t, m, ks, leaks.WithAction(leaks.ReportOnly), leaks.WithOnEvent(evs.add))
		secret, k := issue(t, m)
		b := body(t, report{Token: secret.Reveal(), Type: "t", URL: leakURL})
		assert.Equal(t, "true_positive", decode(t, postGitHub(t, h, gh, b))[0].Label)
		// The report is not a use: once every use is flushed, the key
		// still looks never used, so hygiene sweeps still see it idle.
		fresh := newManager(t, store)
		require.NoError(t, m.Close())
		stored, err := store.Get(ctx, k.ID)
		require.NoError(t, err)
		assert.True(t, stored.LastUsedAt.IsZero(), "the report recorded a use at %v", stored.LastUsedAt)
		m = fresh
		_, err = m.Verify(ctx, secret.Reveal())
		require.NoError(t, err, "ReportOnly changes nothing")
		require.Len(t, evs.list(), 1)
		assert.Equal(t, k.ID, evs.list()[0].Key.ID)
		assert.Equal(t, apikey.StatusActive, evs.list()[0].Key.Status)
	})
}

// TestGitLab: GitLab's handler reads GitLab's headers and body, and needs
// the key document's URL.
func TestGitLab(t *testing.T) {
	ctx := context.Background()
	m, _ := newMemManager(t)
	gl := newSigner(t, "gitlab-1")
	ks := newKeyServer(t, gl)
	_, err := leaks.GitLab(m, "")
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
	var evs events
	h, err := leaks.GitLab(m, ks.URL, leaks.WithOnEvent(evs.add))
	require.NoError(t, err)
	secret, k := issue(t, m)
	b := []byte(`[{"type":"acme_api_key","token":"` + secret.Reveal() + `","url":"https://gitlab.com/g/p/-/blob/main/.env"}]`)
	const id, sh = "Gitlab-Public-Key-Identifier", "Gitlab-Public-Key-Signature"
	assert.Equal(t, http.StatusUnauthorized, post(h, "Github-Public-Key-Identifier", "Github-Public-Key-Signature", gl.id, gl.sign(t, b), b).Code)
	got := decode(t, post(h, id, sh, gl.id, gl.sign(t, b), b))
	assert.Equal(t, []answer{{hash(secret.Reveal()), "acme_api_key", "true_positive"}}, got)
	stored, err := m.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "leaked: https://gitlab.com/g/p/-/blob/main/.env", stored.RevokedReason)
	require.Len(t, evs.list(), 1)
	assert.Equal(t, "gitlab", evs.list()[0].Source)
}

// failingStore is a real memstore that can be made to fail, as a database
// that went away.
type failingStore struct {
	*memstore.Store
	fail bool
}

var errDown = errors.New("database is down")

func (s *failingStore) Get(ctx context.Context, id string) (*apikey.Key, error) {
	if s.fail {
		return nil, errDown
	}
	return s.Store.Get(ctx, id)
}

// TestStoreFailure: a Store that fails makes the report 503, never a
// false_positive the platform would trust.
func TestStoreFailure(t *testing.T) {
	ctx := context.Background()
	s := &failingStore{Store: memstore.New()}
	m := newManager(t, s, apikey.WithCache(0, 0))
	gh := newSigner(t, "key-1")
	ks := newKeyServer(t, gh)
	var reported []error
	h := newGitHub(t, m, ks, leaks.WithErrors(func(err error) { reported = append(reported, err) }))
	secret, _ := issue(t, m)
	b := body(t, report{Token: secret.Reveal(), Type: "t", URL: leakURL})
	s.fail = true
	rec := postGitHub(t, h, gh, b)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.NotContains(t, rec.Body.String(), secret.Reveal())
	require.Len(t, reported, 1)
	assert.ErrorIs(t, reported[0], apikey.ErrUnavailable)
	assert.NotContains(t, reported[0].Error(), secret.Reveal())
	s.fail = false
	_, err := m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	assert.Equal(t, "true_positive", decode(t, postGitHub(t, h, gh, b))[0].Label)
}

// TestOptions: bad options are errors at construction.
func TestOptions(t *testing.T) {
	m, _ := newMemManager(t)
	for name, opt := range map[string]leaks.Option{
		"WithKeysURL":         leaks.WithKeysURL("ftp://example.com/keys"),
		"WithKeysURL empty":   leaks.WithKeysURL(""),
		"WithHTTPClient":      leaks.WithHTTPClient(nil),
		"WithAction":          leaks.WithAction(leaks.Action(9)),
		"WithMaxBodySize":     leaks.WithMaxBodySize(0),
		"WithMaxBatch":        leaks.WithMaxBatch(-1),
		"WithRefetchInterval": leaks.WithRefetchInterval(0),
		"WithConcurrency":     leaks.WithConcurrency(0),
		"WithOnEvent":         leaks.WithOnEvent(nil),
		"WithErrors":          leaks.WithErrors(nil),
		"WithClock":           leaks.WithClock(nil),
		"nil":                 nil,
	} {
		_, err := leaks.GitHub(m, opt)
		assert.ErrorIs(t, err, apikey.ErrInvalidRequest, name)
		assert.ErrorIs(t, err, leaks.ErrInvalidOption, name)
	}
	_, err := leaks.GitHub(nil)
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
	assert.Equal(t, "revoke", leaks.Revoke.String())
	assert.True(t, strings.HasPrefix(leaks.GitHubKeysURL, "https://api.github.com/"))
}
