package sqlstore

import (
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
)

// recordRow is a key's row as its record column holds it on SQLite and
// PostgreSQL (schema version 9): one JSON array of the row's columns in
// the order of columns, made by json_array or json_build_array (which
// puts a space after each comma), with the digest in hex. Its Scan hands
// scanKey's destinations the values the driver would have handed them
// for the columns themselves (nil, int64, float64 or string), so that a
// row decodes, or fails to, as it would column by column; a value of the
// wrong type, and a record that is not such an array, are errBadColumn.
type recordRow string

// keyFromRecord decodes a key's record. The Key's text fields are then
// copied out of the record, into one allocation for them all: as
// substrings they would keep the whole record (every column, in JSON)
// alive for as long as the Key is cached.
func keyFromRecord(rec string) (*apikey.Key, error) {
	k, err := scanKey(recordRow(rec))
	if err != nil {
		return k, err
	}
	text := [...]*string{&k.ID, &k.Prefix, &k.Owner, &k.Name, &k.DigestVersion,
		&k.RotatedFrom, &k.ReplacedBy, &k.RevokedReason, &k.Lineage}
	n := 0
	for _, f := range text {
		n += len(*f)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range text {
		b.WriteString(*f)
	}
	all := b.String()
	for _, f := range text {
		*f, all = all[:len(*f)], all[len(*f):]
	}
	return k, nil
}

// Scan assigns the record's values to dest in order: *string takes a
// string, *int64 an integer, *[]byte a string of hex (or null, a nil
// slice), and an sql.Scanner any value.
func (r recordRow) Scan(dest ...any) error {
	s, ok := strings.CutPrefix(skipSpace(string(r)), "[")
	if !ok {
		return fmt.Errorf("%w: record is not a JSON array", errBadColumn)
	}
	for i, d := range dest {
		if i > 0 {
			if s, ok = strings.CutPrefix(skipSpace(s), ","); !ok {
				return fmt.Errorf("%w: record holds %d values, want %d", errBadColumn, i, len(dest))
			}
		}
		var err error
		if s, err = scanValue(d, skipSpace(s)); err != nil {
			return fmt.Errorf("record value %d: %w", i+1, err)
		}
	}
	if strings.TrimSpace(s) != "]" {
		return fmt.Errorf("%w: record holds more than %d values", errBadColumn, len(dest))
	}
	return nil
}

// scanValue reads the JSON value at the start of s into dest, one of
// scanKey's destinations, and returns the rest of s. Strings and integers
// go to their destinations without an interface value, which would cost
// an allocation each.
func scanValue(dest any, s string) (rest string, err error) {
	switch d := dest.(type) {
	case *string:
		if !strings.HasPrefix(s, `"`) {
			return "", fmt.Errorf("%w: %.10q where text belongs", errBadColumn, s)
		}
		*d, rest, err = recordString(s)
	case *int64:
		num, rest := recordNumber(s)
		if *d, err = strconv.ParseInt(num, 10, 64); err != nil {
			return "", fmt.Errorf("%w: %.10q where an integer belongs", errBadColumn, s)
		}
		return rest, nil
	case *[]byte:
		if rest, ok := strings.CutPrefix(s, "null"); ok {
			*d = nil
			return rest, nil
		}
		var h string
		if !strings.HasPrefix(s, `"`) {
			return "", fmt.Errorf("%w: %.10q where hex belongs", errBadColumn, s)
		}
		if h, rest, err = recordString(s); err == nil {
			*d, err = hex.DecodeString(h)
		}
	case interface{ setInt(int64) }: // an intCol
		num, rest := recordNumber(s)
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%w: %.10q where an integer belongs", errBadColumn, s)
		}
		d.setInt(n)
		return rest, nil
	case timeCol: // a time the Store wrote: null or Unix microseconds
		if rest, ok := strings.CutPrefix(s, "null"); ok {
			return rest, d.Scan(nil)
		}
		if num, rest := recordNumber(s); !strings.ContainsAny(num, ".eE") {
			if n, err := strconv.ParseInt(num, 10, 64); err == nil {
				d.setMicros(n)
				return rest, nil
			}
		}
		return scanAny(d, s) // text, or an error
	case interface { // a jsonCol: JSON the Store wrote, as a string
		sql.Scanner
		decode(string) error
	}:
		if strings.HasPrefix(s, `"`) {
			var str string
			if str, rest, err = recordString(s); err == nil {
				return rest, d.decode(str)
			}
			break
		}
		return scanAny(d, s) // null, or an error
	case sql.Scanner:
		return scanAny(d, s)
	default:
		return "", fmt.Errorf("sqlstore: cannot read a record value into %T", dest)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBadColumn, err)
	}
	return rest, nil
}

// scanAny reads the JSON value at the start of s and hands it to d as the
// driver would have handed it the column.
func scanAny(d sql.Scanner, s string) (rest string, err error) {
	v, rest, err := recordValue(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBadColumn, err)
	}
	return rest, d.Scan(v)
}

// recordValue reads the JSON value at the start of s: null, a number or a
// string, the kinds json_array makes of SQL values, and returns it as the
// driver would return the column (nil, int64, float64 or string) and the
// rest of s.
func recordValue(s string) (v any, rest string, err error) {
	if rest, ok := strings.CutPrefix(s, "null"); ok {
		return nil, rest, nil
	}
	if strings.HasPrefix(s, `"`) {
		return recordString(s)
	}
	num, rest := recordNumber(s)
	if num == "" {
		return nil, "", errors.New("not null, a number or a string")
	}
	if strings.ContainsAny(num, ".eE") {
		f, err := strconv.ParseFloat(num, 64)
		return f, rest, err
	}
	i, err := strconv.ParseInt(num, 10, 64)
	return i, rest, err
}

// skipSpace drops the JSON whitespace at the start of s.
func skipSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r') {
		s = s[1:]
	}
	return s
}

// recordNumber splits the JSON number at the start of s from the rest.
func recordNumber(s string) (num, rest string) {
	n := 0
	for ; n < len(s); n++ {
		if c := s[n]; (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
	}
	return s[:n], s[n:]
}

// recordString reads the JSON string at the start of s. One without
// escapes, the common case, is a substring of s. Bytes that are not UTF-8
// are kept, as the column would hold them.
func recordString(s string) (str, rest string, err error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			str, err := unescape(s[1:i])
			return str, s[i+1:], err
		}
	}
	return "", "", errors.New("unterminated string")
}

// unescape replaces the JSON escapes in s (a string's contents, without
// its quotes) by what they stand for. A lone surrogate becomes U+FFFD, as
// encoding/json has it.
func unescape(s string) (string, error) {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for ; i >= 0; i = strings.IndexByte(s, '\\') {
		b.WriteString(s[:i])
		if i+1 == len(s) {
			return "", errors.New("bad escape")
		}
		c := s[i+1]
		s = s[i+2:]
		switch c {
		case '"', '\\', '/':
			b.WriteByte(c)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(s)
			if !ok {
				return "", errors.New("bad \\u escape")
			}
			s = s[4:]
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(strings.TrimPrefix(s, `\u`)); ok && strings.HasPrefix(s, `\u`) {
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						r, s = pair, s[6:]
					}
				}
			}
			b.WriteRune(r) // a lone surrogate is written as U+FFFD
		default:
			return "", fmt.Errorf("bad escape \\%c", c)
		}
	}
	b.WriteString(s)
	return b.String(), nil
}

// hex4 reads the four hex digits at the start of s.
func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:4], 16, 16)
	return rune(n), err == nil
}
