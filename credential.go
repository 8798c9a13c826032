package apikey

import (
	"net/http"
	"net/textproto"
	"strings"
)

// credStatus says what credential found in a request.
type credStatus uint8

const (
	credOK credStatus = iota
	credNone
	credTwo
	credMalformed
)

// credential finds the one credential in r. Header values lose leading
// and trailing spaces and tabs first, as net/textproto trims them on
// HTTP/1 and nothing does on HTTP/2, so that both protocols read a
// request alike.
func (mw *middleware) credential(r *http.Request) (string, credStatus) {
	var token string
	n := 0
	if vs := r.Header["Authorization"]; len(vs) > 0 {
		if len(vs) > 1 {
			return "", credTwo
		}
		t, status := parseBearer(textproto.TrimString(vs[0]))
		switch status {
		case credMalformed:
			return "", credMalformed
		case credOK:
			token = t
			n++
		}
	}
	if mw.header != "" {
		if vs := r.Header[mw.header]; len(vs) > 0 {
			if len(vs) > 1 {
				return "", credTwo
			}
			if v := textproto.TrimString(vs[0]); v != "" {
				token = v
				n++
			}
		}
	}
	if mw.cookie != "" && len(r.Header["Cookie"]) > 0 {
		if cs := r.CookiesNamed(mw.cookie); len(cs) > 0 {
			if len(cs) > 1 {
				return "", credTwo
			}
			if v := cs[0].Value; v != "" {
				token = v
				n++
			}
		}
	}
	if mw.query != "" && r.URL.RawQuery != "" {
		if vs := r.URL.Query()[mw.query]; len(vs) > 0 {
			if len(vs) > 1 {
				return "", credTwo
			}
			if vs[0] != "" {
				token = vs[0]
				n++
			}
		}
	}
	switch n {
	case 0:
		return "", credNone
	case 1:
		return token, credOK
	}
	return "", credTwo
}

// parseBearer reads an Authorization value. It returns credNone for a
// value that is not Bearer credentials (empty, or another scheme),
// credMalformed for the Bearer scheme followed by anything but exactly one
// space and one token68, and the token otherwise.
func parseBearer(v string) (string, credStatus) {
	i := 0
	for i < len(v) && isTchar(v[i]) {
		i++
	}
	if !strings.EqualFold(v[:i], "Bearer") {
		return "", credNone
	}
	rest := v[i:]
	if len(rest) < 2 || rest[0] != ' ' || !isToken68(rest[1:]) {
		return "", credMalformed
	}
	return rest[1:], credOK
}

// isToken68 reports whether s matches RFC 7235's
// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		if charClass[s[i]]&classToken68 == 0 {
			return false
		}
	}
	return true
}

// isTchar reports whether c may appear in an HTTP token (RFC 9110).
func isTchar(c byte) bool { return charClass[c]&classTchar != 0 }

// charClass classifies bytes for the header grammars, as a table: a
// per-byte chain of comparisons costs several times more on a 72-byte key.
var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if alnum || strings.IndexByte("-._~+/", byte(c)) >= 0 {
			t[c] |= classToken68
		}
		if alnum || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0 {
			t[c] |= classTchar
		}
	}
	return t
}()

const (
	classToken68 = 1 << iota
	classTchar
)

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return s != ""
}

// isPreflight reports whether r is a CORS preflight request: OPTIONS with
// the Origin and Access-Control-Request-Method headers (the Fetch
// standard).
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && len(r.Header["Origin"]) > 0 &&
		len(r.Header["Access-Control-Request-Method"]) > 0
}
