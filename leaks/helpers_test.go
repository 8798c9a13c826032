package leaks_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/internal/testclock"
	"github.com/apikeykit/apikey/memstore"
)

var testPepper = []byte("leaks-test-pepper-0123456789abcdef")

// signer is a locally generated P-256 key, as GitHub signs with.
type signer struct {
	id   string
	priv *ecdsa.PrivateKey
}

func newSigner(t testing.TB, id string) *signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return &signer{id: id, priv: priv}
}

// sign returns the signature header value for body: base64 of a DER
// ECDSA signature over its SHA-256.
func (s *signer) sign(t testing.TB, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	der, err := ecdsa.SignASN1(rand.Reader, s.priv, sum[:])
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(der)
}

func (s *signer) pem(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.priv.PublicKey)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// keyServer serves a key document, as api.github.com does, counting
// fetches; it can be taken down.
type keyServer struct {
	*httptest.Server
	fetches atomic.Int64
	down    atomic.Bool
	mu      sync.Mutex
	doc     []byte
}

func newKeyServer(t testing.TB, signers ...*signer) *keyServer {
	t.Helper()
	ks := &keyServer{}
	ks.publish(t, signers...)
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		if ks.down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		ks.mu.Lock()
		defer ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(ks.doc)
	}))
	t.Cleanup(ks.Close)
	return ks
}

// publish replaces the document by one holding signers' keys.
func (ks *keyServer) publish(t testing.TB, signers ...*signer) {
	t.Helper()
	type key struct {
		ID      string `json:"key_identifier"`
		Key     string `json:"key"`
		Current bool   `json:"is_current"`
	}
	var doc struct {
		PublicKeys []key `json:"public_keys"`
	}
	for i, s := range signers {
		doc.PublicKeys = append(doc.PublicKeys, key{s.id, s.pem(t), i == len(signers)-1})
	}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	ks.mu.Lock()
	ks.doc = b
	ks.mu.Unlock()
}

func newClock() *testclock.Clock { return testclock.New(time.Now()) }

func newManager(t testing.TB, store apikey.Store, opts ...apikey.Option) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(store, append([]apikey.Option{apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", testPepper)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func newMemManager(t testing.TB) (*apikey.Manager, *memstore.Store) {
	s := memstore.New()
	return newManager(t, s), s
}

func issue(t testing.TB, m *apikey.Manager) (apikey.Secret, *apikey.Key) {
	t.Helper()
	secret, k, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "alice", Name: "ci"})
	require.NoError(t, err)
	return secret, k
}

// report is one element of a report's body.
type report struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source,omitempty"`
}

func body(t testing.TB, reports ...report) []byte {
	t.Helper()
	if reports == nil {
		reports = []report{}
	}
	b, err := json.Marshal(reports)
	require.NoError(t, err)
	return b
}

// post sends a GitHub report to h, signed by s unless sig is given.
func post(h http.Handler, idHeader, sigHeader, id, sig string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/leaks", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if id != "" {
		req.Header.Set(idHeader, id)
	}
	if sig != "" {
		req.Header.Set(sigHeader, sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func postGitHub(t testing.TB, h http.Handler, s *signer, body []byte) *httptest.ResponseRecorder {
	return post(h, "Github-Public-Key-Identifier", "Github-Public-Key-Signature", s.id, s.sign(t, body), body)
}

type answer struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

func decode(t testing.TB, rec *httptest.ResponseRecorder) []answer {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out []answer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	return out
}

func hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base16(sum[:])
}

func base16(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// events collects KeyEvents.
type events struct {
	mu  sync.Mutex
	got []apikey.KeyEvent
}

func (e *events) add(ev apikey.KeyEvent) {
	e.mu.Lock()
	e.got = append(e.got, ev)
	e.mu.Unlock()
}

func (e *events) list() []apikey.KeyEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]apikey.KeyEvent(nil), e.got...)
}
