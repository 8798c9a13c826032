package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/apikeykit/apikey"
)

// What the command writes to standard error (its errors, and the flag
// package's) may quote what the user typed, and a user may paste a key,
// or a DSN with a password, where it does not belong. redact hides both:
// run writes every byte of standard error through it. Standard output
// is left alone: it carries new keys, once, at create and rotate.
var (
	// keyPattern is a key's kid and the start of its secret, whatever its
	// checksum, even cut short: "_" kid "_" and 8 or more characters.
	keyPattern = regexp.MustCompile(`_[0-9A-Za-z]{12}_[0-9A-Za-z]{8,}`)
	// secretPattern is a run of letters and digits as long as a secret:
	// one pasted on its own, or a long random password.
	secretPattern = regexp.MustCompile(`[0-9A-Za-z]{43,}`)
	// userPasswordPattern is the password in a URL's user information.
	userPasswordPattern = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^/\s]*@`)
	// secretParamPattern is a parameter of a DSN or a URL query whose
	// name says it holds a secret: password, sslpassword, passfile's
	// neighbours, auth_token, client_secret and the like.
	secretParamPattern = regexp.MustCompile(`(?i)\b([a-z_]*(?:pass|pwd|secret|token)[a-z_]*=)('[^']*'|[^&\s'"]*)`)
)

// redact returns s with keys (from their secret on), secrets, and
// passwords in DSNs replaced.
func redact(s string) string {
	s = keyPattern.ReplaceAllStringFunc(s, func(m string) string { return m[:1+apikey.IDLen+1] + "…" })
	s = secretPattern.ReplaceAllString(s, "…")
	s = userPasswordPattern.ReplaceAllString(s, "${1}***@")
	return secretParamPattern.ReplaceAllString(s, "${1}***")
}

// looksLikeKey reports whether s holds what redact would hide as a key.
func looksLikeKey(s string) bool {
	return keyPattern.MatchString(s) || secretPattern.MatchString(s)
}

// redactingWriter writes to w what redact makes of each write. The
// command writes a message in one call, so a key is never split between
// two.
type redactingWriter struct{ w io.Writer }

func (r redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Arguments shaped like keys that are not valid ones are refused
// without being quoted.
var (
	errKeyChecksum = errors.New("the argument is shaped like an API key, but its checksum is wrong (mistyped?): give the key ID (the 12 characters after the prefix, see apikey list) or the whole key")
	errKeyShape    = errors.New("the argument looks like an API key, but is not one (cut short, or with characters around it?): give the key ID (the 12 characters after the prefix, see apikey list) or the whole key")
)

// keyID returns the key ID that arg names: the kid of a whole key, or
// arg itself if it is shaped like a key ID. It never quotes arg when arg
// may be a key.
func keyID(arg string) (string, error) {
	t, err := apikey.Parse(arg)
	switch {
	case err == nil:
		return t.ID, nil
	case errors.Is(err, apikey.ErrChecksum):
		return "", errKeyChecksum
	case looksLikeKey(arg):
		return "", errKeyShape
	case len(arg) == apikey.IDLen && base62(arg):
		return arg, nil
	}
	return "", fmt.Errorf("%q is neither a key ID (12 letters and digits, the part after the prefix; see apikey list) nor a key", arg)
}

func base62(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// refuseKeys fails if the value of flag name holds what looks like a
// key, prefix or not: it would be stored in clear, and shown by list and
// show. A long run of letters and digits alone (a hash, say) is allowed.
func refuseKeys(name string, values ...string) error {
	for _, v := range values {
		if keyPattern.MatchString(v) {
			return fmt.Errorf("--%s holds what looks like an API key: refusing to store it in clear, where list and show would print it", name)
		}
	}
	return nil
}
