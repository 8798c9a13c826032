package main

import (
	"strings"
	"testing"
	"time"
)

// FuzzParsePrefix: the --allow-ip parser never panics, and what it accepts
// is a valid prefix that contains the address it was written with.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:1.2.3.4", "1.2.3.4/33", "", "fe80::1%eth0", "x/8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePrefix(s)
		if err != nil {
			return
		}
		if !p.IsValid() {
			t.Fatalf("parsePrefix(%q) = invalid prefix %v", s, p)
		}
		if !strings.Contains(s, "/") && p.Bits() != p.Addr().BitLen() {
			t.Fatalf("parsePrefix(%q) = %v: a single address must be a full-length prefix", s, p)
		}
	})
}

// FuzzListFlag: a comma-separated flag value never yields empty or
// space-padded items.
func FuzzListFlag(f *testing.F) {
	f.Add("orders:read,billing:*")
	f.Add(" a , ,b,")
	f.Fuzz(func(t *testing.T, v string) {
		var l listFlag
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
		for _, item := range l {
			if item == "" || strings.TrimSpace(item) != item {
				t.Fatalf("Set(%q) gave item %q", v, item)
			}
		}
	})
}

// FuzzKeyID: an argument naming a key is taken as a key ID only if it is
// shaped like one, or is a valid key; an error never quotes an argument
// shaped like a key.
func FuzzKeyID(f *testing.F) {
	key := "acme_live_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKf"
	for _, s := range []string{key, key[:len(key)-1] + "g", key + "x", "AbCdEf123456", "nope", "", "x" + key} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		id, err := keyID(arg)
		if err != nil {
			if looksLikeKey(arg) && strings.Contains(err.Error(), arg) {
				t.Fatalf("keyID(%q): the error quotes it: %v", arg, err)
			}
			if looksLikeKey(redact(err.Error())) {
				t.Fatalf("keyID(%q): the error, redacted, still looks like a key: %v", arg, err)
			}
			return
		}
		if len(id) != 12 || !base62(id) {
			t.Fatalf("keyID(%q) = %q, not a key ID", arg, id)
		}
	})
}

// FuzzRedact: whatever the text, nothing in what redact returns looks
// like a key or a secret, and text without either is left as it is.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"acme_live_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKf",
		"postgres://u:pw@h/db?password=x&sslpassword=y", "no key here", "_AbCdEf123456_AbCdEf12_",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := redact(s)
		if looksLikeKey(out) {
			t.Fatalf("redact(%q) = %q, which still looks like a key", s, out)
		}
		if !looksLikeKey(s) && !strings.Contains(s, "://") && !strings.Contains(s, "=") && out != s {
			t.Fatalf("redact(%q) = %q: changed text with nothing to hide", s, out)
		}
	})
}

// FuzzParseLifetime: the lifetime and time parsers never panic, accept
// every Go duration that is not negative, and never return a negative
// length or a time before now.
func FuzzParseLifetime(f *testing.F) {
	for _, s := range []string{"30d", "1d12h", "720h", "0d", "-3d", "d", "1.5d", "+1d", "106751d", "106752d", "2027-01-31", "2027-01-31T09:00:00Z", "1d-1h"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseLifetime(s)
		if err == nil && d < 0 {
			t.Fatalf("parseLifetime(%q) = %v, negative", s, d)
		}
		if std, stdErr := time.ParseDuration(s); stdErr == nil && std >= 0 && (err != nil || d != std) {
			t.Fatalf("parseLifetime(%q) = %v, %v; time.ParseDuration says %v", s, d, err, std)
		}
		if at, err := parseTime(s, now); err == nil && d >= 0 && parseErr(s) == nil && at.Before(now) {
			t.Fatalf("parseTime(%q) = %v, before now", s, at)
		}
	})
}

func parseErr(s string) error { _, err := parseLifetime(s); return err }
