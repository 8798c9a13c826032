package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/envconfig"
)

// patternFormats are the values of patterns --format.
var patternFormats = []string{"all", "regex", "github", "gitlab", "gitleaks", "trufflehog"}

// runPatterns prints what secret scanners need to find this command's
// keys: the regular expression and checksum rule, the text to register a
// prefix with GitHub's and GitLab's partner programs, a gitleaks rule and
// a trufflehog custom detector.
func runPatterns(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("apikey patterns", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: apikey patterns [--prefix P[,P…]] [--format F] [--endpoint URL]\n\nflags:\n")
		fs.PrintDefaults()
	}
	prefixes := fs.String("prefix", "", "key prefix(es), comma-separated (default $APIKEY_PREFIX, else "+envconfig.DefaultPrefix+")")
	format := fs.String("format", "all", "what to print: "+strings.Join(patternFormats, ", "))
	endpoint := fs.String("endpoint", "https://api.example.com/leaks", "your leak report endpoint's base URL, for the registration text")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if !slices.Contains(patternFormats, *format) {
		fmt.Fprintf(e.stderr, "apikey patterns: --format %q: want one of %s\n", *format, strings.Join(patternFormats, ", "))
		fs.Usage()
		return errUsage
	}
	var ps []string
	for p := range strings.SplitSeq(envconfig.Prefix(*prefixes), ",") {
		p = strings.TrimSpace(p)
		if err := apikey.ValidatePrefix(p); err != nil {
			return fmt.Errorf("--prefix %q: %w", p, err)
		}
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	w := e.stdout
	sections := []struct {
		name  string
		print func(io.Writer, []string, string)
	}{
		{"regex", printRegex},
		{"github", printGitHub},
		{"gitlab", printGitLab},
		{"gitleaks", printGitleaks},
		{"trufflehog", printTrufflehog},
	}
	first := true
	for _, s := range sections {
		if *format != "all" && *format != s.name {
			continue
		}
		if !first {
			fmt.Fprintln(w)
		}
		first = false
		s.print(w, ps, strings.TrimRight(*endpoint, "/"))
	}
	return nil
}

// keyBody matches what follows a key's prefix: "_", the 12-character
// key ID, "_", the 43-character secret and the 6-character checksum, all
// base62.
var keyBody = fmt.Sprintf("_[0-9A-Za-z]{%d}_[0-9A-Za-z]{%d}", apikey.IDLen, apikey.SecretLen+apikey.ChecksumLen)

// prefixPattern is the regular expression of prefix's keys, without
// boundaries.
func prefixPattern(prefix string) string { return regexp.QuoteMeta(prefix) + keyBody }

// ruleID names prefix's rule in scanners' configurations: acme-live-api-key.
func ruleID(prefix string) string { return strings.ReplaceAll(prefix, "_", "-") + "-api-key" }

const checksumRule = `The last 6 characters are a checksum: the CRC-32 (IEEE 802.3, as in zlib) of
every character before them, prefix included, written in base62 with the
alphabet 0-9, A-Z, a-z in that order, most significant digit first, padded
on the left with 0 to 6 digits. A random string of the right shape passes
one time in 2^32; "apikey scan" and "apikey verify" check it.`

func printRegex(w io.Writer, prefixes []string, _ string) {
	fmt.Fprintln(w, "# Token format")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "<prefix>_<key ID: %d base62>_<secret: %d base62><checksum: %d base62>, %d characters after the prefix.\n",
		apikey.IDLen, apikey.SecretLen, apikey.ChecksumLen, 2+apikey.IDLen+apikey.SecretLen+apikey.ChecksumLen)
	fmt.Fprintln(w)
	for _, p := range prefixes {
		fmt.Fprintf(w, "pattern (%s):  %s\n", p, prefixPattern(p))
	}
	fmt.Fprintln(w, `before:  (?:\A|[^0-9A-Za-z_])`)
	fmt.Fprintln(w, `after:   (?:\z|[^0-9A-Za-z_])`)
	fmt.Fprintln(w)
	fmt.Fprintln(w, checksumRule)
}

func printGitHub(w io.Writer, prefixes []string, endpoint string) {
	fmt.Fprintln(w, "# GitHub secret scanning partner program")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Send to secret-scanning@github.com, one entry per prefix, with a test account's")
	fmt.Fprintln(w, "keys as samples (apikey create --owner github-test):")
	for _, p := range prefixes {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  Secret type:  %s_api_key\n", p)
		fmt.Fprintf(w, "  Pattern:      %s\n", prefixPattern(p))
		fmt.Fprintln(w, `  Before:       (?:\A|[^0-9A-Za-z_])`)
		fmt.Fprintln(w, `  After:        (?:\z|[^0-9A-Za-z_])`)
		fmt.Fprintf(w, "  Endpoint:     %s/github\n", endpoint)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "  Every key has a unique prefix, 256 random bits and a 32-bit checksum:")
	for _, line := range strings.Split(checksumRule, "\n") {
		fmt.Fprintln(w, "  "+line)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Serve the endpoint with leaks.GitHub(manager): it checks GitHub's signature")
	fmt.Fprintln(w, "and revokes every real, current key reported.")
}

func printGitLab(w io.Writer, prefixes []string, endpoint string) {
	fmt.Fprintln(w, "# GitLab leaked-credential notifications")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ask GitLab to join its partner program for leaked-credential notifications,")
	fmt.Fprintln(w, "with one entry per prefix:")
	for _, p := range prefixes {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  Token type:   %s_api_key\n", p)
		fmt.Fprintf(w, "  Regex:        %s\n", prefixPattern(p))
		fmt.Fprintf(w, "  Endpoint:     %s/gitlab\n", endpoint)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ask for the URL of the public keys that sign GitLab's notifications, and serve")
	fmt.Fprintln(w, "the endpoint with leaks.GitLab(manager, thatURL).")
}

func printGitleaks(w io.Writer, prefixes []string, _ string) {
	fmt.Fprintln(w, "# gitleaks rules (gitleaks --config this.toml). Add")
	fmt.Fprintln(w, "#   [extend]")
	fmt.Fprintln(w, "#   useDefault = true")
	fmt.Fprintln(w, "# to keep gitleaks' own rules as well. gitleaks cannot check the checksum:")
	fmt.Fprintln(w, "# run \"apikey scan\" on what it finds to tell keys from look-alikes.")
	for _, p := range prefixes {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "[[rules]]")
		fmt.Fprintf(w, "id = %q\n", ruleID(p))
		fmt.Fprintf(w, "description = %q\n", "API key with prefix "+p)
		fmt.Fprintf(w, "regex = '''(?:^|[^0-9A-Za-z_])(%s)(?:[^0-9A-Za-z_]|$)'''\n", prefixPattern(p))
		fmt.Fprintln(w, "secretGroup = 1")
		fmt.Fprintf(w, "keywords = [%q]\n", p+"_")
	}
}

func printTrufflehog(w io.Writer, prefixes []string, _ string) {
	fmt.Fprintln(w, "# trufflehog custom detectors (trufflehog filesystem --config this.yaml PATH).")
	fmt.Fprintln(w, "# trufflehog cannot check the checksum: run \"apikey scan\" on what it finds.")
	fmt.Fprintln(w, "detectors:")
	for _, p := range prefixes {
		fmt.Fprintf(w, "  - name: %s\n", ruleID(p))
		fmt.Fprintln(w, "    keywords:")
		fmt.Fprintf(w, "      - %s_\n", p)
		fmt.Fprintln(w, "    regex:")
		fmt.Fprintf(w, "      key: '\\b(%s)\\b'\n", prefixPattern(p))
	}
}
