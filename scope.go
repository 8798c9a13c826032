package apikey

import (
	"fmt"
	"strconv"
	"strings"
)

// Bounds on scopes. Input beyond them is rejected, so that the cost of
// matching is bounded whatever a caller sends.
const (
	maxScopeLen      = 128 // bytes in a scope
	maxScopeSegments = 16  // ':'-separated segments in a scope
)

// Reasons a scope is invalid. They are constants so that checking a scope
// never allocates; the error built from them adds the detail.
const (
	reasonEmpty    = "empty scope"
	reasonTooLong  = "longer than 128 bytes"
	reasonTooMany  = "more than 16 segments"
	reasonEmptySeg = "empty segment"
	reasonBadChar  = "invalid character"
	reasonPartial  = `"*" must be a whole segment`
	reasonWildcard = `wildcard "*" not allowed in a required scope`
)

// maxQuotedInError is how many bytes of a bad scope or query an error quotes.
const maxQuotedInError = 64

// checkScope reports why s is not a valid scope, or "" if it is. If literal
// is true, s is a required scope and may not contain '*'. For reasonBadChar,
// at is the offset of the offending byte. checkScope does not allocate.
func checkScope(s string, literal bool) (reason string, at int) {
	if s == "" {
		return reasonEmpty, 0
	}
	if len(s) > maxScopeLen {
		return reasonTooLong, 0
	}
	segments := 1
	start := 0 // offset of the current segment
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ':' {
			c := s[i]
			if c == '*' {
				if literal {
					return reasonWildcard, i
				}
				continue
			}
			if !isScopeChar(c) {
				return reasonBadChar, i
			}
			continue
		}
		// s[start:i] is a complete segment.
		seg := s[start:i]
		if seg == "" {
			return reasonEmptySeg, i
		}
		if seg != "*" && strings.IndexByte(seg, '*') >= 0 {
			return reasonPartial, start
		}
		if i < len(s) {
			segments++
			if segments > maxScopeSegments {
				return reasonTooMany, 0
			}
		}
		start = i + 1
	}
	return "", 0
}

func isScopeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// scopeError returns the error for the invalid scope s, given what
// checkScope returned. It wraps ErrInvalidScope.
func scopeError(s, reason string, at int) error {
	return fmt.Errorf("%w %s: %s", ErrInvalidScope, quoteTruncated(s), scopeDetail(s, reason, at))
}

// scopeDetail adds the offending byte and its offset to reasonBadChar.
func scopeDetail(s, reason string, at int) string {
	if reason == reasonBadChar {
		return reason + " " + describeByte(s[at]) + " at offset " + strconv.Itoa(at)
	}
	return reason
}

// describeByte names a byte for an error message: '@' or '\x00' for ASCII,
// byte 0xff otherwise (it may be part of a multi-byte character).
func describeByte(c byte) string {
	if c < 0x80 {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// quoteTruncated quotes s with %q (so control bytes and invalid UTF-8 are
// escaped), keeping only its first bytes if it is long.
func quoteTruncated(s string) string {
	if len(s) <= maxQuotedInError {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuotedInError]) + "..."
}

// ValidateScope reports whether s is a valid granted scope, the kind a key
// holds. A scope is one or more segments joined by ':' ("orders:read",
// "billing:invoices:write"); a segment is a non-empty run of the characters
// [A-Za-z0-9._-]. A granted scope may also use the wildcard segment "*" (see
// ScopeMatches); a '*' must be a whole segment, so "ord*" is invalid. A
// scope is at most 128 bytes long and has at most 16 segments. Scopes are
// case-sensitive.
//
// The error wraps ErrInvalidScope and names the scope and the reason, as in
//
//	apikey: invalid scope "orders::read": empty segment
func ValidateScope(s string) error {
	if reason, at := checkScope(s, false); reason != "" {
		return scopeError(s, reason, at)
	}
	return nil
}

// ValidateScopes validates each granted scope with ValidateScope and returns
// the error for the first invalid one. It also rejects a scope listed twice.
// An empty list is valid.
func ValidateScopes(scopes []string) error {
	seen := make(map[string]bool, len(scopes))
	for _, s := range scopes {
		if err := ValidateScope(s); err != nil {
			return err
		}
		if seen[s] {
			return fmt.Errorf("%w %s: listed twice", ErrInvalidScope, quoteTruncated(s))
		}
		seen[s] = true
	}
	return nil
}

// ScopeMatches reports whether the granted scope, held by a key, satisfies
// the required scope, asked for by a handler. Segments match if they are
// equal (case-sensitively) or if the granted segment is the wildcard "*":
//
//   - a "*" that is not the last segment matches exactly one segment:
//     "*:read" matches "orders:read" but not "orders:eu:read";
//   - a trailing "*" matches one or more segments: "orders:*" matches
//     "orders:read" and "orders:eu:read" but not "orders";
//   - so "*" alone matches every scope.
//
// The required scope must be literal (valid and without '*'); an invalid
// required scope never matches, and neither does an invalid granted scope.
// ScopeMatches does not allocate.
func ScopeMatches(granted, required string) bool {
	if reason, _ := checkScope(required, true); reason != "" {
		return false
	}
	return matchValid(granted, required)
}

// HasScope reports whether any of the granted scopes satisfies the required
// scope, as ScopeMatches does. HasScope does not allocate.
func HasScope(granted []string, required string) bool {
	if reason, _ := checkScope(required, true); reason != "" {
		return false
	}
	return hasValid(granted, required)
}

// hasValid is HasScope for a required scope already known to be valid.
func hasValid(granted []string, required string) bool {
	for _, g := range granted {
		if matchValid(g, required) {
			return true
		}
	}
	return false
}

// matchValid reports whether granted matches required, which must be a
// valid literal scope. It walks both strings once, a segment at a time,
// stopping at the first byte that differs.
//
// An invalid granted scope cannot match: a segment with a bad character or a
// partial '*' is compared literally and so differs from every valid required
// segment, an empty segment differs from every non-empty one, and a granted
// scope is never longer (in bytes or segments) than a required scope it
// matches, so it cannot break the bounds either.
func matchValid(granted, required string) bool {
	g, r := 0, 0 // offsets of the current segment in granted and required
	for {
		if isWildcardAt(granted, g) {
			if g+1 == len(granted) {
				// A trailing "*" matches the rest of required: one or
				// more segments, since r is at the start of a non-empty
				// segment.
				return true
			}
			// A "*" in the middle matches exactly one segment.
			g++
			for r < len(required) && required[r] != ':' {
				r++
			}
		} else {
			// A literal segment must be equal byte for byte.
			for g < len(granted) && granted[g] != ':' {
				if r == len(required) || required[r] != granted[g] {
					return false
				}
				g++
				r++
			}
			if r < len(required) && required[r] != ':' {
				return false // the required segment is longer
			}
		}
		// Both are now at a ':' or at the end. They must end together:
		// "orders:*" does not match "orders", nor "orders" "orders:read".
		gEnd, rEnd := g == len(granted), r == len(required)
		if gEnd || rEnd {
			return gEnd && rEnd
		}
		g++ // skip the ':'
		r++
	}
}

// isWildcardAt reports whether the segment of s starting at offset i is "*".
func isWildcardAt(s string, i int) bool {
	return i < len(s) && s[i] == '*' && (i+1 == len(s) || s[i+1] == ':')
}

// ScopeWithin reports whether scope, which may itself hold wildcards, is
// within the granted scopes: whether every required scope that scope
// matches is also matched by one of granted, by ScopeMatches's rules. It
// is the check for delegation, when a holder of granted scopes gives some
// of them to a new key: a holder of "orders:*" may give "orders:read",
// "orders:eu:*" or "orders:*", but not "orders" (which "orders:*" does not
// match), "*:read" or "billing:read". For a literal scope it is HasScope.
//
// Because segments are drawn from an unbounded alphabet, a wildcard scope
// is within a list exactly when it is within one member of it, so
// ScopeWithin compares scope with each granted scope in turn. An invalid
// scope is within nothing, and an invalid granted scope contains nothing.
// ScopeWithin does not allocate.
func ScopeWithin(granted []string, scope string) bool {
	if reason, _ := checkScope(scope, false); reason != "" {
		return false
	}
	for _, g := range granted {
		if reason, _ := checkScope(g, false); reason == "" && containsScope(g, scope) {
			return true
		}
	}
	return false
}

// ScopesWithin reports whether every one of scopes is within granted, as
// ScopeWithin says. An empty list is within anything.
func ScopesWithin(granted, scopes []string) bool {
	for _, s := range scopes {
		if !ScopeWithin(granted, s) {
			return false
		}
	}
	return true
}

// containsScope reports whether the valid granted scope g matches every
// required scope the valid scope s matches. A trailing "*" of g covers the
// rest of s, one or more segments, wildcards or not; any other "*" of g
// covers one segment of s, "*" included; a literal segment of g covers
// only itself. A trailing "*" of s matches any number of segments, so
// only a trailing "*" of g covers it.
func containsScope(g, s string) bool {
	for {
		gSeg, gRest, gMore := strings.Cut(g, ":")
		sSeg, sRest, sMore := strings.Cut(s, ":")
		if gSeg == "*" && !gMore {
			return true // g's trailing "*": the rest of s is one or more segments
		}
		if sSeg == "*" && !sMore {
			return false // s's trailing "*" matches more segments than g's one
		}
		if gSeg != "*" && gSeg != sSeg {
			return false
		}
		if !gMore || !sMore {
			return gMore == sMore
		}
		g, s = gRest, sRest
	}
}
