package apikey

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"unsafe"
)

// Secret holds a whole API key. It redacts itself everywhere it could be
// printed or serialised by accident: fmt (every verb, including %v, %s,
// %q, %x and %#v), slog, encoding/json and encoding.TextMarshaler all show
// only the prefix and key ID, as in acme_live_AbCdEf123456_…. The key is
// revealed only through Reveal, on purpose.
//
// This holds wherever the Secret is: in a pointer, a slice, a map, an
// error, or a field of a caller's struct, exported or not, printed with
// fmt, log, slog or a template. encoding/xml writes the redacted form too;
// encoding/gob refuses a Secret, and reading one back from JSON or text
// fails.
//
// The zero Secret is empty. A Secret is an immutable value, safe for
// concurrent use. Two Secrets holding the same key need not be ==: compare
// keys with crypto/subtle.ConstantTimeCompare on Reveal.
type Secret struct {
	raw sealed
}

// sealed holds a key as a pointer to its first byte and its length, not as
// a string. fmt prints a struct by reflection, without calling its
// methods, whenever it cannot call them: for a field of a caller's struct
// that is unexported, for %p, and on its bad-verb path (%w outside
// fmt.Errorf, or under %w an argument that is not an error), where it sets
// erroring and skips Format. Reflection prints a string field's contents,
// but an unsafe.Pointer only as an address, so there a Secret shows as
// {0xc000123456 92}: an address and the key's length. Every encoder skips
// the unexported field, and text/template and html/template print through
// fmt.
//
// The pointer keeps the string's memory alive, as the string did, and a
// string's bytes never change, so a sealed is as immutable as the string
// it came from. Sealing and revealing copy nothing, so Parse and Verify
// still do not allocate. The empty string seals to the zero sealed. ==
// compares where the bytes are, not what they are.
type sealed struct {
	p unsafe.Pointer
	n int
}

func seal(s string) sealed {
	if s == "" {
		return sealed{}
	}
	return sealed{p: unsafe.Pointer(unsafe.StringData(s)), n: len(s)}
}

func (k sealed) reveal() string { return unsafe.String((*byte)(k.p), k.n) }

// NewSecret wraps a key held as a string, for example one read from a
// file or a secret manager, so that it cannot be printed by accident.
func NewSecret(key string) Secret { return Secret{raw: seal(strings.TrimSpace(key))} }

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
func (s Secret) Reveal() string { return s.raw.reveal() }

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return s.raw.n == 0 }

// String returns the redacted form: prefix and key ID followed by "_…"
// for a well-formed key, "[REDACTED]" for anything else, "" when empty.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	if t, err := Parse(s.Reveal()); err == nil {
		return t.Prefix + "_" + t.ID + "_…"
	}
	return "[REDACTED]"
}

// GoString implements fmt.GoStringer so %#v is redacted too.
func (s Secret) GoString() string { return "apikey.Secret(" + s.String() + ")" }

// Format implements fmt.Formatter: every verb prints the redacted form
// (%#v the GoString form), so neither %x nor %q can expose the key. Flags,
// width and precision apply to it as they do to %s.
func (s Secret) Format(f fmt.State, verb rune) { formatRedacted(f, verb, "apikey.Secret", s.String()) }

// formatRedacted is Secret's and Token's Format: the redacted form, or
// for %#v the GoString form "typeName(redacted)", printed as %s would
// print it with f's flags, width and precision.
func formatRedacted(f fmt.State, verb rune, typeName, redacted string) {
	if verb == 'v' && f.Flag('#') {
		redacted = typeName + "(" + redacted + ")"
	}
	fmt.Fprintf(f, fmt.FormatString(f, 's'), redacted)
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
