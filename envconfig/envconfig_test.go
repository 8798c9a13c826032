package envconfig_test

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/envconfig"
	"github.com/apikeykit/apikey/memstore"
)

var allVars = []string{
	envconfig.VarDB, envconfig.VarPrefix,
	envconfig.VarPepper, envconfig.VarPepperVersion,
	envconfig.VarPreviousPepper, envconfig.VarPreviousPepperVersion,
}

// setEnv gives the test exactly env: every variable of the package that
// env does not name is unset (not empty) until the test ends.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, name := range allVars {
		t.Setenv(name, "") // restores the variable at cleanup
		if v, ok := env[name]; ok {
			os.Setenv(name, v)
		} else {
			os.Unsetenv(name)
		}
	}
}

func TestVariableNames(t *testing.T) {
	want := []string{"APIKEY_DB", "APIKEY_PREFIX", "APIKEY_PEPPER", "APIKEY_PEPPER_VERSION",
		"APIKEY_PREVIOUS_PEPPER", "APIKEY_PREVIOUS_PEPPER_VERSION"}
	for i, name := range allVars {
		if name != want[i] {
			t.Errorf("variable %d is %q, want %q", i, name, want[i])
		}
	}
}

func TestDSN(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		override string
		want     string
		err      error
	}{
		{"override wins", map[string]string{"APIKEY_DB": "sqlite:env.db"}, "sqlite:flag.db", "sqlite:flag.db", nil},
		{"environment", map[string]string{"APIKEY_DB": "postgres://u@h/d"}, "", "postgres://u@h/d", nil},
		{"override without environment", nil, "sqlite:flag.db", "sqlite:flag.db", nil},
		{"neither", nil, "", "", envconfig.ErrNoDB},
		{"empty counts as unset", map[string]string{"APIKEY_DB": ""}, "", "", envconfig.ErrNoDB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			got, err := envconfig.DSN(tt.override)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("DSN(%q) = %q, %v; want %q, %v", tt.override, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		override string
		want     string
	}{
		{"override wins", map[string]string{"APIKEY_PREFIX": "acme_test"}, "acme_flag", "acme_flag"},
		{"environment", map[string]string{"APIKEY_PREFIX": "acme_test"}, "", "acme_test"},
		{"default", nil, "", envconfig.DefaultPrefix},
		{"empty counts as unset", map[string]string{"APIKEY_PREFIX": ""}, "", envconfig.DefaultPrefix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			if got := envconfig.Prefix(tt.override); got != tt.want {
				t.Fatalf("Prefix(%q) = %q, want %q", tt.override, got, tt.want)
			}
		})
	}
	if err := apikey.ValidatePrefix(envconfig.DefaultPrefix); err != nil {
		t.Fatalf("DefaultPrefix: %v", err)
	}
}

const (
	pepperA = "pepper A: 0123456789abcdef0123456789abcdef"
	pepperB = "pepper B: 0123456789abcdef0123456789abcdef"
)

func TestPeppers(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		err         error  // nil: the options must make a working Manager
		errNames    string // a variable the error must name
		wantVersion string // of new keys' digests
	}{
		{name: "unset", env: nil, err: envconfig.ErrNoPepper, errNames: "APIKEY_PEPPER"},
		{name: "version without pepper", env: map[string]string{"APIKEY_PEPPER_VERSION": "v2"}, err: envconfig.ErrNoPepper, errNames: "APIKEY_PEPPER"},
		{name: "set but empty", env: map[string]string{"APIKEY_PEPPER": ""}, err: apikey.ErrInvalidRequest, errNames: "APIKEY_PEPPER"},
		{name: "pepper, default version", env: map[string]string{"APIKEY_PEPPER": pepperA}, wantVersion: "hmac-sha256/v1"},
		{name: "pepper and version", env: map[string]string{"APIKEY_PEPPER": pepperA, "APIKEY_PEPPER_VERSION": "2024-06"}, wantVersion: "hmac-sha256/2024-06"},
		{name: "previous without its version",
			env:      map[string]string{"APIKEY_PEPPER": pepperB, "APIKEY_PEPPER_VERSION": "v2", "APIKEY_PREVIOUS_PEPPER": pepperA},
			err:      apikey.ErrInvalidRequest,
			errNames: "APIKEY_PREVIOUS_PEPPER_VERSION"},
		{name: "previous with its version",
			env:         map[string]string{"APIKEY_PEPPER": pepperB, "APIKEY_PEPPER_VERSION": "v2", "APIKEY_PREVIOUS_PEPPER": pepperA, "APIKEY_PREVIOUS_PEPPER_VERSION": "v1"},
			wantVersion: "hmac-sha256/v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			opts, err := envconfig.Peppers()
			if tt.err != nil {
				if !errors.Is(err, tt.err) || opts != nil {
					t.Fatalf("Peppers() = %d options, %v; want %v", len(opts), err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.errNames) {
					t.Errorf("error %q does not name %s", err, tt.errNames)
				}
				for _, secret := range []string{pepperA, pepperB} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q repeats a pepper", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Peppers() = %v", err)
			}
			m := newManager(t, opts...)
			_, k, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "o"})
			if err != nil {
				t.Fatal(err)
			}
			if k.DigestVersion != tt.wantVersion {
				t.Fatalf("new key digested as %q, want %q", k.DigestVersion, tt.wantVersion)
			}
		})
	}
}

// TestPeppersRotation: a key digested under APIKEY_PEPPER keeps verifying
// once that pepper moves to APIKEY_PREVIOUS_PEPPER.
func TestPeppersRotation(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	setEnv(t, map[string]string{"APIKEY_PEPPER": pepperA})
	opts, err := envconfig.Peppers()
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := newManagerOn(t, store, opts...).Issue(ctx, apikey.IssueRequest{Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}

	// Without the previous pepper it does not verify: the options really
	// carry different peppers.
	setEnv(t, map[string]string{"APIKEY_PEPPER": pepperB, "APIKEY_PEPPER_VERSION": "v2"})
	if opts, err = envconfig.Peppers(); err != nil {
		t.Fatal(err)
	}
	if _, err := newManagerOn(t, store, opts...).Verify(ctx, secret.Reveal()); err == nil {
		t.Fatal("a key of a dropped pepper verifies")
	}

	setEnv(t, map[string]string{"APIKEY_PEPPER": pepperB, "APIKEY_PEPPER_VERSION": "v2",
		"APIKEY_PREVIOUS_PEPPER": pepperA, "APIKEY_PREVIOUS_PEPPER_VERSION": "v1"})
	if opts, err = envconfig.Peppers(); err != nil {
		t.Fatal(err)
	}
	if _, err := newManagerOn(t, store, opts...).Verify(ctx, secret.Reveal()); err != nil {
		t.Fatalf("a key of the previous pepper: %v", err)
	}
}

func TestDevPepper(t *testing.T) {
	m := newManager(t, envconfig.DevPepper())
	_, k, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "hmac-sha256/" + envconfig.DevPepperVersion; k.DigestVersion != want {
		t.Fatalf("digest version %q, want %q", k.DigestVersion, want)
	}
	for _, s := range []string{"APIKEY_PEPPER", "openssl rand"} {
		if !strings.Contains(envconfig.DevPepperWarning, s) {
			t.Errorf("DevPepperWarning does not mention %q", s)
		}
	}
}

// TestImports: the package links no database driver or other
// dependency, only the standard library and package apikey (which itself
// imports only the standard library and golang.org/x).
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && path != "github.com/apikeykit/apikey" {
				t.Errorf("%s imports %s", name, path)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}

func newManager(t *testing.T, opts ...apikey.Option) *apikey.Manager {
	t.Helper()
	return newManagerOn(t, memstore.New(), opts...)
}

func newManagerOn(t *testing.T, store apikey.Store, opts ...apikey.Option) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(store, append(opts, apikey.WithPrefix("acme_test"))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
