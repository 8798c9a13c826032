package main

import (
	"strings"
	"testing"
)

// FuzzParsePrefixes: the -trusted-proxies parser never panics and accepts
// only valid prefixes, one per non-empty comma-separated item.
func FuzzParsePrefixes(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.0.0.0/8, 192.168.0.0/16", "::1/128,", "1.2.3.4", "", " , "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parsePrefixes(s)
		if err != nil {
			return
		}
		items := 0
		for _, item := range strings.Split(s, ",") {
			if strings.TrimSpace(item) != "" {
				items++
			}
		}
		if len(ps) != items {
			t.Fatalf("parsePrefixes(%q) = %v: %d prefixes for %d items", s, ps, len(ps), items)
		}
		for _, p := range ps {
			if !p.IsValid() {
				t.Fatalf("parsePrefixes(%q) gave invalid %v", s, p)
			}
		}
	})
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://acme:s3cret@db:5432/acme":                       "postgres://acme:***@db:5432/acme",
		"postgres://acme:p@ss:w@rd@db/acme":                         "postgres://acme:***@db/acme",
		"postgres://acme@db/acme":                                   "postgres://acme@db/acme",
		"postgres://acme@db/acme?sslmode=verify-full&password=x":    "postgres://acme@db/acme?sslmode=verify-full&password=***",
		"postgres://db/acme?sslpassword=k3y&user=acme":              "postgres://db/acme?sslpassword=***&user=acme",
		"postgres://db/acme?PASSWORD=x&auth_token=y":                "postgres://db/acme?PASSWORD=***&auth_token=***",
		"host=db user=acme password='two words' dbname=acme":        "host=db user=acme password=*** dbname=acme",
		"sqlite:quickstart.db":                                      "sqlite:quickstart.db",
		"sqlite:keys.db?password=x":                                 "sqlite:keys.db?password=***",
		"file:keys.db?_pragma=busy_timeout(5000)":                   "file:keys.db?_pragma=busy_timeout(5000)",
		`-redis: parse "redis://:s3cret@127.0.0.1:x": invalid port`: `-redis: parse "redis://:***@127.0.0.1:x": invalid port`,
		"redis://default:s3cret@cache:6379/0":                       "redis://default:***@cache:6379/0",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}
