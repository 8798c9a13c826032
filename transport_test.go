package apikey_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestTransport(t *testing.T) {
	tok, err := apikey.Generate("acme_test")
	require.NoError(t, err)
	secret := tok.Secret()
	key := secret.Reveal()
	_, _, secretPart := parts(t, key)

	var sent *http.Request
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = r
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	tests := []struct {
		name   string
		url    string
		header string
		want   string // header value sent, or "" when refused
		wantIn string // header name
	}{
		{"https", "https://api.example.com/v1", "", "Bearer " + key, "Authorization"},
		{"https, custom header", "https://api.example.com/v1", "X-API-Key", key, "X-Api-Key"},
		{"http localhost", "http://localhost:8080/v1", "", "Bearer " + key, "Authorization"},
		{"http LOCALHOST", "http://LOCALHOST/v1", "", "Bearer " + key, "Authorization"},
		{"http 127.0.0.1", "http://127.0.0.1:8080/v1", "", "Bearer " + key, "Authorization"},
		{"http 127.9.9.9", "http://127.9.9.9/v1", "", "Bearer " + key, "Authorization"},
		{"http ::1", "http://[::1]:8080/v1", "", "Bearer " + key, "Authorization"},
		{"http remote host", "http://api.example.com/v1", "", "", ""},
		{"http private address", "http://10.0.0.1/v1", "", "", ""},
		{"http localhost lookalike", "http://localhost.example.com/v1", "", "", ""},
		{"http sub.localhost", "http://evil.localhost/v1", "", "", ""},
		{"other scheme", "ftp://api.example.com/v1", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent = nil
			tr := &apikey.Transport{Secret: secret, Base: base, Header: tt.header}
			body := &closeRecorder{Reader: strings.NewReader("payload")}
			req, err := http.NewRequest(http.MethodPost, tt.url, body)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			if tt.want == "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, apikey.ErrInsecureTransport)
				assert.NotContains(t, err.Error(), secretPart)
				assert.Nil(t, sent, "refused request was sent")
				assert.True(t, body.closed, "RoundTrip must close the body on error")
				return
			}
			require.NoError(t, err)
			resp.Body.Close()
			require.NotNil(t, sent)
			assert.Equal(t, []string{tt.want}, sent.Header[tt.wantIn])
			assert.NotSame(t, req, sent)
			assert.Empty(t, req.Header, "the caller's request was modified")
		})
	}
}

func TestTransportZeroSecret(t *testing.T) {
	tr := &apikey.Transport{Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Fatal("sent without a key")
		return nil, nil
	})}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com", nil)
	_, err := tr.RoundTrip(req)
	assert.EqualError(t, err, "apikey: Transport has no Secret")
}

// An end-to-end round trip through a real TLS server and the middleware,
// and a redirect to another host, which must not receive the key.
func TestTransportEndToEnd(t *testing.T) {
	f := newMWFixture(t)
	h, _ := f.handler()
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("auth=" + r.Header.Get("Authorization")))
	}))
	defer other.Close()
	mux := http.NewServeMux()
	mux.Handle("/api", h)
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/x", http.StatusFound)
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	base := srv.Client().Transport.(*http.Transport).Clone()
	base.TLSClientConfig.InsecureSkipVerify = true // two test servers, two certificates
	client := &http.Client{Transport: &apikey.Transport{Secret: apikey.NewSecret(f.valid), Base: base}}
	resp, err := client.Get(srv.URL + "/api")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello team-42", string(b))

	resp, err = client.Get(srv.URL + "/away")
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "auth=", string(b), "the key followed a redirect to another host")

	_, err = (&http.Client{Transport: &apikey.Transport{Secret: apikey.NewSecret(f.valid)}}).Get("http://api.example.com/")
	assert.True(t, errors.Is(err, apikey.ErrInsecureTransport))
	assert.NotContains(t, err.Error(), f.valid)
}

func TestTransportRequestWithoutHeader(t *testing.T) {
	var got string
	tr := &apikey.Transport{Secret: apikey.NewSecret("k"), Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Header.Get("Authorization")
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com", nil)
	req.Header = nil
	_, err := tr.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, "Bearer k", got)
	assert.Nil(t, req.Header)
}
