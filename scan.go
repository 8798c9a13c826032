package apikey

import (
	"bufio"
	"bytes"
	"hash/crc32"
	"io"
	"unsafe"
)

// Finding is a key found by Scan: where it is and which key it is. It
// never holds the secret.
type Finding struct {
	Line   int    // 1-based line number
	Column int    // 1-based byte offset of the key's first byte in its line
	Prefix string // the key's prefix, e.g. "acme_live"
	ID     string // the key ID (kid)
}

// Scan reads r and calls found for each API key of this package's format
// in it, with any prefix, recognised by its shape and checksum: a random
// string of the right shape passes one time in 2^32. It streams, holding
// at most one line (or 64 KiB of a longer one) in memory. A key must not
// be followed by another letter, digit or underscore, since then where it
// ends is ambiguous; text before it may run into it, and the longest prefix
// whose checksum matches is reported.
//
// Scan stops at the first error from r or from found and returns it.
func Scan(r io.Reader, found func(Finding) error) error {
	const window = 64 << 10
	br := bufio.NewReaderSize(r, window)
	line, col := 1, 0 // col: bytes of the current line already consumed
	var carry []byte  // the tail of an over-long line, kept for overlap
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			buf := chunk
			if len(carry) > 0 {
				buf = append(carry, chunk...)
			}
			complete := chunk[len(chunk)-1] == '\n'
			// In a partial line, a key may straddle the end of buf: scan
			// only what cannot be part of one, and keep the rest.
			limit := len(buf)
			if !complete && err != io.EOF {
				limit = max(0, len(buf)-MaxTokenLen)
			}
			base := col - len(carry)
			if ferr := scanLine(buf, limit, func(at int, t Token) error {
				return found(Finding{Line: line, Column: base + at + 1, Prefix: t.Prefix, ID: t.ID})
			}); ferr != nil {
				return ferr
			}
			if complete {
				line, col, carry = line+1, 0, carry[:0]
			} else {
				col += len(chunk)
				carry = append(carry[:0], buf[limit:]...)
			}
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return nil
		default:
			return err
		}
	}
}

// scanLine reports every key that starts before limit in buf, with its
// offset. It looks for the fixed-width tail "_" kid "_" secret crc around
// each underscore, then for a prefix before it whose checksum matches.
func scanLine(buf []byte, limit int, found func(at int, t Token) error) error {
	for i := 0; i < len(buf); {
		j := bytes.IndexByte(buf[i:], '_')
		if j < 0 {
			return nil
		}
		u := i + j // candidate for the underscore between kid and secret
		i = u + 1
		idAt, end := u-IDLen, u+1+SecretLen+ChecksumLen
		if idAt < 2 || end > len(buf) || buf[idAt-1] != '_' ||
			!isBase62(stringView(buf[idAt:u])) || !isBase62(stringView(buf[u+1:end])) ||
			(end < len(buf) && isKeyByte(buf[end])) {
			continue
		}
		start, ok := matchPrefix(buf, idAt-1, end)
		if !ok || start >= limit {
			continue
		}
		t := Token{Prefix: string(buf[start : idAt-1]), ID: string(buf[idAt:u])}
		if err := found(start, t); err != nil {
			return err
		}
		i = end
	}
	return nil
}

// matchPrefix finds where a key ending at end starts, given that its
// prefix ends at sep (the underscore before the kid). Text may run into the
// key from the left ("token=acme_live_…", or "xacme_live_…"), so it tries
// each start within reach, longest prefix first, and takes the first that
// is a valid prefix with a matching checksum.
func matchPrefix(buf []byte, sep, end int) (start int, ok bool) {
	want, ok := decodeChecksum(stringView(buf[end-ChecksumLen : end]))
	if !ok {
		return 0, false
	}
	for s := max(0, end-MaxTokenLen); s < sep; s++ {
		if isLower(buf[s]) && validPrefix(stringView(buf[s:sep])) &&
			crc32.ChecksumIEEE(buf[s:end-ChecksumLen]) == want {
			return s, true
		}
	}
	return 0, false
}

// isKeyByte reports whether c can be part of a key.
func isKeyByte(c byte) bool { return base62Value[c] >= 0 || c == '_' }

// stringView views b as a string without copying, for read-only checks
// that do not retain it.
func stringView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
