package leaks_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/leaks"
)

const leakURL = "https://github.com/octo/app/blob/0123456789abcdef/config/prod.env"

func newGitHub(t testing.TB, m *apikey.Manager, ks *keyServer, opts ...leaks.Option) http.Handler {
	t.Helper()
	h, err := leaks.GitHub(m, append([]leaks.Option{leaks.WithKeysURL(ks.URL), leaks.WithErrors(func(error) {})}, opts...)...)
	require.NoError(t, err)
	return h
}

// TestSignatures: a signature by a locally generated P-256 key verifies;
// one flipped byte of the body or of the signature, a missing or
// malformed header, or a key the document does not hold, gets 401 and
// changes nothing.
func TestSignatures(t *testing.T) {
	ctx := context.Background()
	m, _ := newMemManager(t)
	gh := newSigner(t, "key-1")
	other := newSigner(t, "key-1") // same identifier, another key
	ks := newKeyServer(t, gh)
	h := newGitHub(t, m, ks)
	secret, k := issue(t, m)
	b := body(t, report{Token: secret.Reveal(), Type: "acme_api_key", URL: leakURL})
	sig := gh.sign(t, b)
	der, err := base64.StdEncoding.DecodeString(sig)
	require.NoError(t, err)

	flippedBody := append([]byte(nil), b...)
	flippedBody[len(flippedBody)/2] ^= 0x01
	flippedDER := append([]byte(nil), der...)
	flippedDER[len(flippedDER)-3] ^= 0x01
	const id, sh = "Github-Public-Key-Identifier", "Github-Public-Key-Signature"
	for _, tt := range []struct {
		name      string
		id, sig   string
		body      []byte
		idHeader  string
		sigHeader string
	}{
		{"flipped body byte", gh.id, sig, flippedBody, id, sh},
		{"flipped signature byte", gh.id, base64.StdEncoding.EncodeToString(flippedDER), b, id, sh},
		{"another key's signature", gh.id, other.sign(t, b), b, id, sh},
		{"no signature", gh.id, "", b, id, sh},
		{"no identifier", "", sig, b, id, sh},
		{"signature not base64", gh.id, "%%%" + sig, b, id, sh},
		{"empty signature DER", gh.id, base64.StdEncoding.EncodeToString(nil) + "=", b, id, sh},
		{"GitLab's headers", gh.id, sig, b, "Gitlab-Public-Key-Identifier", "Gitlab-Public-Key-Signature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(h, tt.idHeader, tt.sigHeader, tt.id, tt.sig, tt.body)
			assert.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
			assert.NotContains(t, rec.Body.String(), secret.Reveal())
			_, err := m.Verify(ctx, secret.Reveal())
			require.NoError(t, err, "a refused report changed the key")
		})
	}

	rec := post(h, id, sh, gh.id, sig, b)
	got := decode(t, rec)
	assert.Equal(t, []answer{{hash(secret.Reveal()), "acme_api_key", "true_positive"}}, got)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.NotContains(t, rec.Body.String(), secret.Reveal(), "the answer names tokens by hash only")
	_, err = m.Verify(ctx, secret.Reveal())
	assert.ErrorIs(t, err, apikey.ErrRevoked)
	stored, err := m.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "leaked: "+leakURL, stored.RevokedReason)
}

// TestUnknownIdentifierRefetchesOnce: the document is fetched on first
// use; a burst of signatures by an unknown identifier makes exactly one
// refetch; within the refetch interval a key published since is not seen,
// after it it is.
func TestUnknownIdentifierRefetchesOnce(t *testing.T) {
	m, _ := newMemManager(t)
	clk := newClock()
	gh, next := newSigner(t, "key-1"), newSigner(t, "key-2")
	ks := newKeyServer(t, gh)
	h := newGitHub(t, m, ks, leaks.WithClock(clk.Now))
	b := body(t)

	assert.Equal(t, http.StatusOK, postGitHub(t, h, gh, b).Code)
	assert.Equal(t, int64(1), ks.fetches.Load(), "first use fetches")
	assert.Equal(t, http.StatusOK, postGitHub(t, h, gh, b).Code)
	assert.Equal(t, int64(1), ks.fetches.Load(), "a known key is cached")

	clk.Advance(2 * time.Minute)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			assert.Equal(t, http.StatusUnauthorized, postGitHub(t, h, newSigner(t, "unknown"), b).Code)
		})
	}
	wg.Wait()
	assert.Equal(t, int64(2), ks.fetches.Load(), "20 unknown identifiers: exactly one refetch")

	ks.publish(t, gh, next) // GitHub rotates its key
	clk.Advance(30 * time.Second)
	assert.Equal(t, http.StatusUnauthorized, postGitHub(t, h, next, b).Code, "within the interval")
	assert.Equal(t, int64(2), ks.fetches.Load())
	clk.Advance(31 * time.Second)
	assert.Equal(t, http.StatusOK, postGitHub(t, h, next, b).Code, "after the interval, the new key is fetched")
	assert.Equal(t, int64(3), ks.fetches.Load())
	assert.Equal(t, http.StatusOK, postGitHub(t, h, gh, b).Code, "the old key still verifies")
}

// TestKeyServerDown: when the key document cannot be fetched the answer
// is 503 with Retry-After, and nothing is revoked; once it can, the same
// report is handled.
func TestKeyServerDown(t *testing.T) {
	ctx := context.Background()
	m, _ := newMemManager(t)
	clk := newClock()
	gh := newSigner(t, "key-1")
	ks := newKeyServer(t, gh)
	ks.down.Store(true)
	var errs []error
	var mu sync.Mutex
	h := newGitHub(t, m, ks, leaks.WithClock(clk.Now), leaks.WithErrors(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }))
	secret, _ := issue(t, m)
	b := body(t, report{Token: secret.Reveal(), Type: "acme_api_key", URL: leakURL})

	for range 3 {
		rec := postGitHub(t, h, gh, b)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	}
	assert.Equal(t, int64(1), ks.fetches.Load(), "a failed fetch is not retried within the interval")
	_, err := m.Verify(ctx, secret.Reveal())
	require.NoError(t, err, "nothing is revoked while the keys cannot be fetched")
	mu.Lock()
	require.NotEmpty(t, errs)
	assert.Contains(t, errs[0].Error(), "500")
	for _, err := range errs {
		assert.NotContains(t, err.Error(), secret.Reveal())
	}
	mu.Unlock()

	ks.down.Store(false)
	clk.Advance(time.Minute)
	assert.Equal(t, "true_positive", decode(t, postGitHub(t, h, gh, b))[0].Label)
	_, err = m.Verify(ctx, secret.Reveal())
	assert.ErrorIs(t, err, apikey.ErrRevoked)
}

// TestBatch: a batch mixing a live key, an already revoked key, a key with
// a bad checksum, a key of another prefix and garbage gets the right
// labels and revokes the live key only, with one KeyLeaked event that
// names the key, its owner, the platform and the URL, never the token.
// Delivered again, it gets the same answer and revokes nothing more.
func TestBatch(t *testing.T) {
	ctx := context.Background()
	m, _ := newMemManager(t)
	gh := newSigner(t, "key-1")
	ks := newKeyServer(t, gh)
	var evs events
	h := newGitHub(t, m, ks, leaks.WithOnEvent(evs.add))

	live, liveKey := issue(t, m)
	revoked, revokedKey := issue(t, m)
	require.NoError(t, m.Revoke(ctx, revokedKey.ID))
	revokedBefore, err := m.Get(ctx, revokedKey.ID)
	require.NoError(t, err)
	badChecksum := []byte(live.Reveal())
	last := len(badChecksum) - 1
	badChecksum[last] = map[bool]byte{true: 'A', false: 'B'}[badChecksum[last] != 'A']
	otherPrefix, err := apikey.Generate("other_live")
	require.NoError(t, err)

	tokens := []string{live.Reveal(), revoked.Reveal(), string(badChecksum), otherPrefix.Secret().Reveal(), "garbage \x00 ☃", ""}
	var reports []report
	for i, tok := range tokens {
		reports = append(reports, report{Token: tok, Type: "acme_api_key", URL: fmt.Sprintf("%s#L%d", leakURL, i), Source: "content"})
	}
	b := body(t, reports...)
	rec := postGitHub(t, h, gh, b)
	got := decode(t, rec)
	want := []string{"true_positive", "false_positive", "false_positive", "false_positive", "false_positive", "false_positive"}
	require.Len(t, got, len(tokens))
	for i, a := range got {
		assert.Equal(t, want[i], a.Label, "token %d", i)
		assert.Equal(t, hash(tokens[i]), a.TokenHash, "token %d", i)
		assert.Equal(t, "acme_api_key", a.TokenType)
	}
	for _, tok := range tokens[:4] {
		assert.NotContains(t, rec.Body.String(), tok)
	}

	_, err = m.Verify(ctx, live.Reveal())
	assert.ErrorIs(t, err, apikey.ErrRevoked)
	stored, err := m.Get(ctx, liveKey.ID)
	require.NoError(t, err)
	assert.Equal(t, "leaked: "+leakURL+"#L0", stored.RevokedReason)
	revokedAfter, err := m.Get(ctx, revokedKey.ID)
	require.NoError(t, err)
	assert.Equal(t, revokedBefore.Revision, revokedAfter.Revision, "the revoked key is left alone")
	assert.Empty(t, revokedAfter.RevokedReason)

	list := evs.list()
	require.Len(t, list, 1)
	ev := list[0]
	assert.Equal(t, apikey.KeyLeaked, ev.Type)
	assert.Equal(t, liveKey.ID, ev.Key.ID)
	assert.Equal(t, "alice", ev.Key.Owner)
	assert.Equal(t, "github", ev.Source)
	assert.Equal(t, leakURL+"#L0", ev.URL)
	assert.Equal(t, apikey.StatusRevoked, ev.Key.Status)
	assert.Equal(t, stored.RevokedReason, ev.Key.RevokedReason)
	for _, form := range []string{fmt.Sprint(ev), fmt.Sprintf("%+v", ev), fmt.Sprintf("%#v", ev)} {
		assert.NotContains(t, form, live.Reveal())
		assert.NotContains(t, form, live.Reveal()[len("acme_live_")+13:], "the event holds part of the secret")
	}

	// Redelivery: same answer, no second revocation, no second event.
	again := postGitHub(t, h, gh, b)
	assert.Equal(t, rec.Body.String(), again.Body.String())
	storedAgain, err := m.Get(ctx, liveKey.ID)
	require.NoError(t, err)
	assert.Equal(t, stored.Revision, storedAgain.Revision)
	assert.True(t, stored.RevokedAt.Equal(storedAgain.RevokedAt))
	assert.Len(t, evs.list(), 1)

	// The same token twice in one batch is one revocation, two answers.
	dup, dupKey := issue(t, m)
	b = body(t, report{Token: dup.Reveal(), Type: "t", URL: "u1"}, report{Token: dup.Reveal(), Type: "t", URL: "u2"})
	got = decode(t, postGitHub(t, h, gh, b))
	assert.Equal(t, []string{"true_positive", "true_positive"}, []string{got[0].Label, got[1].Label})
	stored, err = m.Get(ctx, dupKey.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(2), stored.Revision, "revoked once")
	assert.Len(t, evs.list(), 2)
}

// TestBadBodies: an oversized body or batch gets 413, a malformed one 400,
// a GET 405; none of them changes anything.
func TestBadBodies(t *testing.T) {
	ctx := context.Background()
	m, _ := newMemManager(t)
	gh := newSigner(t, "key-1")
	ks := newKeyServer(t, gh)
	h := newGitHub(t, m, ks, leaks.WithMaxBatch(3), leaks.WithMaxBodySize(4096))
	secret, _ := issue(t, m)
	one := report{Token: secret.Reveal(), Type: "t", URL: leakURL}

	big := body(t, report{Token: secret.Reveal(), Type: strings.Repeat("x", 5000)})
	assert.Equal(t, http.StatusRequestEntityTooLarge, postGitHub(t, h, gh, big).Code)
	assert.Equal(t, http.StatusRequestEntityTooLarge, postGitHub(t, h, gh, body(t, one, one, one, one)).Code)
	for _, malformed := range []string{``, `{}`, `[`, `[{"token": 1}]`, `[{}] [{}]`, `[{"token":"` + secret.Reveal() + `"}`, `null`, `"x"`} {
		rec := postGitHub(t, h, gh, []byte(malformed))
		assert.Equal(t, http.StatusBadRequest, rec.Code, "%q", malformed)
		assert.NotContains(t, rec.Body.String(), secret.Reveal())
	}
	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/leaks", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, get.Code)
	assert.Equal(t, http.MethodPost, get.Header().Get("Allow"))
	_, err := m.Verify(ctx, secret.Reveal())
	require.NoError(t, err, "a refused report changed the key")
	assert.Equal(t, "true_positive", decode(t, postGitHub(t, h, gh, body(t, one, one, one)))[0].Label)
}
