package vault_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/vault"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPutRevealListDelete(t *testing.T) {
	ctx := context.Background()
	st := vault.NewMemStore()
	v := newVault(t, st, kekText("v1"))
	openai, anthropic := providerKey(), "sk-ant-api03-"+providerKey()[8:]

	e, err := v.Put(ctx, "alice", "openai", apikey.NewSecret(openai))
	require.NoError(t, err)
	assert.Equal(t, int64(1), e.Version)
	assert.Equal(t, "v1", e.KEKVersion)
	assert.Equal(t, "sk-…"+openai[len(openai)-4:], e.Masked)
	assert.WithinDuration(t, time.Now(), e.CreatedAt, time.Minute)
	_, err = v.Put(ctx, "alice", "anthropic", apikey.NewSecret(anthropic))
	require.NoError(t, err)
	_, err = v.Put(ctx, "bob", "openai", apikey.NewSecret("short-key"))
	require.NoError(t, err)

	s, err := v.Reveal(ctx, "alice", "openai")
	require.NoError(t, err)
	assert.Equal(t, openai, s.Reveal())
	assert.Equal(t, "[REDACTED]", s.String())

	es, err := v.List(ctx, "alice")
	require.NoError(t, err)
	require.Len(t, es, 2)
	assert.Equal(t, []string{"anthropic", "openai"}, []string{es[0].Name, es[1].Name})
	assert.Equal(t, "sk-…"+anthropic[len(anthropic)-4:], es[0].Masked)
	assert.True(t, es[0].RevealedAt.IsZero())
	assert.False(t, es[1].RevealedAt.IsZero(), "the Reveal was recorded")
	bob, err := v.List(ctx, "bob")
	require.NoError(t, err)
	assert.Equal(t, "", bob[0].Masked, "nothing of a short secret is shown")

	// A second Put replaces, as the next version.
	replaced := providerKey()
	e, err = v.Put(ctx, "alice", "openai", apikey.NewSecret(replaced))
	require.NoError(t, err)
	assert.Equal(t, int64(2), e.Version)
	s, err = v.Reveal(ctx, "alice", "openai")
	require.NoError(t, err)
	assert.Equal(t, replaced, s.Reveal())

	require.NoError(t, v.Delete(ctx, "alice", "openai"))
	_, err = v.Reveal(ctx, "alice", "openai")
	assert.ErrorIs(t, err, vault.ErrNotFound)
	assert.ErrorIs(t, v.Delete(ctx, "alice", "openai"), vault.ErrNotFound)
	_, err = v.LastRevealed(ctx, "alice", "openai")
	assert.ErrorIs(t, err, vault.ErrNotFound)
	s, err = v.Reveal(ctx, "alice", "anthropic")
	require.NoError(t, err)
	assert.Equal(t, anthropic, s.Reveal())
}

func TestLastRevealed(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name       string
		resolution time.Duration
		moves      bool
	}{{"every reveal", 0, true}, {"once an hour", time.Hour, false}} {
		t.Run(tt.name, func(t *testing.T) {
			v := newVault(t, vault.NewMemStore(), kekText("v1"), vault.WithRevealResolution(tt.resolution))
			_, err := v.Put(ctx, "o", "n", apikey.NewSecret(providerKey()))
			require.NoError(t, err)
			at, err := v.LastRevealed(ctx, "o", "n")
			require.NoError(t, err)
			assert.True(t, at.IsZero(), "never revealed")
			_, err = v.Reveal(ctx, "o", "n")
			require.NoError(t, err)
			first, err := v.LastRevealed(ctx, "o", "n")
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now(), first, time.Minute)
			time.Sleep(2 * time.Millisecond)
			_, err = v.Reveal(ctx, "o", "n")
			require.NoError(t, err)
			second, err := v.LastRevealed(ctx, "o", "n")
			require.NoError(t, err)
			assert.Equal(t, tt.moves, second.After(first), "first %v, second %v", first, second)
		})
	}
}

func TestPutRefuses(t *testing.T) {
	ctx := context.Background()
	st := vault.NewMemStore()
	v := newVault(t, st, kekText("v1"))
	good := apikey.NewSecret(providerKey())
	long := strings.Repeat("x", vault.MaxNameLen+1)
	tests := []struct {
		name, owner, key string
		secret           apikey.Secret
		opts             []vault.PutOption
	}{
		{"empty owner", "", "n", good, nil},
		{"empty name", "o", "", good, nil},
		{"NUL in owner", "o\x00", "n", good, nil},
		{"NUL in name", "o", "n\x00x", good, nil},
		{"owner not UTF-8", "o\xff", "n", good, nil},
		{"long owner", long, "n", good, nil},
		{"long name", "o", long, good, nil},
		{"empty secret", "o", "n", apikey.Secret{}, nil},
		{"long secret", "o", "n", apikey.NewSecret(strings.Repeat("k", vault.MaxSecretLen+1)), nil},
		{"nil option", "o", "n", good, []vault.PutOption{nil}},
		{"nil validation", "o", "n", good, []vault.PutOption{vault.WithValidation(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Put(ctx, tt.owner, tt.key, tt.secret, tt.opts...)
			require.ErrorIs(t, err, vault.ErrInvalidRequest)
			assert.True(t, strings.HasPrefix(err.Error(), "apikey: vault: "), err.Error())
			assert.NotContains(t, err.Error(), good.Reveal())
			rs, _ := st.List(ctx, tt.owner)
			assert.Empty(t, rs, "nothing stored")
		})
	}
	_, err := v.Reveal(ctx, "o\x00", "n")
	assert.ErrorIs(t, err, vault.ErrInvalidRequest)
	_, err = v.List(ctx, "")
	assert.ErrorIs(t, err, vault.ErrInvalidRequest)
	assert.ErrorIs(t, v.Delete(ctx, "o", ""), vault.ErrInvalidRequest)
}

func TestWithValidation(t *testing.T) {
	ctx := context.Background()
	secret := providerKey()
	errUpstream := errors.New("provider unreachable")
	tests := []struct {
		name      string
		fn        func(context.Context, apikey.Secret) error
		wantCause error // wrapped, if its text does not hold the secret
	}{
		{"accepts", func(context.Context, apikey.Secret) error { return nil }, nil},
		{"refuses", func(context.Context, apikey.Secret) error { return fmt.Errorf("check: %w", errUpstream) }, errUpstream},
		{"refuses quoting the key", func(_ context.Context, s apikey.Secret) error {
			return fmt.Errorf("401: Incorrect API key provided: %s (%w)", s.Reveal(), errUpstream)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := vault.NewMemStore()
			v := newVault(t, st, kekText("v1"))
			var saw string
			_, err := v.Put(ctx, "o", "n", apikey.NewSecret(secret), vault.WithValidation(func(ctx context.Context, s apikey.Secret) error {
				saw = s.Reveal()
				return tt.fn(ctx, s)
			}))
			assert.Equal(t, secret, saw, "the validation function gets the secret")
			_, gerr := st.Get(ctx, "o", "n")
			if tt.name == "accepts" {
				require.NoError(t, err)
				require.NoError(t, gerr)
				return
			}
			require.ErrorIs(t, err, vault.ErrValidation)
			assert.ErrorIs(t, gerr, vault.ErrNotFound, "nothing stored")
			assert.NotContains(t, err.Error(), secret)
			assert.NotContains(t, fmt.Sprintf("%+v %#v", err, err), secret)
			for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
				assert.NotContains(t, e.Error(), secret)
			}
			if tt.wantCause != nil {
				assert.ErrorIs(t, err, tt.wantCause)
			} else {
				assert.Contains(t, err.Error(), "[REDACTED]")
				assert.NotErrorIs(t, err, errUpstream, "an error quoting the key is not kept")
			}
		})
	}
}

// TestTampering: any byte of a record's ciphertext, nonce or wrapped key
// changed, or any field the additional data binds, fails to reveal; never
// a wrong plaintext. (sqlstore's TestVaultTampering does the same in
// real databases.)
func TestTampering(t *testing.T) {
	ctx := context.Background()
	mem := vault.NewMemStore()
	st := &tamperStore{Store: mem}
	v := newVault(t, st, kekText("v1"))
	secret := providerKey()
	_, err := v.Put(ctx, "alice", "openai", apikey.NewSecret(secret))
	require.NoError(t, err)
	_, err = v.Reveal(ctx, "alice", "openai") // the data key is cached now
	require.NoError(t, err)
	r, err := mem.Get(ctx, "alice", "openai")
	require.NoError(t, err)

	type change struct {
		name string
		fn   func(*vault.Record)
		want error
	}
	var changes []change
	for _, field := range []struct {
		name string
		get  func(*vault.Record) []byte
	}{
		{"ciphertext", func(r *vault.Record) []byte { return r.Ciphertext }},
		{"nonce", func(r *vault.Record) []byte { return r.Nonce }},
		{"wrapped key", func(r *vault.Record) []byte { return r.WrappedKey }},
	} {
		for i := range field.get(&r) {
			changes = append(changes, change{fmt.Sprintf("%s byte %d", field.name, i), func(r *vault.Record) { field.get(r)[i] ^= 0x20 }, vault.ErrDecrypt})
		}
	}
	changes = append(changes,
		change{"nonce truncated", func(r *vault.Record) { r.Nonce = r.Nonce[:23] }, vault.ErrDecrypt},
		change{"ciphertext truncated", func(r *vault.Record) { r.Ciphertext = r.Ciphertext[:10] }, vault.ErrDecrypt},
		change{"ciphertext empty", func(r *vault.Record) { r.Ciphertext = nil }, vault.ErrDecrypt},
		change{"wrapped key empty", func(r *vault.Record) { r.WrappedKey = nil }, vault.ErrDecrypt},
		change{"version", func(r *vault.Record) { r.Version++ }, vault.ErrDecrypt},
		change{"hint", func(r *vault.Record) { r.Hint = "sk-…0000" }, vault.ErrDecrypt},
		change{"owner", func(r *vault.Record) { r.Owner = "bob" }, vault.ErrDecrypt},
		change{"name", func(r *vault.Record) { r.Name = "anthropic" }, vault.ErrDecrypt},
		change{"KEK version", func(r *vault.Record) { r.KEKVersion = "v9" }, vault.ErrUnknownKEKVersion},
	)
	for _, c := range changes {
		st.tamper = c.fn
		s, err := v.Reveal(ctx, "alice", "openai")
		require.ErrorIs(t, err, c.want, c.name)
		assert.True(t, s.IsZero(), c.name)
		assert.NotContains(t, err.Error(), secret, c.name)
	}
	st.tamper = nil
	s, err := v.Reveal(ctx, "alice", "openai")
	require.NoError(t, err)
	assert.Equal(t, secret, s.Reveal())
}

// TestRotateKEK: after rotation the old version can go; the ciphertexts
// are untouched.
func TestRotateKEK(t *testing.T) {
	ctx := context.Background()
	st := vault.NewMemStore()
	oldText, newText := kekText("2026-01"), kekText("2026-12")
	v := newVault(t, st, oldText)
	secrets := map[string]string{}
	for i := range 250 {
		name := fmt.Sprintf("n%03d", i)
		secrets[name] = providerKey()
		_, err := v.Put(ctx, fmt.Sprintf("o%d", i%7), name, apikey.NewSecret(secrets[name]))
		require.NoError(t, err)
	}
	before, err := st.Get(ctx, "o0", "n000")
	require.NoError(t, err)

	n, err := newVault(t, st, newText+"\n"+oldText).RotateKEK(ctx)
	require.NoError(t, err)
	assert.Equal(t, 250, n)
	after, err := st.Get(ctx, "o0", "n000")
	require.NoError(t, err)
	assert.Equal(t, before.Ciphertext, after.Ciphertext)
	assert.Equal(t, before.Nonce, after.Nonce)
	assert.NotEqual(t, before.WrappedKey, after.WrappedKey)
	assert.Equal(t, "2026-12", after.KEKVersion)

	onlyNew := newVault(t, st, newText)
	for i := range 250 {
		name := fmt.Sprintf("n%03d", i)
		s, err := onlyNew.Reveal(ctx, fmt.Sprintf("o%d", i%7), name)
		require.NoError(t, err)
		assert.Equal(t, secrets[name], s.Reveal())
	}
	// The old KEK alone no longer reveals anything.
	_, err = newVault(t, st, oldText).Reveal(ctx, "o0", "n000")
	assert.ErrorIs(t, err, vault.ErrUnknownKEKVersion)

	// A record RotateKEK cannot unwrap stops it, named.
	_, err = newVault(t, st, kekText("2027-01")+","+kekText("2026-12")).RotateKEK(ctx)
	require.ErrorIs(t, err, vault.ErrDecrypt)
	assert.Contains(t, err.Error(), `"o0"/"n000"`)
}

func TestAudit(t *testing.T) {
	ctx := vault.WithActor(context.Background(), "support:jane")
	secret := providerKey()
	var mu sync.Mutex
	var events []vault.AuditEvent
	st := &tamperStore{Store: vault.NewMemStore()}
	v := newVault(t, st, kekText("v1"), vault.WithAudit(func(_ context.Context, e vault.AuditEvent) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}))
	_, err := v.Put(ctx, "alice", "openai", apikey.NewSecret(secret))
	require.NoError(t, err)
	_, err = v.Reveal(ctx, "alice", "openai")
	require.NoError(t, err)
	_, err = v.Reveal(context.Background(), "alice", "missing")
	require.Error(t, err)
	st.tamper = func(r *vault.Record) { r.Ciphertext[0] ^= 1 }
	_, err = v.Reveal(ctx, "alice", "openai")
	require.Error(t, err)
	require.NoError(t, v.Delete(ctx, "alice", "openai"))

	want := []struct {
		op      vault.Op
		name    string
		version int64
		actor   string
		err     error
	}{
		{vault.OpPut, "openai", 1, "support:jane", nil},
		{vault.OpReveal, "openai", 1, "support:jane", nil},
		{vault.OpReveal, "missing", 0, "", vault.ErrNotFound},
		{vault.OpReveal, "openai", 1, "support:jane", vault.ErrDecrypt},
		{vault.OpDelete, "openai", 0, "support:jane", nil},
	}
	require.Len(t, events, len(want))
	for i, w := range want {
		e := events[i]
		assert.Equal(t, w.op, e.Op, i)
		assert.Equal(t, "alice", e.Owner, i)
		assert.Equal(t, w.name, e.Name, i)
		assert.Equal(t, w.version, e.Version, i)
		assert.Equal(t, w.actor, e.Actor, i)
		if w.err == nil {
			assert.NoError(t, e.Err, i)
		} else {
			assert.ErrorIs(t, e.Err, w.err, i)
		}
		assert.WithinDuration(t, time.Now(), e.Time, time.Minute)
		assert.NotContains(t, fmt.Sprintf("%v %+v %#v", e, e, e), secret[8:])
	}
}

func TestNewRefuses(t *testing.T) {
	st, kek := vault.NewMemStore(), newKEK(t, kekText("v1"))
	tests := []struct {
		name  string
		store vault.Store
		kek   vault.KEK
		opts  []vault.Option
	}{
		{"nil store", nil, kek, nil},
		{"nil KEK", st, nil, nil},
		{"nil option", st, kek, []vault.Option{nil}},
		{"nil audit", st, kek, []vault.Option{vault.WithAudit(nil)}},
		{"negative cache size", st, kek, []vault.Option{vault.WithDataKeyCache(-1, time.Minute)}},
		{"cache without ttl", st, kek, []vault.Option{vault.WithDataKeyCache(10, 0)}},
		{"negative resolution", st, kek, []vault.Option{vault.WithRevealResolution(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := vault.New(tt.store, tt.kek, tt.opts...)
			require.ErrorIs(t, err, vault.ErrInvalidRequest)
			assert.Nil(t, v)
			assert.True(t, strings.HasPrefix(err.Error(), "apikey: vault: "), err.Error())
		})
	}
	_, err := vault.New(st, kek, vault.WithDataKeyCache(0, 0))
	assert.NoError(t, err, "size 0 turns the cache off and needs no ttl")
}

func TestMask(t *testing.T) {
	tests := []struct{ secret, want string }{
		{"sk-proj-abcdefghijklmnopqrstuvwxyz0123", "sk-…0123"},
		{"sk-ant-api03-0123456789abcd", "sk-…abcd"},
		{"AIzaSyA-0123456789abcdefgh", "AIz…efgh"},
		{"01234567890123456789", "012…6789"}, // MinMaskLen exactly
		{"0123456789012345678", ""},          // one shorter
		{"short", ""},
		{"", ""},
		{"sk-proj-abcdefghijklmn opqrstuvwxyz", ""}, // a space: unknown shape
		{"sk-proj-abcdefghijklmnopqrstuvwxyzé", ""},
		{"sk-proj-abcdefghijklmnopqrstuvwxyz\n", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, vault.Mask(tt.secret), tt.secret)
		if m := vault.Mask(tt.secret); m != "" {
			assert.LessOrEqual(t, len(m)-len("…"), 7, "never more than 3 leading and 4 trailing characters")
		}
	}
}

// TestConcurrentPutReveal: under -race, Puts and Reveals of one secret and
// of many at once; every Reveal returns a value some Put stored.
func TestConcurrentPutReveal(t *testing.T) {
	ctx := context.Background()
	v := newVault(t, vault.NewMemStore(), kekText("v1"), vault.WithRevealResolution(0), vault.WithDataKeyCache(4, time.Minute))
	var mu sync.Mutex
	stored := map[string]bool{}
	putOne := func(name string) error {
		s := providerKey()
		mu.Lock()
		stored[s] = true
		mu.Unlock()
		_, err := v.Put(ctx, "o", name, apikey.NewSecret(s))
		if errors.Is(err, vault.ErrConflict) {
			return nil
		}
		return err
	}
	require.NoError(t, putOne("shared"))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				name := "shared"
				if i%2 == 1 {
					name = fmt.Sprintf("n%d-%d", w, i%5)
				}
				if err := putOne(name); err != nil {
					t.Error(err)
					return
				}
				s, err := v.Reveal(ctx, "o", name)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ok := stored[s.Reveal()]
				mu.Unlock()
				if !ok {
					t.Error("Reveal returned a value no Put stored")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestRotateKEKWhilePutting: Puts racing RotateKEK, both from processes
// that hold the new version, leave nothing that needs the old one.
func TestRotateKEKWhilePutting(t *testing.T) {
	ctx := context.Background()
	st := vault.NewMemStore()
	oldText, newText := kekText("old"), kekText("new")
	old := newVault(t, st, oldText)
	for i := range 300 {
		_, err := old.Put(ctx, "o", fmt.Sprintf("n%03d", i), apikey.NewSecret(providerKey()))
		require.NoError(t, err)
	}
	rotating := newVault(t, st, newText+","+oldText)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 299; i >= 0; i -= 3 {
			if _, err := rotating.Put(ctx, "o", fmt.Sprintf("n%03d", i), apikey.NewSecret(providerKey())); err != nil && !errors.Is(err, vault.ErrConflict) {
				t.Error(err)
			}
		}
	}()
	_, err := rotating.RotateKEK(ctx)
	require.NoError(t, err)
	wg.Wait()
	onlyNew := newVault(t, st, newText)
	for i := range 300 {
		_, err := onlyNew.Reveal(ctx, "o", fmt.Sprintf("n%03d", i))
		require.NoError(t, err, i)
	}
}

// failingStore fails every SetRevealed.
type failingStore struct{ vault.Store }

func (failingStore) SetRevealed(context.Context, string, string, int64, time.Time) error {
	return fmt.Errorf("%w: disk full", apikey.ErrUnavailable)
}

// TestRevealFailsClosed: a Reveal whose time cannot be recorded returns
// no secret.
func TestRevealFailsClosed(t *testing.T) {
	ctx := context.Background()
	mem := vault.NewMemStore()
	text := kekText("v1")
	_, err := newVault(t, mem, text).Put(ctx, "o", "n", apikey.NewSecret(providerKey()))
	require.NoError(t, err)
	s, err := newVault(t, failingStore{mem}, text).Reveal(ctx, "o", "n")
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	assert.True(t, s.IsZero())
}
