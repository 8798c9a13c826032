package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// SecretPrefix starts the text form of a signing secret, as Standard
// Webhooks writes it: "whsec_" and the base64 of the key.
const SecretPrefix = "whsec_"

// Key sizes a Secret accepts, in bytes: Standard Webhooks asks for 24 to
// 64 random bytes.
const (
	MinSecretLen = 24
	MaxSecretLen = 64
)

// ErrInvalidSecret reports text that is not a signing secret.
var ErrInvalidSecret = errors.New("webhook: invalid signing secret")

// Secret is the key a Sender signs with, shared with the receiver. It
// redacts itself: fmt (every verb), slog, JSON and text print
// "whsec_[REDACTED]"; only Reveal gives its text form. The zero Secret
// holds no key. A Secret is immutable and safe for concurrent use.
type Secret struct {
	// A pointer: printed by reflection (fmt does so for an unexported
	// field of a caller's struct), it shows an address, not the key.
	key *secretKey
}

type secretKey struct{ b []byte }

// NewSecret returns a fresh random secret of 32 bytes. Give its Reveal to
// the receiver once, as you would an API key.
func NewSecret() (Secret, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Secret{}, err
	}
	return Secret{&secretKey{b}}, nil
}

// ParseSecret reads a secret in its text form, "whsec_" followed by the
// standard base64 of MinSecretLen to MaxSecretLen bytes. Its errors never
// repeat s.
func ParseSecret(s string) (Secret, error) {
	enc, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: want %q and base64", ErrInvalidSecret, SecretPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: not standard base64 after %q", ErrInvalidSecret, SecretPrefix)
	}
	if len(b) < MinSecretLen || len(b) > MaxSecretLen {
		return Secret{}, fmt.Errorf("%w: %d bytes, want %d to %d", ErrInvalidSecret, len(b), MinSecretLen, MaxSecretLen)
	}
	return Secret{&secretKey{b}}, nil
}

// Reveal returns the secret's text form, "whsec_…", to hand to the
// receiver or store in a secret manager; "" for the zero Secret.
func (s Secret) Reveal() string {
	if s.IsZero() {
		return ""
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(s.key.b)
}

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return s.key == nil || len(s.key.b) == 0 }

// bytes returns the key, for signing.
func (s Secret) bytes() []byte { return s.key.b }

// String returns "whsec_[REDACTED]", or "" for the zero Secret.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return SecretPrefix + "[REDACTED]"
}

// GoString implements fmt.GoStringer with the redacted form.
func (s Secret) GoString() string { return "webhook.Secret(" + s.String() + ")" }

// Format implements fmt.Formatter: every verb prints the redacted form
// (%#v the GoString form), so neither %x nor %q can expose the key.
func (s Secret) Format(f fmt.State, verb rune) {
	text := s.String()
	if verb == 'v' && f.Flag('#') {
		text = s.GoString()
	}
	fmt.Fprintf(f, fmt.FormatString(f, 's'), text)
}

// LogValue implements slog.LogValuer with the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler with the redacted form.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements json.Marshaler with the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalText refuses: a Secret's text form is redacted. Use
// ParseSecret.
func (s *Secret) UnmarshalText([]byte) error {
	return fmt.Errorf("%w: a Secret cannot be unmarshaled; use ParseSecret", ErrInvalidSecret)
}
