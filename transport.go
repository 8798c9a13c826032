package apikey

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ErrInsecureTransport reports a request that Transport refused to send
// because it would carry the key in clear text over the network.
var ErrInsecureTransport = errors.New("apikey: refusing to send an API key over plain http")

// Transport is an http.RoundTripper that adds an API key to each request,
// so client code holds the key as a Secret (for example from
// SecretFromEnv("ACME_API_KEY")) instead of pasting it into headers:
//
//	secret, err := apikey.SecretFromEnv("ACME_API_KEY")
//	...
//	client := &http.Client{Transport: &apikey.Transport{Secret: secret}}
//
// It sends the key only over https, or over plain http to a loopback host
// (localhost, 127.0.0.0/8, ::1) for local development; any other plain http
// request fails with ErrInsecureTransport without being sent. On a
// redirect that http.Client follows to another host the key is not added,
// as http.Client itself drops Authorization on such redirects. Errors
// never contain the key.
//
// A Transport is safe for concurrent use if Base is; its fields must not
// change while it is in use.
type Transport struct {
	// Secret is the key to send. A zero Secret makes every request fail.
	Secret Secret
	// Base carries the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Header is the header to carry the key in, as its whole value, such
	// as "X-API-Key"; "" (the default) sends "Authorization: Bearer <key>".
	Header string
}

// RoundTrip implements http.RoundTripper. It does not modify req: it
// sends a clone carrying the key.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.check(req); err != nil {
		if req.Body != nil {
			req.Body.Close() // RoundTrip must close the body, even on error
		}
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if redirectedElsewhere(req) {
		return base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	if t.Header == "" {
		r.Header.Set("Authorization", "Bearer "+t.Secret.Reveal())
	} else {
		r.Header.Set(t.Header, t.Secret.Reveal())
	}
	return base.RoundTrip(r)
}

func (t *Transport) check(req *http.Request) error {
	if t.Secret.IsZero() {
		return errors.New("apikey: Transport has no Secret")
	}
	if req.URL == nil {
		return errors.New("apikey: Transport: request has no URL")
	}
	switch strings.ToLower(req.URL.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(req.URL.Hostname()) {
			return nil
		}
		return fmt.Errorf("%w to non-loopback host %q; use https", ErrInsecureTransport, req.URL.Hostname())
	}
	return fmt.Errorf("%w: scheme %q", ErrInsecureTransport, req.URL.Scheme)
}

// isLoopbackHost reports whether host names this machine without any
// name resolution that an attacker could influence.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// redirectedElsewhere reports whether req is a redirect that http.Client
// follows to a host other than the one the first request went to.
func redirectedElsewhere(req *http.Request) bool {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	return first != req && !strings.EqualFold(first.URL.Host, req.URL.Host)
}
