package main

import (
	"strings"
	"testing"
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
