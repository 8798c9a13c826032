package apikey

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"unsafe"
)

// Token format widths. Other implementations (scanners, other languages)
// depend on these, so they never change.
const (
	// IDLen is the length of a key ID (kid) in base62 characters (~71 bits).
	IDLen = 12
	// SecretLen is the length of the secret part in base62 characters (~256 bits).
	SecretLen = 43
	// ChecksumLen is the length of the base62 CRC-32 checksum.
	ChecksumLen = 6
	// MaxTokenLen is the longest token Parse accepts, in bytes.
	MaxTokenLen = 255
	// MaxPrefixLen is the longest prefix that still fits in MaxTokenLen.
	MaxPrefixLen = MaxTokenLen - fixedTail

	fixedTail = 1 + IDLen + 1 + SecretLen + ChecksumLen // "_" kid "_" secret crc
)

// base62 is the token alphabet, in this order; the checksum is written most
// significant digit first in it.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Token is a parsed API key. Its Prefix and ID are public; the secret part
// is reachable only through Secret, which redacts itself when printed.
// Token itself redacts as Secret does, wherever it is: fmt (every verb),
// log, slog, templates, encoding/json, encoding/xml and
// encoding.TextMarshaler show only the prefix and key ID, and reading a
// Token back from JSON or text fails: Parse the key instead. encoding/gob
// writes only Prefix and ID, and reads back a Token without its key.
//
// The zero Token is empty and prints as "". A Token is an immutable value,
// safe for concurrent use. Two Tokens holding the same key need not be ==:
// compare their Prefix and ID, or their keys with
// crypto/subtle.ConstantTimeCompare on Secret().Reveal().
type Token struct {
	Prefix string // e.g. "acme_live"
	ID     string // kid: 12 base62 characters
	raw    sealed // the whole token (see sealed for why not a string)
}

// Secret returns the whole token as a Secret.
func (t Token) Secret() Secret { return Secret{raw: t.raw} }

// String returns the token with its secret part redacted, as
// Secret.String does.
func (t Token) String() string { return t.Secret().String() }

// GoString implements fmt.GoStringer so %#v is redacted too.
func (t Token) GoString() string { return "apikey.Token(" + t.String() + ")" }

// Format implements fmt.Formatter: every verb prints the redacted form
// (%#v the GoString form), as Secret.Format does.
func (t Token) Format(f fmt.State, verb rune) { formatRedacted(f, verb, "apikey.Token", t.String()) }

// LogValue implements slog.LogValuer: the token logs redacted.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalText implements encoding.TextMarshaler with the redacted form.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// MarshalJSON implements json.Marshaler with the redacted form.
func (t Token) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// errTokenUnmarshal stops a redacted form from being read back as if it
// were a key.
var errTokenUnmarshal = errors.New("apikey: a Token cannot be unmarshaled; use Parse")

// UnmarshalText refuses: a Token's text form is redacted, and reading one
// back would silently produce a token that cannot verify.
func (t *Token) UnmarshalText([]byte) error { return errTokenUnmarshal }

// secretPart returns the 43 secret characters, without the checksum.
func (t Token) secretPart() string {
	raw := t.raw.reveal()
	n := len(raw)
	return raw[n-ChecksumLen-SecretLen : n-ChecksumLen]
}

// ValidatePrefix reports whether p may be used as a key prefix: it must
// match [a-z][a-z0-9]*(_[a-z0-9]+)* and be at most MaxPrefixLen bytes.
// The error wraps ErrInvalidPrefix.
func ValidatePrefix(p string) error {
	if !validPrefix(p) {
		return prefixError(p)
	}
	return nil
}

func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > MaxPrefixLen || !isLower(p[0]) {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case isLower(c) || isDigit(c):
		case c == '_':
			// an underscore must be followed by at least one [a-z0-9]
			if i+1 == len(p) || p[i+1] == '_' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// base62Value maps a byte to its base62 digit value, or -1.
var base62Value = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = int8(i)
	}
	return t
}()

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if base62Value[s[i]] < 0 {
			return false
		}
	}
	return true
}

// Generate returns a new random token with the given prefix. It reads
// crypto/rand and uses rejection sampling, so every base62 character is
// equally likely.
func Generate(prefix string) (Token, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return Token{}, err
	}
	buf := make([]byte, len(prefix)+fixedTail)
	n := copy(buf, prefix)
	buf[n] = '_'
	n++
	randomBase62(buf[n : n+IDLen])
	n += IDLen
	buf[n] = '_'
	n++
	randomBase62(buf[n : n+SecretLen])
	n += SecretLen
	putChecksum(buf[n:], crc32.ChecksumIEEE(buf[:n]))
	raw := string(buf)
	return Token{Prefix: raw[:len(prefix)], ID: raw[len(prefix)+1 : len(prefix)+1+IDLen], raw: seal(raw)}, nil
}

// randomBase62 fills dst with uniformly random base62 characters: each
// random byte keeps its low 6 bits, and values 62 and 63 are rejected.
func randomBase62(dst []byte) {
	var pool [64]byte
	filled := 0
	for filled < len(dst) {
		rand.Read(pool[:]) // never fails since Go 1.24
		for _, b := range pool {
			if v := b & 63; v < 62 {
				dst[filled] = base62[v]
				filled++
				if filled == len(dst) {
					break
				}
			}
		}
	}
	clear(pool[:])
}

// putChecksum writes c as ChecksumLen base62 digits, most significant
// first, zero-padded.
func putChecksum(dst []byte, c uint32) {
	v := uint64(c)
	for i := ChecksumLen - 1; i >= 0; i-- {
		dst[i] = base62[v%62]
		v /= 62
	}
}

// decodeChecksum is the inverse of putChecksum; ok is false if s is not
// base62 or encodes a value above 2^32-1.
func decodeChecksum(s string) (c uint32, ok bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		d := base62Value[s[i]]
		if d < 0 {
			return 0, false
		}
		v = v*62 + uint64(d)
	}
	if v > 0xFFFFFFFF {
		return 0, false
	}
	return uint32(v), true
}

// Parse checks the shape and checksum of token without any I/O and returns
// its parts. It reads fixed widths from the right, so a prefix may contain
// underscores. Tokens longer than MaxTokenLen, of the wrong shape or
// charset, fail with ErrMalformedKey; a wrong checksum fails with
// ErrChecksum. Both match ErrInvalidKey. Parse does not allocate.
func Parse(token string) (Token, error) {
	n := len(token)
	if n > MaxTokenLen || n < 1+fixedTail {
		return Token{}, ErrMalformedKey
	}
	crcAt := n - ChecksumLen
	secretAt := crcAt - SecretLen
	idAt := secretAt - 1 - IDLen
	prefixEnd := idAt - 1
	if token[secretAt-1] != '_' || token[prefixEnd] != '_' ||
		!validPrefix(token[:prefixEnd]) ||
		!isBase62(token[idAt:secretAt-1]) || !isBase62(token[secretAt:crcAt]) {
		return Token{}, ErrMalformedKey
	}
	want, ok := decodeChecksum(token[crcAt:])
	if !ok {
		return Token{}, ErrMalformedKey
	}
	if crc32.ChecksumIEEE(stringBytes(token[:crcAt])) != want {
		return Token{}, ErrChecksum
	}
	return Token{Prefix: token[:prefixEnd], ID: token[idAt : secretAt-1], raw: seal(token)}, nil
}

// stringBytes views s as a byte slice without copying, for Parse's
// checksum: the slice must be read only and not retained.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func prefixError(p string) error {
	if len(p) > 64 {
		p = p[:64] + "…"
	}
	return fmt.Errorf("%w %q: want [a-z][a-z0-9]*(_[a-z0-9]+)*, at most %d bytes", ErrInvalidPrefix, p, MaxPrefixLen)
}
