package leaks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
)

// A report's body is a JSON array of these. GitHub sends type, token, url
// and source; GitLab type, token and url.
type reportedToken struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source,omitempty"`
}

// verdict is one element of the answer. It names the token by its
// SHA-256, so that neither the answer nor the platform's logs of it carry
// a token.
type verdict struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// Labels of a verdict.
const (
	truePositive  = "true_positive"
	falsePositive = "false_positive"
)

var errBatchTooLarge = errors.New("leaks: too many tokens in one report")

// parseReport reads a report's body: a JSON array of at most max objects.
// Anything else (another JSON value, trailing data, a token that is not a
// string) is an error; unknown fields are ignored, as the platforms add
// some.
func parseReport(body []byte, max int) ([]reportedToken, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("leaks: report is not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, errors.New("leaks: report is not a JSON array")
	}
	var out []reportedToken
	for dec.More() {
		if len(out) == max {
			return nil, fmt.Errorf("%w: more than %d", errBatchTooLarge, max)
		}
		var t reportedToken
		if err := dec.Decode(&t); err != nil {
			return nil, fmt.Errorf("leaks: report element %d: %w", len(out), err)
		}
		out = append(out, t)
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, fmt.Errorf("leaks: report: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("leaks: report: data after the array")
	}
	return out, nil
}

// tokenHash is the hex SHA-256 of a token, as the answer names it.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// leakReason is the revocation reason for a key found at url: "leaked: "
// and the URL, with invalid UTF-8, control and bidi formatting characters
// replaced by U+FFFD and cut to apikey.MaxRevokedReasonLen bytes, so that
// whatever a report says, the key is revoked.
func leakReason(url string) string {
	const prefix = "leaked: "
	if url == "" {
		url = "(no URL given)"
	}
	clean := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(url, string(utf8.RuneError)))
	s := prefix + clean
	if len(s) <= apikey.MaxRevokedReasonLen {
		return s
	}
	cut := apikey.MaxRevokedReasonLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// isLeakReason reports whether a revocation reason is one a leak report
// gave.
func isLeakReason(reason string) bool { return strings.HasPrefix(reason, "leaked: ") }
