package apikey_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in   string
		want apikey.Limit
		str  string // String() of the result; "" means in
	}{
		{"100/s", apikey.Limit{Rate: 100, Period: time.Second}, ""},
		{"1000/m", apikey.Limit{Rate: 1000, Period: time.Minute}, ""},
		{"10000/h", apikey.Limit{Rate: 10000, Period: time.Hour}, ""},
		{"5/1s", apikey.Limit{Rate: 5, Period: time.Second}, "5/s"},
		{"10/30s", apikey.Limit{Rate: 10, Period: 30 * time.Second}, ""},
		{"100/d", apikey.Limit{Rate: 100, Period: 24 * time.Hour}, ""},
		{"100/24h", apikey.Limit{Rate: 100, Period: 24 * time.Hour}, "100/d"},
		{"60/60s", apikey.Limit{Rate: 60, Period: time.Minute}, "60/m"},
		{"1/500ms", apikey.Limit{Rate: 1, Period: 500 * time.Millisecond}, ""},
		{"1/1500ms", apikey.Limit{Rate: 1, Period: 1500 * time.Millisecond}, ""},
		{"3/10us", apikey.Limit{Rate: 3, Period: 10 * time.Microsecond}, ""},
		{"3/10µs", apikey.Limit{Rate: 3, Period: 10 * time.Microsecond}, "3/10us"},
		{"7/7ns", apikey.Limit{Rate: 7, Period: 7 * time.Nanosecond}, ""},
		{"100/s,burst=200", apikey.Limit{Rate: 100, Period: time.Second, Burst: 200}, ""},
		{"100/s,burst=1", apikey.Limit{Rate: 100, Period: time.Second, Burst: 1}, ""},
		{"007/s", apikey.Limit{Rate: 7, Period: time.Second}, "7/s"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := apikey.ParseLimit(tt.in)
			if err != nil {
				t.Fatalf("ParseLimit(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseLimit(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			str := tt.str
			if str == "" {
				str = tt.in
			}
			if got.String() != str {
				t.Errorf("String() = %q, want %q", got.String(), str)
			}
		})
	}
}

func TestParseLimitErrors(t *testing.T) {
	tests := []struct {
		in, want string // want: a substring of the error
	}{
		{"", `at byte 0: want "/"`},
		{"100", `at byte 3: want "/"`},
		{"/s", "at byte 0: missing number"},
		{"0/s", "at byte 0: must be at least 1"},
		{"-1/s", `unexpected '-'`},
		{"+1/s", `unexpected '+'`},
		{"1.5/s", `unexpected '.'`},
		{"100/", "at byte 4: missing period unit"},
		{"100/5", "at byte 5: missing period unit"},
		{"100/x", `at byte 4: unknown period unit "x"`},
		{"100/sec", `unknown period unit "sec"`},
		{"100/1m30s", `unknown period unit "m30s"`},
		{"100/0s", "at byte 4: period must be at least 1"},
		{"100 /s", `unexpected ' '`},
		{"100/s ", `unknown period unit "s "`},
		{"100/s,", `at byte 6: want "burst=N"`},
		{"100/s,b=2", `at byte 6: want "burst=N"`},
		{"100/s,burst=", "at byte 12: burst missing number"},
		{"100/s,burst=0", "burst must be at least 1"},
		{"100/s,burst=-1", "burst unexpected '-'"},
		{"100/s,burst=2,burst=3", "burst unexpected ','"},
		{"99999999999999999999/s", "out of range"},
		{"1/99999999999d", "period out of range"},
		{"10/5ns", "more than one request per nanosecond"},
		{"1/d,burst=200", "longer than"},
		{"1/200d", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l, err := apikey.ParseLimit(tt.in)
			if err == nil {
				t.Fatalf("ParseLimit(%q) = %+v, want an error", tt.in, l)
			}
			if !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Errorf("error %v does not wrap ErrInvalidRequest", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseQuota(t *testing.T) {
	tests := []struct {
		in   string
		want apikey.Quota
		str  string
	}{
		{"10000/24h", apikey.Quota{Limit: 10000, Period: 24 * time.Hour}, "10000/d"},
		{"1000000/720h", apikey.Quota{Limit: 1000000, Period: 720 * time.Hour}, "1000000/30d"},
		{"100/d", apikey.Quota{Limit: 100, Period: 24 * time.Hour}, ""},
		{"100/30d", apikey.Quota{Limit: 100, Period: 30 * 24 * time.Hour}, ""},
		{"5/h", apikey.Quota{Limit: 5, Period: time.Hour}, ""},
		{"9223372036854775807/ns", apikey.Quota{Limit: 1<<63 - 1, Period: 1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := apikey.ParseQuota(tt.in)
			if err != nil {
				t.Fatalf("ParseQuota(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseQuota(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			str := tt.str
			if str == "" {
				str = tt.in
			}
			if got.String() != str {
				t.Errorf("String() = %q, want %q", got.String(), str)
			}
		})
	}
	for _, in := range []string{"", "100", "100/", "0/d", "100/d,burst=3", "9223372036854775808/d", "1/106752d", "1/q"} {
		if q, err := apikey.ParseQuota(in); err == nil || !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("ParseQuota(%q) = %+v, %v; want an error wrapping ErrInvalidRequest", in, q, err)
		}
	}
}

func TestLimitStringRoundTrip(t *testing.T) {
	for _, l := range []apikey.Limit{
		{Rate: 1, Period: time.Nanosecond},
		{Rate: 3, Period: 1001 * time.Nanosecond, Burst: 2},
		{Rate: 1 << 20, Period: 7 * 24 * time.Hour, Burst: 5},
		{Rate: 10, Period: 90 * time.Minute},
	} {
		got, err := apikey.ParseLimit(l.String())
		if err != nil || got != l {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", l.String(), got, err, l)
		}
	}
	if s := (apikey.Limit{}).String(); s != "0/0s" {
		t.Errorf("zero Limit String() = %q", s)
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"100/s", "5/1s", "10/30s,burst=20", "1/d", "3/10µs", "0/s", "1/1m30s", "100/s,burst="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := apikey.ParseLimit(s)
		if err != nil {
			if !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Fatalf("ParseLimit(%q): error %v does not wrap ErrInvalidRequest", s, err)
			}
			return
		}
		if l.Rate < 1 || l.Period < 1 || l.Burst < 0 || l.BurstSize() < 1 {
			t.Fatalf("ParseLimit(%q) = %+v: not usable", s, l)
		}
		again, err := apikey.ParseLimit(l.String())
		if err != nil || again != l {
			t.Fatalf("ParseLimit(%q) = %+v; String %q parses to %+v, %v", s, l, l.String(), again, err)
		}
	})
}

func FuzzParseQuota(f *testing.F) {
	for _, s := range []string{"10000/24h", "100/d", "1000000/720h", "1/ns", "9223372036854775807/ns", "0/d", "1/h,burst=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := apikey.ParseQuota(s)
		if err != nil {
			if !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Fatalf("ParseQuota(%q): error %v does not wrap ErrInvalidRequest", s, err)
			}
			return
		}
		if q.Limit < 1 || q.Period < 1 {
			t.Fatalf("ParseQuota(%q) = %+v: not usable", s, q)
		}
		again, err := apikey.ParseQuota(q.String())
		if err != nil || again != q {
			t.Fatalf("ParseQuota(%q) = %+v; String %q parses to %+v, %v", s, q, q.String(), again, err)
		}
	})
}
