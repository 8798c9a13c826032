package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
)

// maxBodyBytes bounds a request body. The largest valid one, a create with
// 64 scopes and 256 allowed prefixes, is well under it.
const maxBodyBytes = 64 << 10

// decodeBody reads r's body, which must be one JSON object with only the
// members of dst, into dst. An empty body is an empty object, for the
// requests whose members are all optional (rotate, revoke). The
// Content-Type must be application/json, whatever the body: a browser
// cannot send that cross-origin without asking first.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &problemError{status: http.StatusUnsupportedMediaType, detail: "the body must be JSON, sent with Content-Type: application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	if err == io.EOF {
		return nil
	}
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return badRequest("", "the body must hold one JSON object and nothing after it")
		}
		return nil
	}
	return jsonError(err)
}

// jsonError turns a decoding error into a refusal naming the member.
func jsonError(err error) error {
	var (
		tooBig  *http.MaxBytesError
		typeErr *json.UnmarshalTypeError
		syntax  *json.SyntaxError
	)
	switch {
	case errors.As(err, &tooBig):
		return &problemError{status: http.StatusRequestEntityTooLarge, detail: fmt.Sprintf("the body is larger than %d bytes", maxBodyBytes)}
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if i := strings.IndexByte(field, '.'); i >= 0 {
			field = field[:i]
		}
		if field == "" {
			return badRequest("", "the body must be a JSON object")
		}
		return badRequest(field, fmt.Sprintf("%s: wrong type (JSON %s)", field, typeErr.Value))
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the body is not valid JSON")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field, _ := strconv.Unquote(name)
		return badRequest(field, fmt.Sprintf("unknown member %s", name))
	}
	return badRequest("", "the body is not a valid request")
}

// parseName checks a key's name: 1 to apikey.MaxNameLen bytes of UTF-8
// once leading and trailing spaces are dropped, without control or bidi
// formatting characters.
func parseName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", badRequest("name", "name: give the key a name")
	case len(s) > apikey.MaxNameLen:
		return "", badRequest("name", fmt.Sprintf("name: %d bytes, at most %d", len(s), apikey.MaxNameLen))
	case !utf8.ValidString(s):
		return "", badRequest("name", "name: not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return "", badRequest("name", fmt.Sprintf("name: holds the control or formatting character %U", r))
		}
	}
	return s, nil
}

// checkScopes checks that scopes are valid, distinct, and within grantable.
func checkScopes(scopes, grantable []string) error {
	if len(scopes) > apikey.MaxScopes {
		return badRequest("scopes", fmt.Sprintf("scopes: %d, at most %d", len(scopes), apikey.MaxScopes))
	}
	if err := apikey.ValidateScopes(scopes); err != nil {
		return badRequest("scopes", "scopes: "+strings.TrimPrefix(err.Error(), "apikey: "))
	}
	for _, s := range scopes {
		if !apikey.ScopeWithin(grantable, s) {
			return badRequest("scopes", fmt.Sprintf("scopes: %s is not within the scopes you may grant", strconv.Quote(s)))
		}
	}
	return nil
}

// parseAllowedIPs parses an allowlist: CIDR prefixes ("203.0.113.0/24",
// "2001:db8::/32"), or single addresses, which mean that address alone.
// An IPv4-mapped IPv6 prefix must cover only IPv4 addresses (/96 or more).
func parseAllowedIPs(list []string) ([]netip.Prefix, error) {
	if len(list) > apikey.MaxAllowedIPs {
		return nil, badRequest("allowed_ips", fmt.Sprintf("allowed_ips: %d entries, at most %d", len(list), apikey.MaxAllowedIPs))
	}
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := parseAllowedIP(strings.TrimSpace(s))
		if err != nil {
			return nil, badRequest("allowed_ips", fmt.Sprintf("allowed_ips[%d]: %.64q is not a CIDR prefix such as 203.0.113.0/24 or an IP address", i, s))
		}
		if p.Addr().Is4In6() && p.Bits() < 96 {
			return nil, badRequest("allowed_ips", fmt.Sprintf("allowed_ips[%d]: %s mixes IPv4-mapped and other IPv6 addresses; give the IPv4 prefix", i, p))
		}
		out = append(out, p)
	}
	return out, nil
}

func parseAllowedIP(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("an address with a zone")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// maxDuration bounds parseDuration: 100 years, far beyond any policy, and
// far from overflowing a time.Time.
const maxDuration = 100 * 365 * 24 * time.Hour

// parseDuration reads a lifetime or grace period: a whole number of days
// ("30d"), or a Go duration ("720h", "90m", "1h30m"). It refuses negative
// durations and durations over 100 years.
func parseDuration(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil || days == "" || days[0] == '+' {
			return 0, fmt.Errorf("%.32q is not a number of days such as 30d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%.32q is not a duration such as 30d or 12h", s)
		}
	}
	switch {
	case d < 0:
		return 0, fmt.Errorf("%.32q is negative", s)
	case d > maxDuration:
		return 0, fmt.Errorf("%.32q is longer than 100 years", s)
	}
	return d, nil
}

// formatDuration writes d as parseDuration reads it, in the largest whole
// unit of days, hours or minutes: "30d", "36h", "90m", "0".
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
