package apikey_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func scanAll(t testing.TB, r io.Reader) []apikey.Finding {
	t.Helper()
	var out []apikey.Finding
	require.NoError(t, apikey.Scan(r, func(f apikey.Finding) error {
		out = append(out, f)
		return nil
	}))
	return out
}

// at is a Finding of a key written as is.
func at(line, column int, prefix, id string) apikey.Finding {
	return apikey.Finding{Line: line, Column: column, Prefix: prefix, ID: id}
}

func TestScan(t *testing.T) {
	live := knownTokens[0].token    // acme_live_AbCdEf123456_…
	eu := knownTokens[2].token      // acme_test_eu_Zz9Yy8Xx7Ww6_…
	bad := live[:len(live)-1] + "g" // checksum off by one character
	tests := []struct {
		name  string
		input string
		want  []apikey.Finding
	}{
		{"alone", live, []apikey.Finding{at(1, 1, "acme_live", "AbCdEf123456")}},
		{"in code", "const key = \"" + live + "\"\n", []apikey.Finding{at(1, 14, "acme_live", "AbCdEf123456")}},
		{"header", "x\r\nAuthorization: Bearer " + live + "\r\n", []apikey.Finding{at(2, 23, "acme_live", "AbCdEf123456")}},
		{"underscores in prefix", "k=" + eu, []apikey.Finding{at(1, 3, "acme_test_eu", "Zz9Yy8Xx7Ww6")}},
		{"text runs into it", "my_" + eu, []apikey.Finding{at(1, 4, "acme_test_eu", "Zz9Yy8Xx7Ww6")}},
		{"two on a line", live + " " + eu, []apikey.Finding{at(1, 1, "acme_live", "AbCdEf123456"), at(1, 74, "acme_test_eu", "Zz9Yy8Xx7Ww6")}},
		{"third line", "a\n\n" + live, []apikey.Finding{at(3, 1, "acme_live", "AbCdEf123456")}},
		{"bad checksum", bad, nil},
		{"followed by more key characters", live + "x", nil},
		{"followed by underscore", live + "_", nil},
		{"truncated", live[:len(live)-1], nil},
		{"uppercase prefix", "ACME_LIVE" + live[9:], nil},
		{"snake_case code", "some_identifier_with_many_parts = other_thing_here_too\n", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, scanAll(t, strings.NewReader(tt.input)))
			// Reading one byte at a time changes nothing.
			assert.Equal(t, tt.want, scanAll(t, iotest.OneByteReader(strings.NewReader(tt.input))))
		})
	}
}

func TestScanLongLines(t *testing.T) {
	// Keys on both sides of, and across, every 64 KiB boundary of a
	// single 1 MiB line are each found once, at the right column.
	live := knownTokens[0].token
	var b strings.Builder
	var want []apikey.Finding
	for b.Len() < 1<<20 {
		pad := (64<<10)*(len(want)/3+1) - b.Len() - 40 + len(want)%3*30
		if pad > 0 {
			b.WriteString(strings.Repeat(".", pad))
		}
		want = append(want, apikey.Finding{Line: 1, Column: b.Len() + 1, Prefix: "acme_live", ID: "AbCdEf123456"})
		b.WriteString(live)
		b.WriteString(" ")
	}
	b.WriteString("\n" + live)
	want = append(want, apikey.Finding{Line: 2, Column: 1, Prefix: "acme_live", ID: "AbCdEf123456"})
	assert.Equal(t, want, scanAll(t, strings.NewReader(b.String())))
}

func TestScanGeneratedKeys(t *testing.T) {
	var b strings.Builder
	var ids []string
	for i := 0; i < 200; i++ {
		tok, err := apikey.Generate(fmt.Sprintf("p%d_x", i%7))
		require.NoError(t, err)
		fmt.Fprintf(&b, "line %d: %q, and more\n", i, tok.Secret().Reveal())
		ids = append(ids, tok.ID)
	}
	found := scanAll(t, strings.NewReader(b.String()))
	require.Len(t, found, len(ids))
	for i, f := range found {
		assert.Equal(t, ids[i], f.ID)
		assert.Equal(t, i+1, f.Line)
		assert.Equal(t, 9+len(fmt.Sprint(i)), f.Column)
	}
}

func TestScanStops(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := apikey.Scan(strings.NewReader(knownTokens[0].token+"\n"+knownTokens[0].token), func(apikey.Finding) error {
		n++
		return stop
	})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 1, n)

	readErr := errors.New("disk on fire")
	err = apikey.Scan(iotest.ErrReader(readErr), func(apikey.Finding) error { return nil })
	require.ErrorIs(t, err, readErr)
}

// Encoders of the forms Scan decodes.
func utf16Text(s string, order binary.AppendByteOrder, bom bool) string {
	var b []byte
	if bom {
		b = order.AppendUint16(b, 0xFEFF)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = order.AppendUint16(b, u)
	}
	return string(b)
}

// percentAll escapes every byte of s.
func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

func TestScanDecodes(t *testing.T) {
	live := knownTokens[0].token // acme_live_AbCdEf123456_…
	b64 := func(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }
	found := func(line, column int, enc string) []apikey.Finding {
		return []apikey.Finding{{Line: line, Column: column, Prefix: "acme_live", ID: "AbCdEf123456", Encoding: enc}}
	}
	json := `{"api_key":"` + live + `"}`
	tests := []struct {
		name  string
		input string
		want  []apikey.Finding
	}{
		{"base64", "Authorization: Basic " + b64(base64.StdEncoding, "u:"+live) + "\n", found(1, 22, "base64")},
		{"base64 of JSON, key at offset 12", "x " + b64(base64.StdEncoding, json), found(1, 3+12/3*4, "base64")},
		{"base64 without padding", "x=" + b64(base64.RawStdEncoding, json) + ";", found(1, 3+12/3*4, "base64")},
		{"base64 whose text runs into it", "token" + b64(base64.StdEncoding, json), found(1, 6+12/3*4, "base64")},
		{"base64url", "?t=" + b64(base64.RawURLEncoding, "\xff\xfe\xfd"+live+"\xfb"), found(1, 4+4, "base64url")},
		{"base64 in quotes on line 2", "a\n\"" + b64(base64.StdEncoding, live) + "\"", found(2, 2, "base64")},
		{"hex", "k: " + hex.EncodeToString([]byte(live+"\n")), found(1, 4, "hex")},
		{"hex, upper case, odd offset", "k:" + strings.ToUpper(hex.EncodeToString([]byte("\x01"+live))), found(1, 3+2, "hex")},
		{"hex whose text runs into it", "0xa" + hex.EncodeToString([]byte(" "+live)), found(1, 4+2, "hex")},
		{"percent-encoded underscores", "GET /x?key=" + strings.ReplaceAll(live, "_", "%5F") + "&a=1", found(1, 12, "percent")},
		{"percent-encoded, every byte", "k=" + percentAll(live), found(1, 3, "percent")},
		{"percent-encoded, lower case", "k=" + strings.ToLower(percentAll(live)), found(1, 3, "percent")},
		{"UTF-16LE with BOM", utf16Text("é\r\nkey = "+live+"\r\n", binary.LittleEndian, true), found(2, 7, "utf-16le")},
		{"UTF-16BE with BOM", utf16Text("key = "+live, binary.BigEndian, true), found(1, 7, "utf-16be")},
		{"UTF-16LE without BOM", utf16Text("key = "+live, binary.LittleEndian, false), found(1, 7, "utf-16le")},
		{"UTF-16BE without BOM", utf16Text("key = "+live, binary.BigEndian, false), found(1, 7, "utf-16be")},
		{"UTF-16LE, surrogate pair before", utf16Text("😀 "+live, binary.LittleEndian, true), found(1, 6, "utf-16le")},
		{"UTF-16LE, unpaired surrogate before", "\xff\xfe\x00\xd8" + utf16Text(" "+live, binary.LittleEndian, false), found(1, 5, "utf-16le")},
		{"base64 in UTF-16LE", utf16Text("-enc "+b64(base64.StdEncoding, live), binary.LittleEndian, true), found(1, 6, "utf-16le+base64")},
		{"two encodings on a line, in order", hex.EncodeToString([]byte(live)) + " " + b64(base64.StdEncoding, live),
			append(found(1, 1, "hex"), found(1, 2+2*len(live), "base64")...)},
		{"as is, and in base64", live + " " + b64(base64.StdEncoding, live), append(found(1, 1, ""), found(1, 2+len(live), "base64")...)},
		{"base64 of a bad checksum", "x " + b64(base64.StdEncoding, live[:len(live)-1]+"g"), nil},
		{"hex of a key followed by a letter", hex.EncodeToString([]byte(live + "x")), nil},
		{"percent escape that is not one", "100%" + live[4:], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, scanAll(t, strings.NewReader(tt.input)))
			assert.Equal(t, tt.want, scanAll(t, iotest.OneByteReader(strings.NewReader(tt.input))))
		})
	}
}

func TestIsUTF16(t *testing.T) {
	tests := []struct {
		head string
		want bool
	}{
		{"\xff\xfe", true},
		{"\xfe\xff", true},
		{utf16Text("plain ASCII text", binary.LittleEndian, false), true},
		{utf16Text("plain ASCII text", binary.BigEndian, false), true},
		{"plain text", false},
		{"", false},
		{"\x00", false},
		{"\x00\x00\x00\x00", false},                // NULs on both sides: binary
		{"\x7fELF\x02\x01\x01\x00\x00\x00", false}, // an executable
		{"a\x00", false},                           // a single unit
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, apikey.IsUTF16([]byte(tt.head)), "%q", tt.head)
	}
}

func TestScanEncodedAcrossWindows(t *testing.T) {
	// Encoded keys before, across and after every 64 KiB boundary of a
	// 1 MiB line, and a 1 MiB run of base64 holding keys, are each found
	// once, at the column where they begin.
	live := knownTokens[0].token
	forms := []struct {
		enc, text string
		skip      int // bytes of text before the key begins
	}{
		{"base64", base64.StdEncoding.EncodeToString([]byte(live)), 0},
		{"hex", hex.EncodeToString([]byte(live)), 0},
		{"percent", percentAll(live), 0},
		{"", live, 0},
	}
	var b strings.Builder
	var want []apikey.Finding
	for i := 0; b.Len() < 1<<20; i++ {
		f := forms[i%len(forms)]
		// from 700 bytes before a boundary to 700 after it
		pad := (64<<10)*(i/8+1) - b.Len() - 700 + i%8*200
		if pad > 0 {
			b.WriteString(strings.Repeat(".", pad))
		}
		want = append(want, apikey.Finding{Line: 1, Column: b.Len() + 1 + f.skip, Prefix: "acme_live", ID: "AbCdEf123456", Encoding: f.enc})
		b.WriteString(f.text + " ")
	}
	// One long run of base64: keys at every alignment within it.
	b.WriteString("\n")
	var blob []byte
	var offsets []int
	for len(blob) < 1<<20 {
		offsets = append(offsets, len(blob))
		blob = append(blob, live...)
		blob = append(blob, make([]byte, 1000+len(offsets)%3)...)
	}
	enc := base64.StdEncoding.EncodeToString(blob)
	for _, o := range offsets {
		want = append(want, apikey.Finding{Line: 2, Column: o/3*4 + 1, Prefix: "acme_live", ID: "AbCdEf123456", Encoding: "base64"})
	}
	b.WriteString(enc)
	got := scanAll(t, strings.NewReader(b.String()))
	assert.Equal(t, len(want), len(got))
	assert.Equal(t, want, got)
}

// adversarialText is runs of run lowercase letters, each a valid prefix,
// before tails of the right shape whose checksum is wrong for every
// start: each is a candidate that the scanner must reject, after trying
// every start.
func adversarialText(n, run int) string {
	var b strings.Builder
	tail := "_AbCdEf123456_" + strings.Repeat("x", apikey.SecretLen) + "000000 "
	for b.Len() < n {
		b.WriteString(strings.Repeat("q", run))
		b.WriteString(tail)
	}
	return b.String()
}

// normalText is source-like text full of underscores, with a key every
// 100 lines.
func normalText(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "func handle_request_%d(ctx context.Context, user_id string) error { return do_thing(ctx, \"%d\") }\n", i, i)
		if i%100 == 0 {
			fmt.Fprintf(&b, "token := %q\n", knownTokens[i%len(knownTokens)].token)
		}
	}
	return b.String()
}

func TestScanAdversarialIsLinear(t *testing.T) {
	// Candidate tails after long runs of letters cost a small multiple of
	// the same text without them (underscores replaced), not the 80 to
	// 200 times they did when each candidate start was checksummed on its
	// own. Both texts are runs of base64 characters, which Scan decodes.
	// Best of several runs, to ride out a busy machine.
	if testing.Short() {
		t.Skip("times scans; skipped with -short")
	}
	perByte := func(text string) float64 {
		d := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			require.NoError(t, apikey.Scan(strings.NewReader(text), func(apikey.Finding) error { return nil }))
			d = min(d, time.Since(start))
		}
		return float64(d) / float64(len(text))
	}
	text := adversarialText(2<<20, apikey.MaxPrefixLen-2)
	adversarial, control := perByte(text), perByte(strings.ReplaceAll(text, "_", "Q"))
	normal := perByte(normalText(2 << 20))
	t.Logf("ns/byte: adversarial %.2f, without its underscores %.2f, source-like text %.2f", adversarial, control, normal)
	assert.Less(t, adversarial/control, 4.0, "adversarial text costs %.1fx the same text without candidates", adversarial/control)
}

func FuzzScan(f *testing.F) {
	f.Add("x "+knownTokens[0].token+"\n", 0, uint8(0))
	f.Add(knownTokens[2].token, 3, uint8(1))
	f.Add("a_b_c\n_______", 1, uint8(2))
	f.Add("%41%4 ==\n0123456789abcdef", 7, uint8(3))
	f.Add("\xff\xfe\x00\xd8", 2, uint8(5))
	f.Fuzz(func(t *testing.T, text string, at int, form uint8) {
		// Whatever the text, Scan never panics and reports only keys that
		// are there: as written, a valid key; encoded, a valid prefix and
		// kid.
		for _, f := range scanAll(t, strings.NewReader(text)) {
			require.NoError(t, apikey.ValidatePrefix(f.Prefix))
			require.Len(t, f.ID, apikey.IDLen)
			if f.Encoding != "" || apikey.IsUTF16([]byte(text)) {
				continue
			}
			lines := strings.Split(text, "\n")
			require.LessOrEqual(t, f.Line, len(lines))
			line := lines[f.Line-1]
			require.True(t, f.Column >= 1 && f.Column <= len(line))
			tail := line[f.Column-1:]
			require.GreaterOrEqual(t, len(tail), len(f.Prefix)+63)
			_, err := apikey.Parse(tail[:len(f.Prefix)+63])
			require.NoError(t, err)
		}

		// A key planted in the text, between spaces, in any form, is
		// found where it was planted, with its encoding.
		tok, err := apikey.Generate("fuzz_key")
		require.NoError(t, err)
		key := tok.Secret().Reveal()
		forms := []struct {
			enc   string
			text  string
			skip  int // bytes of the form before the key's first byte
			utf16 binary.AppendByteOrder
			bom   bool
		}{
			{"", key, 0, nil, false},
			{"base64", base64.StdEncoding.EncodeToString([]byte(`"` + key + `"`)), 0, nil, false},
			{"base64", base64.RawURLEncoding.EncodeToString([]byte(`"` + key + `"`)), 0, nil, false},
			{"hex", hex.EncodeToString([]byte(`"` + key + `"`)), 2, nil, false},
			{"percent", strings.ReplaceAll(key, "_", "%5f"), 0, nil, false},
			{"percent", percentAll(key), 0, nil, false},
			{"utf-16le", key, 0, binary.LittleEndian, true},
			{"utf-16be", key, 0, binary.BigEndian, true},
			{"utf-16le", key, 0, binary.LittleEndian, false},
			{"utf-16be", key, 0, binary.BigEndian, false},
		}
		form %= uint8(len(forms))
		p := forms[form]
		if p.utf16 != nil {
			// UTF-16 carries text, not bytes: make it valid UTF-8 and,
			// without a byte order mark, ASCII, which is what tells
			// UTF-16 without one apart.
			text = strings.ToValidUTF8(text, "\uFFFD")
			if !p.bom {
				text = strings.Map(func(r rune) rune { return ' ' + r%95 }, text)
			}
		}
		at = max(0, at) % (len(text) + 1)
		for p.utf16 != nil && at < len(text) && !utf8.RuneStart(text[at]) {
			at-- // between characters
		}
		planted := text[:at] + " " + p.text + " " + text[at:]
		line := 1 + strings.Count(text[:at], "\n")
		column := at - strings.LastIndexByte(text[:at], '\n') + 1 + p.skip
		stream := planted
		if p.utf16 != nil {
			stream = utf16Text(planted, p.utf16, p.bom)
		} else if apikey.IsUTF16([]byte(planted)) {
			return // read as UTF-16, as it should be
		}
		var got []apikey.Finding
		for _, f := range scanAll(t, strings.NewReader(stream)) {
			if f.ID == tok.ID {
				got = append(got, f)
			}
		}
		require.Len(t, got, 1, "planted %q in %q", p.text, text)
		assert.Equal(t, line, got[0].Line)
		assert.Equal(t, column, got[0].Column)
		assert.Equal(t, "fuzz_key", got[0].Prefix)
		assert.True(t, strings.HasPrefix(got[0].Encoding, p.enc), "encoding %q, want %q", got[0].Encoding, p.enc)
		if p.enc == "" {
			assert.Equal(t, "", got[0].Encoding)
		}
	})
}

// The scanning benchmarks: source-like text, adversarial text (every
// underscore a candidate, every start a valid prefix), and text that is
// all base64 (every byte decoded four times).
func BenchmarkScan(b *testing.B) {
	benchmarkScan(b, normalText(8<<20), true)
}

func BenchmarkScanAdversarial(b *testing.B) {
	benchmarkScan(b, adversarialText(8<<20, apikey.MaxPrefixLen-2), false)
}

func BenchmarkScanBase64(b *testing.B) {
	blob := make([]byte, 6<<20)
	for i := range blob {
		blob[i] = byte(i * 7919 >> 3)
	}
	benchmarkScan(b, base64.StdEncoding.EncodeToString(blob)+"\n", false)
}

func benchmarkScan(b *testing.B, text string, wantKeys bool) {
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := apikey.Scan(strings.NewReader(text), func(apikey.Finding) error { n++; return nil }); err != nil || (n > 0) != wantKeys {
			b.Fatal(err, n)
		}
	}
}
