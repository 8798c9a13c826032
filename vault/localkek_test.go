package vault_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeykit/apikey/vault"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// key32 is a fixed 32-byte key in base64, and key32b another.
var (
	key32  = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	key32b = base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
)

func TestParseLocalKEK(t *testing.T) {
	good := []struct {
		name, text string
		versions   []string
	}{
		{"one", "v1:" + key32, []string{"v1"}},
		{"two, comma", "v2:" + key32b + ",v1:" + key32, []string{"v2", "v1"}},
		{"spaces and newlines", "  v2:" + key32b + " \n\tv1:" + key32 + "\r\n", []string{"v2", "v1"}},
		{"comments", "# rotated 2026-12-01\nkek-2026.12_b:" + key32b + " # current\n# old:\n2026-01:" + key32 + "\n", []string{"kek-2026.12_b", "2026-01"}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			k, err := vault.ParseLocalKEK(tt.text)
			require.NoError(t, err)
			assert.Equal(t, tt.versions[0], k.Version())
			assert.Equal(t, tt.versions, k.Versions())
		})
	}
	bad := []struct{ name, text string }{
		{"empty", ""},
		{"only a comment", "# nothing\n"},
		{"no colon", "v1" + key32},
		{"empty version", ":" + key32},
		{"bad version character", "v/1:" + key32},
		{"long version", strings.Repeat("v", vault.MaxKEKVersionLen+1) + ":" + key32},
		{"key not base64", "v1:not*base64*at*all*not*base64*at*all*0000="},
		{"key unpadded", "v1:" + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcde")), "=")},
		{"key of 31 bytes", "v1:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcde"))},
		{"key of 33 bytes", "v1:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef0"))},
		{"hex key", "v1:" + strings.Repeat("ab", 32)},
		{"version twice", "v1:" + key32 + ",v1:" + key32b},
		{"key twice", "v2:" + key32 + ",v1:" + key32},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			k, err := vault.ParseLocalKEK(tt.text)
			require.ErrorIs(t, err, vault.ErrInvalidKEK)
			assert.Nil(t, k)
			assert.True(t, strings.HasPrefix(err.Error(), "apikey: vault: invalid KEK"), err.Error())
			assert.NotContains(t, err.Error(), key32[:20])
			assert.NotContains(t, err.Error(), key32b[:20])
		})
	}
}

func TestLocalKEKFromEnvAndFile(t *testing.T) {
	t.Setenv("VAULT_TEST_KEK", "v2:"+key32b+",v1:"+key32)
	k, err := vault.LocalKEKFromEnv("VAULT_TEST_KEK")
	require.NoError(t, err)
	assert.Equal(t, []string{"v2", "v1"}, k.Versions())

	t.Setenv("VAULT_TEST_KEK_BAD", "v1:"+key32[:20])
	_, err = vault.LocalKEKFromEnv("VAULT_TEST_KEK_BAD")
	require.ErrorIs(t, err, vault.ErrInvalidKEK)
	assert.Contains(t, err.Error(), "VAULT_TEST_KEK_BAD")
	assert.NotContains(t, err.Error(), key32[:20])
	_, err = vault.LocalKEKFromEnv("VAULT_TEST_KEK_UNSET")
	require.ErrorIs(t, err, vault.ErrInvalidKEK)
	assert.Contains(t, err.Error(), "VAULT_TEST_KEK_UNSET")

	path := filepath.Join(t.TempDir(), "kek")
	require.NoError(t, os.WriteFile(path, []byte("# KEK\nv3:"+key32+"\n"), 0o600))
	k, err = vault.LocalKEKFromFile(path)
	require.NoError(t, err)
	assert.Equal(t, "v3", k.Version())
	require.NoError(t, os.WriteFile(path, []byte("v3:"+key32[:30]+"\n"), 0o600))
	_, err = vault.LocalKEKFromFile(path)
	require.ErrorIs(t, err, vault.ErrInvalidKEK)
	assert.Contains(t, err.Error(), path)
	assert.NotContains(t, err.Error(), key32[:20])
	_, err = vault.LocalKEKFromFile(filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, vault.ErrInvalidKEK)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestLocalKEKWrap: a wrapped key unwraps only with its version, its
// bytes and its aad.
func TestLocalKEKWrap(t *testing.T) {
	ctx := context.Background()
	k := newKEK(t, "v2:"+key32b+",v1:"+key32)
	old := newKEK(t, "v1:"+key32)
	dk := []byte("a data key of thirty-two bytes..")
	version, wrapped, err := k.Wrap(ctx, dk, []byte("aad"))
	require.NoError(t, err)
	assert.Equal(t, "v2", version)
	_, again, err := k.Wrap(ctx, dk, []byte("aad"))
	require.NoError(t, err)
	assert.NotEqual(t, wrapped, again, "a random nonce each time")

	got, err := k.Unwrap(ctx, "v2", wrapped, []byte("aad"))
	require.NoError(t, err)
	assert.Equal(t, dk, got)
	// Wrapped by v1 in one LocalKEK, unwrapped in another holding v1.
	_, w1, err := old.Wrap(ctx, dk, []byte("aad"))
	require.NoError(t, err)
	got, err = k.Unwrap(ctx, "v1", w1, []byte("aad"))
	require.NoError(t, err)
	assert.Equal(t, dk, got)

	for _, tt := range []struct {
		name    string
		version string
		wrapped []byte
		aad     string
		want    error
	}{
		{"other aad", "v2", wrapped, "aae", vault.ErrDecrypt},
		{"no aad", "v2", wrapped, "", vault.ErrDecrypt},
		{"other version's key", "v1", wrapped, "aad", vault.ErrDecrypt},
		{"unknown version", "v9", wrapped, "aad", vault.ErrUnknownKEKVersion},
		{"truncated", "v2", wrapped[:len(wrapped)-1], "aad", vault.ErrDecrypt},
		{"too short", "v2", wrapped[:10], "aad", vault.ErrDecrypt},
		{"empty", "v2", nil, "aad", vault.ErrDecrypt},
	} {
		_, err := k.Unwrap(ctx, tt.version, tt.wrapped, []byte(tt.aad))
		assert.ErrorIs(t, err, tt.want, tt.name)
	}
	_, err = k.Unwrap(ctx, "v9", wrapped, nil)
	assert.Contains(t, err.Error(), `"v9"`)
	assert.Contains(t, err.Error(), "v2, v1")
}

func FuzzParseLocalKEK(f *testing.F) {
	f.Add("v1:" + key32)
	f.Add("v2:" + key32b + ",v1:" + key32)
	f.Add("# c\nv:" + key32 + " # d")
	f.Add("v1:")
	f.Add(":::,,,")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := vault.ParseLocalKEK(text)
		if err != nil {
			if !errors.Is(err, vault.ErrInvalidKEK) || k != nil {
				t.Fatalf("ParseLocalKEK error %v with %v", err, k)
			}
			return
		}
		vs := k.Versions()
		if len(vs) == 0 || vs[0] != k.Version() {
			t.Fatalf("versions %q, current %q", vs, k.Version())
		}
		ctx := context.Background()
		dk := make([]byte, vault.KEKSize)
		v, w, err := k.Wrap(ctx, dk, []byte("x"))
		if err != nil || v != k.Version() {
			t.Fatalf("Wrap: %q, %v", v, err)
		}
		if _, err := k.Unwrap(ctx, v, w, []byte("x")); err != nil {
			t.Fatalf("Unwrap: %v", err)
		}
	})
}
