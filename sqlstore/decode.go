package sqlstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// The JSON columns are decoded on every cache miss of every Verify, and
// encoding/json is a large part of a Get's cost. What Store writes is
// compact JSON whose strings mostly need no escapes, so a fast path
// handles that shape and anything else (escapes, whitespace from an
// operator's hand-written UPDATE) goes to encoding/json.

// jsonCol scans a nullable JSON text column into a []string, a
// []netip.Prefix or a map[string]string; NULL leaves the target nil. It
// holds only a pointer, so that passing it to Scan as an any does not
// allocate.
type jsonCol[T []string | []netip.Prefix | map[string]string] struct{ dst *T }

// jsonOf returns the jsonCol that scans into *dst.
func jsonOf[T []string | []netip.Prefix | map[string]string](dst *T) jsonCol[T] {
	return jsonCol[T]{dst}
}

func (c jsonCol[T]) Scan(v any) error {
	var s string
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("%w: cannot scan %T as JSON", errBadColumn, v)
	}
	return c.decode(s)
}

// decode decodes s into the column's target.
func (c jsonCol[T]) decode(s string) error {
	switch dst := any(c.dst).(type) {
	case *[]string:
		if out, ok := fastStrings(s); ok {
			*dst = out
			return nil
		}
	case *[]netip.Prefix:
		if strs, ok := fastStrings(s); ok {
			out := make([]netip.Prefix, len(strs))
			var err error
			for i, p := range strs {
				if out[i], err = netip.ParsePrefix(p); err != nil {
					break
				}
			}
			if err == nil {
				*dst = out
				return nil
			}
		}
	case *map[string]string:
		if out, ok := fastMap(s); ok {
			*dst = out
			return nil
		}
	}
	if err := json.Unmarshal([]byte(s), c.dst); err != nil {
		return fmt.Errorf("%w: %w", errBadColumn, err)
	}
	return nil
}

// errBadColumn marks a column value that does not decode: the row is
// corrupt, which is not a failure of the database.
var errBadColumn = errors.New("bad column value")

// plainString reads a JSON string without escapes at the start of s and
// returns it and the rest of s.
func plainString(s string) (str, rest string, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	str = s[1 : 1+end]
	if strings.IndexByte(str, '\\') >= 0 {
		return "", "", false
	}
	ascii := true
	for i := 0; i < len(str); i++ {
		switch c := str[i]; {
		case c < 0x20:
			return "", "", false
		case c >= 0x80:
			ascii = false
		}
	}
	if !ascii && !utf8.ValidString(str) {
		return "", "", false // encoding/json substitutes U+FFFD
	}
	return str, s[2+end:], true
}

// fastStrings decodes a compact JSON array of plain strings.
func fastStrings(s string) ([]string, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	out := make([]string, 0, strings.Count(body, ",")+1)
	if body == "" {
		return out, true
	}
	for {
		str, rest, ok := plainString(body)
		if !ok {
			return nil, false
		}
		out = append(out, str)
		if rest == "" {
			return out, true
		}
		if rest[0] != ',' {
			return nil, false
		}
		body = rest[1:]
	}
}

// fastMap decodes a compact JSON object of plain strings.
func fastMap(s string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	out := make(map[string]string, strings.Count(body, ":"))
	if body == "" {
		return out, true
	}
	for {
		k, rest, ok := plainString(body)
		if !ok || rest == "" || rest[0] != ':' {
			return nil, false
		}
		v, rest, ok := plainString(rest[1:])
		if !ok {
			return nil, false
		}
		if _, dup := out[k]; dup {
			return nil, false // let encoding/json decide what a duplicate means
		}
		out[k] = v
		if rest == "" {
			return out, true
		}
		if rest[0] != ',' {
			return nil, false
		}
		body = rest[1:]
	}
}
