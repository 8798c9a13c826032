package apikey

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret holds a whole API key. It redacts itself everywhere it could be
// printed or serialised by accident: fmt (every verb, including %v, %s,
// %q, %x and %#v), slog, encoding/json and encoding.TextMarshaler all show
// only the prefix and key ID, as in acme_live_AbCdEf123456_…. The key is
// revealed only through Reveal, on purpose.
//
// The zero Secret is empty. A Secret is an immutable value, safe for
// concurrent use.
type Secret struct {
	raw string
}

// NewSecret wraps a key held as a string, for example one read from a
// file or a secret manager, so that it cannot be printed by accident.
func NewSecret(key string) Secret { return Secret{raw: strings.TrimSpace(key)} }

// SecretFromEnv returns the key held in the environment variable name. It
// fails if the variable is unset or empty; the error names the variable,
// never the value.
func SecretFromEnv(name string) (Secret, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return Secret{}, fmt.Errorf("apikey: environment variable %s is not set", name)
	}
	return NewSecret(v), nil
}

// Reveal returns the key itself. Call it only to hand the key to its owner
// once, or to put it in an outgoing request.
func (s Secret) Reveal() string { return s.raw }

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return s.raw == "" }

// String returns the redacted form: prefix and key ID followed by "_…"
// for a well-formed key, "[REDACTED]" for anything else, "" when empty.
func (s Secret) String() string {
	if s.raw == "" {
		return ""
	}
	if t, err := Parse(s.raw); err == nil {
		return t.Prefix + "_" + t.ID + "_…"
	}
	return "[REDACTED]"
}

// GoString implements fmt.GoStringer so %#v is redacted too.
func (s Secret) GoString() string { return "apikey.Secret(" + s.String() + ")" }

// Format implements fmt.Formatter: every verb prints the redacted form, so
// neither %x nor %q can expose the key.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler with the redacted form.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements json.Marshaler with the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// errSecretUnmarshal stops a redacted form from being read back as if it
// were a key.
var errSecretUnmarshal = errors.New("apikey: a Secret cannot be unmarshaled; use NewSecret")

// UnmarshalText refuses: a Secret's text form is redacted, and reading
// one back would silently produce a useless key.
func (s *Secret) UnmarshalText([]byte) error { return errSecretUnmarshal }
