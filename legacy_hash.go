package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Kinds of legacy hash, as LegacyHash.Kind names them.
const (
	LegacySHA256     = "sha256"      // SHA-256 of the whole key
	LegacyHMACSHA256 = "hmac-sha256" // HMAC-SHA256 of the whole key under the old system's secret
	LegacyBcrypt     = "bcrypt"      // bcrypt of the whole key
	LegacyArgon2id   = "argon2id"    // argon2id of the whole key
)

// Default caps on the cost of a slow legacy hash (LegacyConfig).
const (
	DefaultMaxBcryptCost   = 12        // about 250 ms per check on one core
	DefaultMaxArgon2Memory = 64 * 1024 // KiB: 64 MiB per check
	DefaultMaxArgon2Time   = 4         // passes
	DefaultMaxArgon2Lanes  = 8         // parallelism
)

// Errors of legacy hashes.
var (
	// ErrInvalidLegacyHash reports a legacy hash that does not parse; the
	// wrapping error says why, without quoting the hash.
	ErrInvalidLegacyHash = errors.New("apikey: invalid legacy hash")

	// ErrLegacyHashCost reports a bcrypt or argon2id hash costlier than
	// the configured caps (LegacyConfig.MaxBcryptCost and friends).
	ErrLegacyHashCost = errors.New("apikey: legacy hash costlier than allowed")
)

// LegacyHash is the verifier another system stored for one of its keys:
// one of
//
//	sha256:<64 hex digits, or base64 of 32 bytes>
//	hmac-sha256:<64 hex digits, or base64 of 32 bytes>
//	$2a$10$…  (or $2b$, $2y$: bcrypt's modular crypt format)
//	$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>  (PHC string format, unpadded base64)
//
// Keys verified by them can be imported (Manager.ImportLegacy) and then
// used as keys of this package (WithLegacy). A LegacyHash prints as its
// kind and cost only, never the hash itself, because an unsalted hash of
// a weak key is as good as the key to whoever can guess it: use Encoded
// for the stored form. The zero LegacyHash is invalid. It is an
// immutable value, safe for concurrent use.
type LegacyHash struct {
	kind   string
	digest []byte // sha256 and hmac-sha256: 32 bytes; argon2id: the hash
	salt   []byte // argon2id
	crypt  string // bcrypt: the whole modular crypt string
	cost   int    // bcrypt
	memory uint32 // argon2id, KiB
	time   uint32 // argon2id
	lanes  uint8  // argon2id
}

// ParseLegacyHash parses a legacy hash in one of the forms LegacyHash
// lists. Hex is accepted in either case; base64 padded or not, standard
// or URL-safe. Anything else is an error wrapping ErrInvalidLegacyHash
// that never quotes s.
func ParseLegacyHash(s string) (LegacyHash, error) {
	if len(s) > maxLegacyHashLen {
		return LegacyHash{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidLegacyHash, maxLegacyHashLen)
	}
	switch {
	case strings.HasPrefix(s, LegacySHA256+":"):
		return parseLegacyDigest(LegacySHA256, s[len(LegacySHA256)+1:])
	case strings.HasPrefix(s, LegacyHMACSHA256+":"):
		return parseLegacyDigest(LegacyHMACSHA256, s[len(LegacyHMACSHA256)+1:])
	case strings.HasPrefix(s, "$2"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	}
	return LegacyHash{}, fmt.Errorf("%w: unknown format: want sha256:…, hmac-sha256:…, bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$v=19$…)", ErrInvalidLegacyHash)
}

// maxLegacyHashLen bounds what ParseLegacyHash reads: the longest valid
// form (argon2id with 64-byte salt and hash and the largest parameters)
// is about 230 bytes.
const maxLegacyHashLen = 512

func parseLegacyDigest(kind, v string) (LegacyHash, error) {
	var b []byte
	var err error
	if len(v) == 2*sha256.Size {
		b, err = hex.DecodeString(v)
	} else {
		b, err = decodeLegacyBase64(v)
	}
	if err != nil || len(b) != sha256.Size {
		return LegacyHash{}, fmt.Errorf("%w: %s: want 64 hex digits or the base64 of 32 bytes", ErrInvalidLegacyHash, kind)
	}
	return LegacyHash{kind: kind, digest: b}, nil
}

// decodeLegacyBase64 accepts standard or URL-safe base64, padded or not.
func decodeLegacyBase64(v string) ([]byte, error) {
	enc := base64.RawStdEncoding
	if strings.ContainsAny(v, "-_") {
		enc = base64.RawURLEncoding
	}
	return enc.Strict().DecodeString(strings.TrimRight(v, "="))
}

// bcryptAlphabet is bcrypt's own base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// parseBcrypt accepts exactly $2a$, $2b$ or $2y$, a two-digit cost from 4
// to 31, and 53 characters of bcrypt's base64 (22 of salt, 31 of hash).
func parseBcrypt(s string) (LegacyHash, error) {
	bad := func(why string) (LegacyHash, error) {
		return LegacyHash{}, fmt.Errorf("%w: bcrypt: %s", ErrInvalidLegacyHash, why)
	}
	if len(s) != 60 || s[3] != '$' || s[6] != '$' {
		return bad("want $2a$NN$ followed by 53 characters")
	}
	if v := s[2]; v != 'a' && v != 'b' && v != 'y' {
		return bad("want version 2a, 2b or 2y")
	}
	cost, err := strconv.Atoi(s[4:6])
	if err != nil || !isDigit(s[4]) || cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return bad("cost must be two digits from 04 to 31")
	}
	for i := 7; i < len(s); i++ {
		if strings.IndexByte(bcryptAlphabet, s[i]) < 0 {
			return bad("salt and hash must be bcrypt's base64")
		}
	}
	if c, err := bcrypt.Cost([]byte(s)); err != nil || c != cost {
		return bad("not a bcrypt hash")
	}
	return LegacyHash{kind: LegacyBcrypt, crypt: s, cost: cost}, nil
}

// parseArgon2id accepts the PHC string format with version 19 and the
// parameters m, t and p in that order: unpadded standard base64 salt of 8
// to 64 bytes and hash of 16 to 64 bytes.
func parseArgon2id(s string) (LegacyHash, error) {
	bad := func(why string) (LegacyHash, error) {
		return LegacyHash{}, fmt.Errorf("%w: argon2id: %s", ErrInvalidLegacyHash, why)
	}
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	if f[2] != "v=19" {
		return bad("want version v=19")
	}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return bad("want parameters m=M,t=T,p=P")
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		digits, ok := strings.CutPrefix(params[i], name)
		v, err := strconv.ParseUint(digits, 10, 32)
		if !ok || err != nil || v == 0 || (len(digits) > 1 && digits[0] == '0') {
			return bad("want parameters m=M,t=T,p=P, each a positive decimal number")
		}
		vals[i] = v
	}
	if vals[2] > 255 || vals[0] < 8*vals[2] {
		return bad("want p from 1 to 255 and m at least 8·p")
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(f[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return bad("salt must be 8 to 64 bytes in unpadded base64")
	}
	hash, err := base64.RawStdEncoding.Strict().DecodeString(f[5])
	if err != nil || len(hash) < 16 || len(hash) > 64 {
		return bad("hash must be 16 to 64 bytes in unpadded base64")
	}
	return LegacyHash{kind: LegacyArgon2id, digest: hash, salt: salt,
		memory: uint32(vals[0]), time: uint32(vals[1]), lanes: uint8(vals[2])}, nil
}

// Kind returns LegacySHA256, LegacyHMACSHA256, LegacyBcrypt or
// LegacyArgon2id, or "" for the zero LegacyHash.
func (h LegacyHash) Kind() string { return h.kind }

// Salted reports whether the hash is salted (bcrypt, argon2id). A salted
// key cannot be found by its hash: its record is found by an ID the key
// carries (LegacyIDRule).
func (h LegacyHash) Salted() bool { return h.kind == LegacyBcrypt || h.kind == LegacyArgon2id }

// Encoded returns the hash in its canonical text form: lower-case hex for
// sha256 and hmac-sha256, the input for bcrypt and argon2id. Parsing it
// gives h back.
func (h LegacyHash) Encoded() string {
	switch h.kind {
	case LegacySHA256, LegacyHMACSHA256:
		return h.kind + ":" + hex.EncodeToString(h.digest)
	case LegacyBcrypt:
		return h.crypt
	case LegacyArgon2id:
		return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", h.memory, h.time, h.lanes,
			base64.RawStdEncoding.EncodeToString(h.salt), base64.RawStdEncoding.EncodeToString(h.digest))
	}
	return ""
}

// String returns the kind and cost, never the hash: "sha256",
// "bcrypt(cost=10)", "argon2id(m=65536,t=3,p=4)".
func (h LegacyHash) String() string {
	switch h.kind {
	case LegacyBcrypt:
		return fmt.Sprintf("bcrypt(cost=%d)", h.cost)
	case LegacyArgon2id:
		return fmt.Sprintf("argon2id(m=%d,t=%d,p=%d)", h.memory, h.time, h.lanes)
	case "":
		return "LegacyHash(invalid)"
	}
	return h.kind
}

// GoString implements fmt.GoStringer, so that %#v shows no hash either.
func (h LegacyHash) GoString() string { return "apikey.LegacyHash(" + h.String() + ")" }

// Format implements fmt.Formatter: every verb prints String's form.
func (h LegacyHash) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, "apikey.LegacyHash", h.String())
}

// LogValue implements slog.LogValuer with String's form.
func (h LegacyHash) LogValue() slog.Value { return slog.StringValue(h.String()) }

// MarshalJSON implements json.Marshaler with String's form.
func (h LegacyHash) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(h.String())), nil }

// LegacyCost caps the cost of slow legacy hashes. A zero field is its
// default (DefaultMaxBcryptCost and friends).
type LegacyCost struct {
	MaxBcryptCost   int    // bcrypt's cost parameter (log2 of rounds)
	MaxArgon2Memory uint32 // argon2id's m, in KiB
	MaxArgon2Time   uint32 // argon2id's t
	MaxArgon2Lanes  uint8  // argon2id's p
}

func (c LegacyCost) withDefaults() LegacyCost {
	if c.MaxBcryptCost == 0 {
		c.MaxBcryptCost = DefaultMaxBcryptCost
	}
	if c.MaxArgon2Memory == 0 {
		c.MaxArgon2Memory = DefaultMaxArgon2Memory
	}
	if c.MaxArgon2Time == 0 {
		c.MaxArgon2Time = DefaultMaxArgon2Time
	}
	if c.MaxArgon2Lanes == 0 {
		c.MaxArgon2Lanes = DefaultMaxArgon2Lanes
	}
	return c
}

// Check returns an error wrapping ErrLegacyHashCost if h costs more than
// c allows (with c's zero fields at their defaults); unsalted hashes
// always pass.
func (c LegacyCost) Check(h LegacyHash) error {
	c = c.withDefaults()
	switch {
	case h.kind == LegacyBcrypt && h.cost > c.MaxBcryptCost:
		return fmt.Errorf("%w: bcrypt cost %d is above the cap of %d", ErrLegacyHashCost, h.cost, c.MaxBcryptCost)
	case h.kind == LegacyArgon2id && h.memory > c.MaxArgon2Memory:
		return fmt.Errorf("%w: argon2id memory %d KiB is above the cap of %d KiB", ErrLegacyHashCost, h.memory, c.MaxArgon2Memory)
	case h.kind == LegacyArgon2id && h.time > c.MaxArgon2Time:
		return fmt.Errorf("%w: argon2id time %d is above the cap of %d", ErrLegacyHashCost, h.time, c.MaxArgon2Time)
	case h.kind == LegacyArgon2id && h.lanes > c.MaxArgon2Lanes:
		return fmt.Errorf("%w: argon2id parallelism %d is above the cap of %d", ErrLegacyHashCost, h.lanes, c.MaxArgon2Lanes)
	}
	return nil
}

// Verify reports, in constant time for the hash's parameters, whether key
// is the key h was computed from. hmacSecret is the old system's secret,
// for hmac-sha256; other kinds ignore it. bcrypt reads at most 72 bytes
// of the key, as every bcrypt does. It does not check the cost: call
// LegacyCost.Check first on hashes from an untrusted place.
func (h LegacyHash) Verify(key string, hmacSecret []byte) bool {
	switch h.kind {
	case LegacySHA256, LegacyHMACSHA256:
		sum := legacyDigest(h.kind, key, hmacSecret)
		return subtle.ConstantTimeCompare(sum[:], h.digest) == 1
	case LegacyBcrypt:
		return bcrypt.CompareHashAndPassword([]byte(h.crypt), []byte(key)) == nil
	case LegacyArgon2id:
		sum := argon2.IDKey([]byte(key), h.salt, h.time, h.memory, h.lanes, uint32(len(h.digest)))
		return subtle.ConstantTimeCompare(sum, h.digest) == 1
	}
	return false
}
