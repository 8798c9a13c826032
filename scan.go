package apikey

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"hash/crc32"
	"io"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Finding is a key found by Scan: where it is and which key it is. It
// never holds the secret.
type Finding struct {
	Line   int    // 1-based line number
	Column int    // 1-based byte offset in its line where the key, as written, begins
	Prefix string // the key's prefix, e.g. "acme_live"
	ID     string // the key ID (kid)

	// Encoding says how the key was written: "" as is; "base64",
	// "base64url", "hex" or "percent" when Scan found it by decoding the
	// text there. In a UTF-16 stream it starts with "utf-16le" or
	// "utf-16be", followed by "+base64" and so on for an encoded key.
	Encoding string
}

// Encodings of Finding.Encoding.
const (
	encBase64    = "base64"
	encBase64URL = "base64url"
	encHex       = "hex"
	encPercent   = "percent"
	encUTF16LE   = "utf-16le"
	encUTF16BE   = "utf-16be"
)

// Scan reads r and calls found for each API key of this package's format
// in it, with any prefix, recognised by its shape and checksum: a random
// string of the right shape passes one time in 2^32. A key must not be
// followed by another letter, digit or underscore, since then where it
// ends is ambiguous; text before it may run into it, and the longest
// prefix whose checksum matches is reported.
//
// As secret scanners do, Scan also decodes one layer of encoding before
// matching: it finds keys inside runs of base64 or base64url (with or
// without padding, at any alignment), of hexadecimal digits, and in
// percent-encoded text. A stream that starts with a UTF-16 byte order
// mark, or whose first 512 bytes look like UTF-16 (see IsUTF16), is read
// as UTF-16 and decoded to UTF-8 first; its lines and columns are those
// of the decoded text. A key split over several lines, as in base64
// wrapped every 76 characters, is not found.
//
// Scan streams: it holds at most one line, or 64 KiB of a longer one, in
// memory, and its time is linear in the length of the input whatever the
// input. Findings are reported in order of line and column.
//
// Scan stops at the first error from r or from found and returns it.
func Scan(r io.Reader, found func(Finding) error) error {
	br := bufio.NewReaderSize(r, scanWindow)
	head, err := br.Peek(utf16SniffLen)
	if err != nil && err != io.EOF {
		return err
	}
	s := scanner{found: found}
	src := br
	if order, bom, ok := sniffUTF16(head); ok {
		br.Discard(bom)
		s.outer = encUTF16LE
		if order == binary.BigEndian {
			s.outer = encUTF16BE
		}
		src = bufio.NewReaderSize(&utf16Reader{r: br, order: order}, scanWindow)
	}
	return s.run(src)
}

const (
	// scanWindow is how much of a long line Scan holds at once.
	scanWindow = 64 << 10
	// scanOverlap is the longest a key can be once written in an
	// encoding (percent-encoding: three bytes for each of its bytes). The
	// last scanOverlap bytes of a window are scanned again with the next
	// one, so a key straddling two windows is found in the second.
	scanOverlap = 3 * MaxTokenLen
	// minTokenLen is the length of the shortest key: a one-letter prefix.
	minTokenLen = 1 + fixedTail
	// minBase64Run and minHexRun are the shortest runs that can hold a key.
	minBase64Run = (minTokenLen*8 + 5) / 6
	minHexRun    = 2 * minTokenLen
	// utf16SniffLen is how much of a stream IsUTF16 looks at.
	utf16SniffLen = 512
)

// scanner holds the state of one Scan.
type scanner struct {
	found func(Finding) error
	outer string // "" or the stream's UTF-16 encoding

	line int   // the current line, 1-based
	hits []hit // the keys found in the current window
	dec  []byte
	offs []int // for percent-decoded text, each decoded byte's offset
}

// hit is a key found in a window: where it begins as written, its
// prefix and kid, and its encoding.
type hit struct {
	at         int
	prefix, id string
	enc        string
}

// run reads lines, or windows of over-long lines, and scans each.
func (s *scanner) run(br *bufio.Reader) error {
	s.line = 1
	col := 0          // bytes of the current line already consumed
	var carry []byte  // the tail of an over-long line, kept for overlap
	var joined []byte // carry and the next chunk
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			buf := chunk
			if len(carry) > 0 {
				joined = append(append(joined[:0], carry...), chunk...)
				buf = joined
			}
			complete := chunk[len(chunk)-1] == '\n'
			// In a partial line, a key may straddle the end of buf:
			// report only keys that begin early enough to lie wholly
			// in it, and scan the rest again with what follows.
			limit := len(buf)
			if !complete && err != io.EOF {
				limit = max(0, len(buf)-scanOverlap)
			}
			if ferr := s.window(buf, limit, col-len(carry)); ferr != nil {
				return ferr
			}
			if complete {
				s.line, col, carry = s.line+1, 0, carry[:0]
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

// window reports the keys that begin before limit in buf, a line or part
// of one that begins at byte base of its line: keys as written, then
// keys in encoded runs, in order of column.
func (s *scanner) window(buf []byte, limit, base int) error {
	s.hits = s.hits[:0]
	add := func(at, start, end int, text []byte, enc string) {
		if at < limit {
			s.hits = append(s.hits, hit{at: at, prefix: string(text[start : end-fixedTail]),
				id: string(text[end-fixedTail+1 : end-fixedTail+1+IDLen]), enc: enc})
		}
	}
	scanPlain(buf, func(start, end int) { add(start, start, end, buf, "") })
	eachRun(buf, &base64Value, minBase64Run, func(rs, re int) {
		s.base64Run(buf[rs:re], rs, add)
		eachRun(buf[rs:re], &hexValue, minHexRun, func(hs, he int) {
			s.hexRun(buf[rs+hs:rs+he], rs+hs, add)
		})
	})
	if hasEscape(buf) {
		s.percent(buf, add)
	}
	slices.SortStableFunc(s.hits, func(a, b hit) int { return cmp.Compare(a.at, b.at) })
	for _, h := range s.hits {
		enc := h.enc
		if s.outer != "" {
			enc = s.outer + "+" + enc
			if h.enc == "" {
				enc = s.outer
			}
		}
		if err := s.found(Finding{Line: s.line, Column: base + h.at + 1, Prefix: h.prefix, ID: h.id, Encoding: enc}); err != nil {
			return err
		}
	}
	return nil
}

// adder records a key found between start and end of text (decoded
// text, or buf itself), written at offset at of the window.
type adder func(at, start, end int, text []byte, enc string)

// base64Run decodes run, a run of base64 characters at offset at of the
// window, at each of its four alignments (text may run into it), and
// records the keys in it. It reads both alphabets at once, and names the
// encoding base64url if the run holds '-' or '_'.
func (s *scanner) base64Run(run []byte, at int, add adder) {
	enc := encBase64
	if bytes.ContainsAny(run, "-_") {
		enc = encBase64URL
	}
	for a := range 4 {
		if len(run)-a < minBase64Run {
			break
		}
		src := run[a:]
		s.dec = decodeBase64(s.dec[:0], src)
		scanPlain(s.dec, func(start, end int) { add(at+a+start/3*4, start, end, s.dec, enc) })
	}
}

// hexRun decodes run, a run of hexadecimal digits at offset at of the
// window, at both alignments, and records the keys in it.
func (s *scanner) hexRun(run []byte, at int, add adder) {
	for a := range 2 {
		src := run[a:]
		s.dec = s.dec[:0]
		for i := 0; i+1 < len(src); i += 2 {
			s.dec = append(s.dec, byte(hexValue[src[i]])<<4|byte(hexValue[src[i+1]]))
		}
		scanPlain(s.dec, func(start, end int) { add(at+a+2*start, start, end, s.dec, encHex) })
	}
}

// percent decodes every %XX escape in buf and records the keys in the
// result that contain at least one escape (the others were found as
// written).
func (s *scanner) percent(buf []byte, add adder) {
	s.dec, s.offs = s.dec[:0], s.offs[:0]
	for i := 0; i < len(buf); {
		s.offs = append(s.offs, i)
		if isEscape(buf, i) {
			s.dec = append(s.dec, byte(hexValue[buf[i+1]])<<4|byte(hexValue[buf[i+2]]))
			i += 3
			continue
		}
		s.dec = append(s.dec, buf[i])
		i++
	}
	s.offs = append(s.offs, len(buf))
	scanPlain(s.dec, func(start, end int) {
		if s.offs[end]-s.offs[start] != end-start {
			add(s.offs[start], start, end, s.dec, encPercent)
		}
	})
}

// hasEscape reports whether buf holds a %XX escape.
func hasEscape(buf []byte) bool {
	for i := 0; ; i++ {
		j := bytes.IndexByte(buf[i:], '%')
		if j < 0 {
			return false
		}
		if i += j; isEscape(buf, i) {
			return true
		}
	}
}

func isEscape(buf []byte, i int) bool {
	return buf[i] == '%' && i+2 < len(buf) && hexValue[buf[i+1]] >= 0 && hexValue[buf[i+2]] >= 0
}

// scanPlain calls found with the start and end of every key written as
// is in buf. It looks for the fixed-width tail "_" kid "_" secret crc
// around each underscore, then for a prefix before it whose checksum
// matches. Candidate tails are at least a tail's length apart, and each
// costs at most MaxTokenLen steps, so the time is linear in len(buf).
func scanPlain(buf []byte, found func(start, end int)) {
	for i := 0; i < len(buf); {
		j := bytes.IndexByte(buf[i:], '_')
		if j < 0 {
			return
		}
		u := i + j // candidate for the underscore between kid and secret
		i = u + 1
		idAt, end := u-IDLen, u+1+SecretLen+ChecksumLen
		if idAt < 2 || end > len(buf) || buf[idAt-1] != '_' ||
			!isBase62(stringView(buf[idAt:u])) || !isBase62(stringView(buf[u+1:end])) ||
			(end < len(buf) && isKeyByte(buf[end])) {
			continue
		}
		if start, ok := matchPrefix(buf, idAt-1, end); ok {
			found(start, end)
			i = end
		}
	}
}

// matchPrefix finds where a key ending at end starts, given that its
// prefix ends at sep (the underscore before the kid). Text may run into the
// key from the left ("token=acme_live_…", or "xacme_live_…"), so every
// start within reach that begins a valid prefix is a candidate, and the
// longest whose checksum matches wins.
//
// Rather than computing a checksum for each candidate, it runs CRC-32
// backwards, once: from the register the checksum implies after the last
// byte, it undoes one byte at a time towards the start. A candidate start
// matches when the register there is the one CRC-32 starts from. Each
// step is undone exactly (crcUnstep), so this agrees with
// crc32.ChecksumIEEE on every candidate.
func matchPrefix(buf []byte, sep, end int) (start int, ok bool) {
	want, ok := decodeChecksum(stringView(buf[end-ChecksumLen : end]))
	if !ok {
		return 0, false
	}
	reg := ^want // the register after the last byte
	for k := end - ChecksumLen - 1; k >= sep; k-- {
		reg = crcUnstep(reg, buf[k])
	}
	ok = false
	for k := sep - 1; k >= max(0, end-MaxTokenLen); k-- {
		c := buf[k]
		// buf[k:sep] stays a valid prefix's tail while it is [a-z0-9_]
		// with every underscore followed by [a-z0-9] (buf[sep] is '_').
		if c == '_' && buf[k+1] == '_' || c != '_' && !isLower(c) && !isDigit(c) {
			break
		}
		reg = crcUnstep(reg, c)
		if reg == crcStart && isLower(c) {
			start, ok = k, true
		}
	}
	return start, ok
}

// crcStart is the CRC-32 register before the first byte.
const crcStart = 0xFFFFFFFF

// crcUnstep undoes one step of table-driven CRC-32 (IEEE): given the
// register after byte c, it returns the register before it. A step is
// next = T[(reg^c)&0xff] ^ reg>>8, and the top bytes of the 256 entries
// of T are all different, so the top byte of next names the entry
// (crcBack), and the entry gives back reg.
func crcUnstep(next uint32, c byte) uint32 {
	b := &crcBack[next>>24]
	return (next^b.entry)<<8 | uint32(b.index^c)
}

// crcBack maps the top byte of each entry of crc32.IEEETable to the entry
// and its index.
var crcBack = func() (t [256]struct {
	entry uint32
	index byte
}) {
	for i, v := range crc32.IEEETable {
		t[v>>24].entry, t[v>>24].index = v, byte(i)
	}
	return t
}()

// eachRun calls fn with the bounds of every maximal run of at least min
// bytes of buf that class maps to a value (not -1). It probes every
// min-th byte and looks around only those in the class, so in text
// without long runs it reads most bytes not at all, and none more than
// twice.
func eachRun(buf []byte, class *[256]int8, min int, fn func(start, end int)) {
	for i := 0; i+min <= len(buf); {
		p := i + min - 1
		if class[buf[p]] < 0 {
			i = p + 1
			continue
		}
		start, end := p, p+1
		for start > i && class[buf[start-1]] >= 0 {
			start--
		}
		for end < len(buf) && class[buf[end]] >= 0 {
			end++
		}
		if end-start >= min {
			fn(start, end)
		}
		i = end + 1
	}
}

// decodeBase64 returns in dst the bytes that src, base64 or base64url
// without padding, encodes; a final group of one character is dropped.
func decodeBase64(dst, src []byte) []byte {
	groups, rest := len(src)/4, len(src)%4
	dst = slices.Grow(dst[:0], groups*3+2)[:groups*3]
	for g := range groups {
		c := src[g*4 : g*4+4]
		v := uint32(base64Value[c[0]])<<18 | uint32(base64Value[c[1]])<<12 |
			uint32(base64Value[c[2]])<<6 | uint32(base64Value[c[3]])
		dst[g*3], dst[g*3+1], dst[g*3+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	if rest >= 2 {
		c := src[groups*4:]
		v := uint32(base64Value[c[0]])<<18 | uint32(base64Value[c[1]])<<12
		if rest == 3 {
			v |= uint32(base64Value[c[2]]) << 6
			return append(dst, byte(v>>16), byte(v>>8))
		}
		return append(dst, byte(v>>16))
	}
	return dst
}

// base64Value maps a base64 or base64url character to its value, and
// any other byte to -1: both alphabets at once, '+' and '-' being 62,
// '/' and '_' 63.
var base64Value = func() (t [256]int8) {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		t[i] = -1
	}
	for i := range len(chars) {
		t[chars[i]] = int8(i)
	}
	t['-'], t['_'] = 62, 63
	return t
}()

// hexValue maps a hexadecimal digit, in either case, to its value, and
// any other byte to -1.
var hexValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = int8(c-'a'+10), int8(c-'a'+10)
	}
	return t
}()

// isKeyByte reports whether c can be part of a key.
func isKeyByte(c byte) bool { return base62Value[c] >= 0 || c == '_' }

// stringView views b as a string without copying, for read-only checks
// that do not retain it.
func stringView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// IsUTF16 reports whether Scan reads a stream that begins with head as
// UTF-16: head starts with a byte order mark (FF FE, little-endian; FE
// FF, big-endian), or, in its first 512 bytes, more than half of the
// high bytes of the 16-bit units are zero while at most one in eight of
// the low bytes are, as in text that is mostly ASCII. Programs that skip
// binary files by looking for a NUL byte, as the apikey command does,
// call it so as not to skip UTF-16 text.
func IsUTF16(head []byte) bool {
	_, _, ok := sniffUTF16(head)
	return ok
}

// sniffUTF16 is IsUTF16, also returning the byte order and the length of
// the byte order mark.
func sniffUTF16(head []byte) (order binary.ByteOrder, bom int, ok bool) {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		return binary.LittleEndian, 2, true
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return binary.BigEndian, 2, true
	}
	head = head[:min(len(head), utf16SniffLen)&^1]
	units := len(head) / 2
	if units < 2 {
		return nil, 0, false
	}
	var even, odd int // zero bytes at even and at odd offsets
	for i := 0; i < len(head); i += 2 {
		if head[i] == 0 {
			even++
		}
		if head[i+1] == 0 {
			odd++
		}
	}
	switch {
	case odd*2 > units && even*8 <= units:
		return binary.LittleEndian, 0, true
	case even*2 > units && odd*8 <= units:
		return binary.BigEndian, 0, true
	}
	return nil, 0, false
}

// utf16Reader decodes UTF-16 to UTF-8. An unpaired surrogate becomes
// U+FFFD; an odd final byte is dropped.
type utf16Reader struct {
	r     *bufio.Reader
	order binary.ByteOrder
	rest  []byte // the bytes of a decoded rune that did not fit
	buf   [utf8.UTFMax]byte
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	n := copy(p, u.rest)
	u.rest = u.rest[n:]
	for n < len(p) {
		c, err := u.unit()
		if err != nil {
			return n, err
		}
		r := rune(c)
		if utf16.IsSurrogate(r) {
			r = utf8.RuneError
			if next, err := u.r.Peek(2); c < 0xDC00 && err == nil {
				if pair := utf16.DecodeRune(rune(c), rune(u.order.Uint16(next))); pair != utf8.RuneError {
					r = pair
					u.r.Discard(2)
				}
			}
		}
		if r < utf8.RuneSelf {
			p[n] = byte(r)
			n++
			continue
		}
		w := utf8.EncodeRune(u.buf[:], r)
		k := copy(p[n:], u.buf[:w])
		n += k
		u.rest = u.buf[k:w]
	}
	return n, nil
}

// unit reads one 16-bit unit.
func (u *utf16Reader) unit() (uint16, error) {
	b, err := u.r.Peek(2)
	if len(b) < 2 {
		if err == nil || err == bufio.ErrBufferFull {
			err = io.EOF
		}
		return 0, err
	}
	u.r.Discard(2)
	return u.order.Uint16(b), nil
}
