package vault

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KEKSize is the size of a LocalKEK version's key and of a data key.
const KEKSize = chacha20poly1305.KeySize

// MaxKEKVersionLen bounds a LocalKEK version's name.
const MaxKEKVersionLen = 64

// LocalKEK is a KEK held in this process's memory: one or more versions,
// each a 32-byte key, the first of which wraps new data keys. It wraps a
// data key with XChaCha20-Poly1305 under the version's key, a random
// nonce and additional data that binds the version and the caller's aad.
//
// Its text form, read by ParseLocalKEK, LocalKEKFromEnv and
// LocalKEKFromFile, is a list of VERSION:KEY entries separated by commas,
// spaces or newlines, the current version first; '#' starts a comment
// that runs to the end of the line. VERSION is 1 to MaxKEKVersionLen
// characters of [A-Za-z0-9._-]; KEY is 32 random bytes in standard
// base64 with padding, as `openssl rand -base64 32` prints them:
//
//	APIKEY_VAULT_KEK="v2:9Gk7…=,v1:Qx3P…="
//
// To rotate, put a new version first, keep the old one after it, call
// Vault.RotateKEK, then remove the old one.
//
// A LocalKEK is safe for concurrent use. It prints, logs and marshals as
// its version names only, never a key.
type LocalKEK struct {
	current  string
	versions []string
	keys     *localKeys
}

// localKeys holds a LocalKEK's ciphers two pointers away from the
// LocalKEK, because fmt prints by reflection wherever it cannot call
// Format (a LocalKEK value rather than a pointer, an unexported field of
// a caller's struct, a bad verb): on its bad-verb path it prints the
// contents of the first pointer it meets, but never of a second, so a
// cipher's key shows only as an address. TestRedaction guards this.
type localKeys struct {
	aeads map[string]cipher.AEAD
}

// ParseLocalKEK reads a LocalKEK from its text form (see LocalKEK). It
// fails with an error wrapping ErrInvalidKEK that names the entry by
// position and version, never the key: for an empty list, a malformed
// entry, a key that is not 32 bytes of base64, a version given twice, or
// one key under two versions.
func ParseLocalKEK(text string) (*LocalKEK, error) {
	var entries []string
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		entries = append(entries, strings.FieldsFunc(line, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\r'
		})...)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: no VERSION:KEY entry", ErrInvalidKEK)
	}
	k := &LocalKEK{keys: &localKeys{aeads: make(map[string]cipher.AEAD, len(entries))}}
	var keys [][]byte
	for i, e := range entries {
		version, b64, ok := strings.Cut(e, ":")
		if !ok || !validKEKVersion(version) {
			return nil, fmt.Errorf("%w: entry %d: want VERSION:KEY with VERSION 1 to %d characters of [A-Za-z0-9._-]", ErrInvalidKEK, i+1, MaxKEKVersionLen)
		}
		if _, dup := k.keys.aeads[version]; dup {
			return nil, fmt.Errorf("%w: entry %d: version %q given twice", ErrInvalidKEK, i+1, version)
		}
		key, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(key) != KEKSize {
			return nil, fmt.Errorf("%w: entry %d (version %q): the key must be %d bytes in standard base64 with padding", ErrInvalidKEK, i+1, version, KEKSize)
		}
		for _, other := range keys {
			if subtle.ConstantTimeCompare(key, other) == 1 {
				return nil, fmt.Errorf("%w: entry %d (version %q): the same key as an earlier version", ErrInvalidKEK, i+1, version)
			}
		}
		aead, err := chacha20poly1305.NewX(key)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d (version %q)", ErrInvalidKEK, i+1, version)
		}
		keys = append(keys, key)
		k.keys.aeads[version] = aead
		k.versions = append(k.versions, version)
	}
	for _, key := range keys {
		clear(key)
	}
	k.current = k.versions[0]
	return k, nil
}

// LocalKEKFromEnv reads a LocalKEK from the environment variable name
// (see LocalKEK for the format). An unset or empty variable, or one that
// does not parse, is an error wrapping ErrInvalidKEK that names the
// variable, never its value.
func LocalKEKFromEnv(name string) (*LocalKEK, error) {
	v := os.Getenv(name)
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%w: environment variable %s is not set", ErrInvalidKEK, name)
	}
	k, err := ParseLocalKEK(v)
	if err != nil {
		return nil, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return k, nil
}

// LocalKEKFromFile reads a LocalKEK from the file at path (see LocalKEK
// for the format; one entry a line reads well). Keep the file readable by
// the service alone. Errors name the file, never its contents.
func LocalKEKFromFile(path string) (*LocalKEK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKEK, err)
	}
	defer clear(b)
	k, err := ParseLocalKEK(string(b))
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	return k, nil
}

func validKEKVersion(v string) bool {
	if len(v) == 0 || len(v) > MaxKEKVersionLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Version implements KEK: the first version of the text form.
func (k *LocalKEK) Version() string { return k.current }

// Versions returns every version k holds, the current one first.
func (k *LocalKEK) Versions() []string { return append([]string(nil), k.versions...) }

// Wrap implements KEK with the current version.
func (k *LocalKEK) Wrap(_ context.Context, dataKey, aad []byte) (string, []byte, error) {
	aead := k.keys.aeads[k.current]
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(dataKey)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return "", nil, fmt.Errorf("apikey: vault: random nonce: %w", err)
	}
	return k.current, aead.Seal(out, out, dataKey, localAAD(k.current, aad)), nil
}

// Unwrap implements KEK.
func (k *LocalKEK) Unwrap(_ context.Context, version string, wrapped, aad []byte) ([]byte, error) {
	aead, ok := k.keys.aeads[version]
	if !ok {
		return nil, fmt.Errorf("%w %.64q: this LocalKEK holds %s", ErrUnknownKEKVersion, version, strings.Join(k.versions, ", "))
	}
	if len(wrapped) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: wrapped data key too short", ErrDecrypt)
	}
	n := aead.NonceSize()
	key, err := aead.Open(nil, wrapped[:n], wrapped[n:], localAAD(version, aad))
	if err != nil {
		return nil, fmt.Errorf("%w: data key does not unwrap with KEK version %q", ErrDecrypt, version)
	}
	return key, nil
}

// localAAD binds a wrapped data key to the KEK version that wrapped it
// as well as to the caller's aad. A version holds no NUL byte.
func localAAD(version string, aad []byte) []byte {
	b := make([]byte, 0, 32+len(version)+len(aad))
	b = append(b, "apikey/vault/local-kek/1\x00"...)
	b = append(b, version...)
	b = append(b, 0)
	return append(b, aad...)
}

// String returns "vault.LocalKEK(v2 current; v2, v1)": versions, never
// keys.
func (k *LocalKEK) String() string {
	if k == nil {
		return "vault.LocalKEK(nil)"
	}
	return "vault.LocalKEK(" + k.current + " current; " + strings.Join(k.versions, ", ") + ")"
}

// GoString implements fmt.GoStringer like String.
func (k *LocalKEK) GoString() string { return k.String() }

// Format implements fmt.Formatter: every verb prints String.
func (k *LocalKEK) Format(f fmt.State, _ rune) { fmt.Fprintf(f, fmt.FormatString(f, 's'), k.String()) }

// LogValue implements slog.LogValuer with String.
func (k *LocalKEK) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON implements json.Marshaler with String.
func (k *LocalKEK) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

var _ KEK = (*LocalKEK)(nil)
