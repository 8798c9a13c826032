package apikey

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxLegacyIDLen is the longest ID a LegacyIDRule extracts, and that
// Manager.ImportLegacy accepts, in bytes.
const MaxLegacyIDLen = 128

// LegacyIDRule says where a legacy key carries the ID of its record, so
// that a key verified by a salted hash (bcrypt, argon2id), which cannot be
// looked up by its hash, can be found. Make one with LegacyIDAt,
// LegacyIDAfter or LegacyIDMatch. The zero LegacyIDRule extracts nothing:
// only unsalted legacy keys (SHA-256, HMAC-SHA256) are then found. The ID
// is treated as public, as a key ID is: a key whose ID exists is told
// apart from one whose ID does not by the time its slow hash takes.
// A LegacyIDRule is immutable and safe for concurrent use.
type LegacyIDRule struct {
	kind   uint8 // 0 none, 1 at, 2 after, 3 match
	start  int
	length int
	prefix string
	re     *regexp.Regexp
}

// LegacyIDAt extracts the length bytes at offset start, as in keys like
// "ak1234567890abcdef…", where the ID is bytes 2 to 9: LegacyIDAt(2, 8).
// A key too short to hold them has no ID.
func LegacyIDAt(start, length int) (LegacyIDRule, error) {
	if start < 0 || length < 1 || length > MaxLegacyIDLen || start > MaxTokenLen {
		return LegacyIDRule{}, fmt.Errorf("%w: LegacyIDAt(%d, %d): want start ≥ 0 and 1 ≤ length ≤ %d", ErrInvalidRequest, start, length, MaxLegacyIDLen)
	}
	return LegacyIDRule{kind: 1, start: start, length: length}, nil
}

// LegacyIDAfter extracts the length bytes right after prefix, as in keys
// like "sk_live_ID123456.secret": LegacyIDAfter("sk_live_", 8). A key
// without the prefix, or too short, has no ID.
func LegacyIDAfter(prefix string, length int) (LegacyIDRule, error) {
	if prefix == "" || len(prefix) > MaxTokenLen || length < 1 || length > MaxLegacyIDLen {
		return LegacyIDRule{}, fmt.Errorf("%w: LegacyIDAfter: want a non-empty prefix and 1 ≤ length ≤ %d", ErrInvalidRequest, MaxLegacyIDLen)
	}
	return LegacyIDRule{kind: 2, prefix: prefix, length: length}, nil
}

// LegacyIDMatch extracts the ID with a regular expression (RE2 syntax, so
// matching takes time linear in the key) with exactly one capturing
// group: the group's text is the ID. Anchor it (^…$) if the key's whole
// shape is known. A key that does not match, or whose group is empty or
// longer than MaxLegacyIDLen, has no ID.
func LegacyIDMatch(expr string) (LegacyIDRule, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return LegacyIDRule{}, fmt.Errorf("%w: LegacyIDMatch: %w", ErrInvalidRequest, err)
	}
	if re.NumSubexp() != 1 {
		return LegacyIDRule{}, fmt.Errorf("%w: LegacyIDMatch(%q): want exactly one capturing group, found %d", ErrInvalidRequest, expr, re.NumSubexp())
	}
	return LegacyIDRule{kind: 3, re: re}, nil
}

// IsZero reports whether r extracts nothing.
func (r LegacyIDRule) IsZero() bool { return r.kind == 0 }

// Extract returns the ID that key carries under r, and whether it has
// one. The ID is a substring of key: copy it (strings.Clone) before
// keeping it, since the rest of the key is secret.
func (r LegacyIDRule) Extract(key string) (string, bool) {
	var id string
	switch r.kind {
	case 1:
		if len(key) < r.start+r.length {
			return "", false
		}
		id = key[r.start : r.start+r.length]
	case 2:
		rest, ok := strings.CutPrefix(key, r.prefix)
		if !ok || len(rest) < r.length {
			return "", false
		}
		id = rest[:r.length]
	case 3:
		m := r.re.FindStringSubmatchIndex(key)
		if m == nil || m[2] < 0 {
			return "", false
		}
		id = key[m[2]:m[3]]
	default:
		return "", false
	}
	if id == "" || len(id) > MaxLegacyIDLen {
		return "", false
	}
	return id, true
}

// String describes the rule, for logs and errors.
func (r LegacyIDRule) String() string {
	switch r.kind {
	case 1:
		return fmt.Sprintf("LegacyIDAt(%d, %d)", r.start, r.length)
	case 2:
		return fmt.Sprintf("LegacyIDAfter(%q, %d)", r.prefix, r.length)
	case 3:
		return fmt.Sprintf("LegacyIDMatch(%q)", r.re.String())
	}
	return "LegacyIDRule(none)"
}
