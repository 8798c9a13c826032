package portal

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFormatCount(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 7: "7", 999: "999", 1000: "1,000", 12345: "12,345", 1234567: "1,234,567",
		-1000: "-1,000", math.MaxInt64: "9,223,372,036,854,775,807", math.MinInt64: "-9,223,372,036,854,775,808",
	} {
		assert.Equal(t, want, formatCount(n), "%d", n)
	}
}

func TestParseMonth(t *testing.T) {
	m, err := parseMonth("2026-12")
	assert.NoError(t, err)
	assert.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), m)
	for _, s := range []string{"", "2026", "2026-00", "2026-13", "2026-1", "2026-12-01", "2026-12 ", " 2026-12", "２０２６-12"} {
		_, err := parseMonth(s)
		assert.Error(t, err, "%q", s)
	}
}

// FuzzParseMonth: parseMonth never panics, and what it accepts is the
// 1st of a month at 00:00 UTC that formats back to its input.
func FuzzParseMonth(f *testing.F) {
	for _, s := range []string{"2026-12", "0001-01", "9999-12", "2026-13", "2026-1", "", "-0001-01", "2026-12\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMonth(s)
		if err != nil {
			return
		}
		if m.Location() != time.UTC || m.Day() != 1 || m.Hour() != 0 || m.Minute() != 0 || m.Second() != 0 || m.Nanosecond() != 0 {
			t.Fatalf("%q → %v: not the start of a month in UTC", s, m)
		}
		if got := m.Format("2006-01"); got != s {
			t.Fatalf("%q → %v formats as %q", s, m, got)
		}
	})
}
