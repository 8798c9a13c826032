package portal

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"30d", 30 * 24 * time.Hour, false},
		{"0d", 0, false},
		{"0", 0, false},
		{"36h", 36 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"36500d", 36500 * 24 * time.Hour, false},
		{"36501d", 0, true},
		{"-1h", 0, true},
		{"-1d", 0, true},
		{"+1d", 0, true},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"99999999999d", 0, true},
		{"1 d", 0, true},
		{"", 0, true},
		{"never", 0, true},
		{"9999999h", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if tt.err {
				assert.Error(t, err)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzParseDuration: parseDuration never panics, returns only durations
// in [0, 100 years], and reads back what formatDuration writes.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "0", "36h", "1h30m", "-1h", "+1d", "1.5d", "99999999999d", "1e9h", "0x10d", "\x00d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error too long: %d bytes", len(err.Error()))
			}
			return
		}
		if d < 0 || d > maxDuration {
			t.Fatalf("parseDuration(%q) = %v", s, d)
		}
		back, err := parseDuration(formatDuration(d))
		if err != nil || back != d {
			t.Fatalf("parseDuration(formatDuration(%v)) = %v, %v", d, back, err)
		}
	})
}

func TestParseAllowedIPs(t *testing.T) {
	got, err := parseAllowedIPs([]string{" 10.0.0.0/8 ", "192.0.2.7", "2001:db8::/32", "::1"})
	assert.NoError(t, err)
	assert.Equal(t, "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32 ::1/128]", fmt.Sprint(got))
	for _, bad := range []string{"10.0.0.0/33", "10.0.0/8", "host", "", "10.0.0.1/", "::ffff:1.2.3.4/90", "fe80::1%eth0"} {
		_, err := parseAllowedIPs([]string{bad})
		assert.Error(t, err, bad)
	}
}
