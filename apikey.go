// Package apikey issues, stores and verifies API keys for Go services.
//
// A key is a bearer token of the form prefix_kid_secretcrc, for example
//
//	acme_live_4fKq9ZmT2xPa_Yb3...Q9w2kXz1
//
// The prefix names the vendor and environment and lets secret scanners
// recognise a leaked key; kid is the key's public ID (12 base62 characters),
// used for lookup, display and logs; secret is 43 base62 characters (256
// bits) from crypto/rand; crc is the CRC-32 of everything before it, so a
// scanner or a server can reject a mistyped or random string offline.
//
// Stores hold only a keyed digest of the secret (HMAC-SHA256 with a server
// pepper), never the key. A Manager issues, verifies, rotates and revokes
// keys over any Store; its Verify is usable from HTTP middleware, gRPC
// interceptors or queue consumers alike.
package apikey

import (
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"
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
// Token itself also prints redacted.
type Token struct {
	Prefix string // e.g. "acme_live"
	ID     string // kid: 12 base62 characters
	raw    string // the whole token
}

// Secret returns the whole token as a Secret.
func (t Token) Secret() Secret { return Secret{raw: t.raw} }

// String returns the token with its secret part redacted.
func (t Token) String() string { return t.Secret().String() }

// GoString returns the redacted form too, so %#v does not leak the secret.
func (t Token) GoString() string { return t.Secret().String() }

// LogValue implements slog.LogValuer: the token logs redacted.
func (t Token) LogValue() slog.Value { return t.Secret().LogValue() }

// secretPart returns the 43 secret characters, without the checksum.
func (t Token) secretPart() string {
	n := len(t.raw)
	return t.raw[n-ChecksumLen-SecretLen : n-ChecksumLen]
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
	return Token{Prefix: raw[:len(prefix)], ID: raw[len(prefix)+1 : len(prefix)+1+IDLen], raw: raw}, nil
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
	return Token{Prefix: token[:prefixEnd], ID: token[idAt : secretAt-1], raw: token}, nil
}

// Key is the stored record of an API key. It never holds the key itself,
// only its digest. The zero value of every optional field means "not set":
// a zero ExpiresAt never expires, a nil AllowedIPs allows every address, a
// zero RateLimit falls back to the middleware's WithDefaultLimit (none if
// it is not given).
type Key struct {
	ID     string // kid, the public key ID
	Prefix string // the token's prefix, e.g. "acme_live"

	Owner  string   // the user, team or service the key acts for
	Name   string   // human label, e.g. "CI deploy key"
	Scopes []string // granted scopes; see ValidateScope

	// Digest is the keyed digest of the secret and DigestVersion names how
	// it was computed ("hmac-sha256/<pepper version>" or "sha256").
	Digest        []byte
	DigestVersion string

	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never expires
	NotBefore  time.Time // zero: valid from creation
	RevokedAt  time.Time // zero: not revoked
	LastUsedAt time.Time // updated in batches, not on every request

	RateLimit  Limit          // zero: the middleware's WithDefaultLimit, if any
	Quota      Quota          // zero: no usage cap
	AllowedIPs []netip.Prefix // nil: any client address
	Metadata   map[string]string

	RotatedFrom string // ID of the key this one replaced
	ReplacedBy  string // ID of the key that replaced this one

	// Revision is maintained by the Store for optimistic concurrency:
	// Create sets it to 1 and each successful Update increments it. An
	// Update carrying a stale Revision fails with ErrConflict.
	Revision int64
}

// Clone returns a deep copy of k, preserving nil versus empty slices and
// maps. Stores use it so callers never share memory with stored records.
func (k *Key) Clone() *Key {
	if k == nil {
		return nil
	}
	c := *k
	c.Scopes = slices.Clone(k.Scopes)
	c.Digest = slices.Clone(k.Digest)
	c.AllowedIPs = slices.Clone(k.AllowedIPs)
	c.Metadata = maps.Clone(k.Metadata)
	return &c
}

// Status reports why k cannot be used at time now: ErrRevoked,
// ErrExpired or ErrNotYetValid, or nil if it is usable. It does not check
// the secret.
func (k *Key) Status(now time.Time) error {
	switch {
	case !k.RevokedAt.IsZero() && !now.Before(k.RevokedAt):
		return ErrRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return ErrExpired
	case !k.NotBefore.IsZero() && now.Before(k.NotBefore):
		return ErrNotYetValid
	}
	return nil
}

// AllowsIP reports whether addr may use k: true when AllowedIPs is empty
// or one of its prefixes contains addr. IPv4-mapped IPv6 addresses are
// compared as IPv4, and an IPv6 zone is ignored.
func (k *Key) AllowsIP(addr netip.Addr) bool {
	return len(k.AllowedIPs) == 0 || containsAddr(k.AllowedIPs, normalAddr(addr))
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
