package apikey

import (
	"fmt"
	"net/netip"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds on what a key record may hold, checked by Issue and Update. They
// bound the memory a key costs in every cache and the size of its row: the
// scopes of a key take at most MaxScopes × 128 bytes, and its metadata at
// most MaxMetadataSize.
const (
	MaxOwnerLen        = 255
	MaxNameLen         = 255
	MaxScopes          = 64
	MaxAllowedIPs      = 256
	MaxMetadataEntries = 64
	MaxMetadataKeyLen  = 128
	// MaxRevokedReasonLen bounds Key.RevokedReason, in bytes.
	MaxRevokedReasonLen = 1024
	// MaxMetadataSize bounds the bytes of all metadata keys and values of
	// one key together.
	MaxMetadataSize = 16 << 10
)

// checkIssue checks what an IssueRequest holds, apart from its expiry,
// which depends on the clock.
func checkIssue(req *IssueRequest) error {
	if req.Prefix != "" {
		if err := ValidatePrefix(req.Prefix); err != nil {
			return err
		}
	}
	if err := checkText("owner", req.Owner, MaxOwnerLen); err != nil {
		return err
	}
	if req.Owner == "" {
		return fmt.Errorf("%w: owner is required", ErrInvalidRequest)
	}
	if err := checkText("name", req.Name, MaxNameLen); err != nil {
		return err
	}
	if err := checkScopes(req.Scopes); err != nil {
		return err
	}
	if err := checkWindow(req.NotBefore, req.ExpiresAt); err != nil {
		return err
	}
	if err := checkLimits(req.RateLimit, req.Quota); err != nil {
		return err
	}
	if err := checkCredits(req.Credits); err != nil {
		return err
	}
	if _, err := normalPrefixes(req.AllowedIPs); err != nil {
		return err
	}
	return checkMetadata(req.Metadata)
}

// checkID accepts a key ID: IDLen base62 characters. Its error does not
// repeat id, which may be a whole key pasted by mistake.
func checkID(id string) error {
	if len(id) != IDLen || !isBase62(id) {
		return fmt.Errorf("%w: not a key ID (want %d base62 characters, got %d bytes)", ErrInvalidRequest, IDLen, len(id))
	}
	return nil
}

// checkText accepts at most max bytes of UTF-8 without control or bidi
// formatting characters, which could make one owner or name look like
// another where they are listed.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalidRequest, field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidRequest, field)
	}
	for i, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Errorf("%w: %s has a control or bidi formatting character (%U) at byte %d", ErrInvalidRequest, field, r, i)
		}
	}
	return nil
}

func checkScopes(scopes []string) error {
	if len(scopes) > MaxScopes {
		return fmt.Errorf("%w: %d scopes, at most %d allowed", ErrInvalidRequest, len(scopes), MaxScopes)
	}
	return ValidateScopes(scopes)
}

// checkWindow checks that a key's validity window is not empty.
func checkWindow(notBefore, expiresAt time.Time) error {
	if !notBefore.IsZero() && !expiresAt.IsZero() && !notBefore.Before(expiresAt) {
		return fmt.Errorf("%w: not-before %s is not before expiry %s", ErrInvalidRequest,
			notBefore.Format(time.RFC3339), expiresAt.Format(time.RFC3339))
	}
	return nil
}

// checkLimits checks a key's own limits; zero means not set.
func checkLimits(l Limit, q Quota) error {
	if !l.IsZero() {
		if err := l.Validate(); err != nil {
			return err
		}
	}
	if !q.IsZero() {
		if err := q.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// checkCredits checks a key's credits; zero means not set.
func checkCredits(c Credits) error {
	if c.IsZero() {
		return nil
	}
	return c.Validate()
}

// normalPrefixes checks an allowlist and returns it as AllowsIP compares
// it: masked, and IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104) as the
// IPv4 prefixes they are (10.0.0.0/8), since client addresses are
// compared unmapped. A mapped prefix shorter than /96 also covers
// addresses that are not IPv4, and is refused.
func normalPrefixes(ps []netip.Prefix) ([]netip.Prefix, error) {
	if len(ps) > MaxAllowedIPs {
		return nil, fmt.Errorf("%w: %d allowed IP prefixes, at most %d", ErrInvalidRequest, len(ps), MaxAllowedIPs)
	}
	if ps == nil {
		return nil, nil
	}
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		switch {
		case !p.IsValid():
			return nil, fmt.Errorf("%w: allowed IP prefix %v is not valid", ErrInvalidRequest, p)
		case p.Addr().Is4In6() && p.Bits() < 96:
			return nil, fmt.Errorf("%w: allowed IP prefix %v mixes IPv4-mapped and other IPv6 addresses; give the IPv4 prefix", ErrInvalidRequest, p)
		case p.Addr().Is4In6():
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out[i] = p.Masked()
	}
	return out, nil
}

func checkMetadata(md map[string]string) error {
	if len(md) > MaxMetadataEntries {
		return fmt.Errorf("%w: %d metadata entries, at most %d", ErrInvalidRequest, len(md), MaxMetadataEntries)
	}
	size := 0
	for name, v := range md {
		if name == "" || len(name) > MaxMetadataKeyLen || !utf8.ValidString(name) {
			return fmt.Errorf("%w: metadata key %.40q must be 1 to %d bytes of UTF-8", ErrInvalidRequest, name, MaxMetadataKeyLen)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: metadata %.40q: value is not valid UTF-8", ErrInvalidRequest, name)
		}
		size += len(name) + len(v)
	}
	if size > MaxMetadataSize {
		return fmt.Errorf("%w: metadata is %d bytes, at most %d in all", ErrInvalidRequest, size, MaxMetadataSize)
	}
	return nil
}
