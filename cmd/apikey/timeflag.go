package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The flags that take a length of time (--grace) read it with
// parseLifetime; those that take a point in time (--expires, --not-before)
// with parseTime.

// lifetimeSyntax and timeSyntax describe them in help and errors.
const (
	lifetimeSyntax = "a duration such as 720h or 90m, or days such as 30d or 1d12h"
	timeSyntax     = "a time from now (" + lifetimeSyntax + "), a date such as 2027-01-31 (midnight UTC), or an RFC 3339 time such as 2027-01-31T09:00:00Z"
)

// parseLifetime reads s as time.ParseDuration does, or as a whole number
// of days ("30d"), which may be followed by a duration ("1d12h"). A day
// is 24 hours. It refuses negative lengths and ones that overflow.
func parseLifetime(s string) (time.Duration, error) {
	days, rest, hasDays := strings.Cut(s, "d") // no unit of ParseDuration holds a "d"
	if !hasDays {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("want %s", lifetimeSyntax)
		}
		return d, nil
	}
	n, err := strconv.ParseUint(days, 10, 64)
	if err != nil || days == "" || days[0] == '+' {
		return 0, fmt.Errorf("want %s", lifetimeSyntax)
	}
	const day = 24 * time.Hour
	if n > uint64(math.MaxInt64/day) {
		return 0, fmt.Errorf("%s days is too long", days)
	}
	d := time.Duration(n) * day
	if rest != "" {
		more, err := time.ParseDuration(rest)
		if err != nil || more < 0 {
			return 0, fmt.Errorf("want %s", lifetimeSyntax)
		}
		if more > math.MaxInt64-d {
			return 0, fmt.Errorf("%s is too long", s)
		}
		d += more
	}
	return d, nil
}

// parseTime reads s as a point in time: a lifetime from now (see
// parseLifetime), a date (midnight UTC), or an RFC 3339 time.
func parseTime(s string, now time.Time) (time.Time, error) {
	if d, err := parseLifetime(s); err == nil {
		if now.Add(d).Before(now) {
			return time.Time{}, fmt.Errorf("%s is too long", s)
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want %s", timeSyntax)
}
