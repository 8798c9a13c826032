package vault

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
	"golang.org/x/crypto/chacha20poly1305"
)

// Limits on what a Vault stores.
const (
	// MaxNameLen bounds an owner and a name, in bytes.
	MaxNameLen = 255
	// MaxSecretLen bounds a secret, in bytes.
	MaxSecretLen = 8192
)

// putAttempts is how many times Put reads the current version again when
// a concurrent Put of the same secret won the race.
const putAttempts = 3

// rotateBatch is how many records RotateKEK reads from the Store at once.
const rotateBatch = 100

// Vault encrypts customers' secrets into a Store under a KEK. A Vault is
// safe for concurrent use, and several processes may share a Store with
// a Vault each, provided they share the KEK's versions.
type Vault struct {
	store Store
	kek   KEK
	cfg   config
	cache *dataKeyCache
}

// Entry describes a stored secret without revealing it.
type Entry struct {
	Owner, Name string
	Version     int64
	// Masked is Mask of the secret, as in "sk-…abcd"; "" for a short
	// secret or one of unknown shape.
	Masked     string
	KEKVersion string
	CreatedAt  time.Time // when this version was put
	RevealedAt time.Time // the last recorded Reveal; zero if none
}

// New returns a Vault that keeps secrets in store, with data keys wrapped
// by kek. It does no I/O. A nil store or kek, a nil option or one that
// refuses its argument fails with an error wrapping ErrInvalidRequest.
func New(store Store, kek KEK, opts ...Option) (*Vault, error) {
	if store == nil || kek == nil {
		return nil, fmt.Errorf("%w: New needs a Store and a KEK", ErrInvalidRequest)
	}
	cfg := config{cacheSize: DefaultDataKeyCacheSize, cacheTTL: DefaultDataKeyCacheTTL, resolution: DefaultRevealResolution}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidRequest)
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	return &Vault{store: store, kek: kek, cfg: cfg, cache: newDataKeyCache(cfg.cacheSize, cfg.cacheTTL)}, nil
}

// Put encrypts secret and stores it as (owner, name)'s next version,
// replacing the previous one, and returns its Entry. Owner and name must
// be 1 to MaxNameLen bytes of UTF-8 without NUL, and the secret 1 to
// MaxSecretLen bytes; otherwise Put fails with an error wrapping
// ErrInvalidRequest. With WithValidation, the secret is checked first and
// nothing is stored if it is refused. If concurrent Puts of one secret
// keep winning, Put gives up with ErrConflict; one of them was stored
// whole. A plaintext string becomes a Secret with apikey.NewSecret.
func (v *Vault) Put(ctx context.Context, owner, name string, secret apikey.Secret, opts ...PutOption) (e Entry, err error) {
	defer func() { v.report(ctx, OpPut, owner, name, e.Version, err) }()
	var pc putConfig
	for _, opt := range opts {
		if opt == nil {
			return Entry{}, fmt.Errorf("%w: nil PutOption", ErrInvalidRequest)
		}
		if err := opt(&pc); err != nil {
			return Entry{}, err
		}
	}
	if err := checkRef(owner, name); err != nil {
		return Entry{}, err
	}
	plain := secret.Reveal()
	if plain == "" || len(plain) > MaxSecretLen {
		return Entry{}, fmt.Errorf("%w: secret for %q/%q must be 1 to %d bytes, not %d", ErrInvalidRequest, owner, name, MaxSecretLen, len(plain))
	}
	if pc.validate != nil {
		if err := pc.validate(ctx, secret); err != nil {
			return Entry{}, newValidationError(owner, name, plain, err)
		}
	}
	hint := Mask(plain)
	for range putAttempts {
		var version int64 = 1
		prev, err := v.store.Get(ctx, owner, name)
		switch {
		case err == nil:
			version = prev.Version + 1
		case !errors.Is(err, ErrNotFound):
			return Entry{}, fmt.Errorf("apikey: vault: put %q/%q: %w", owner, name, err)
		}
		r, err := v.seal(ctx, owner, name, version, hint, plain)
		if err != nil {
			return Entry{}, fmt.Errorf("apikey: vault: put %q/%q: %w", owner, name, err)
		}
		err = v.store.Put(ctx, r)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return Entry{}, fmt.Errorf("apikey: vault: put %q/%q: %w", owner, name, err)
		}
		v.cache.drop(Ref{owner, name})
		return entry(&r), nil
	}
	return Entry{}, fmt.Errorf("%w: put %q/%q: %d concurrent writes won", ErrConflict, owner, name, putAttempts)
}

// seal encrypts plain as version of (owner, name) under a new data key.
func (v *Vault) seal(ctx context.Context, owner, name string, version int64, hint, plain string) (Record, error) {
	dk, aead, err := newDataKey()
	if err != nil {
		return Record{}, err
	}
	defer clear(dk)
	p := []byte(plain)
	defer clear(p)
	nonce, ct, err := seal(aead, p, additionalData(purposeSecret, owner, name, version, hint))
	if err != nil {
		return Record{}, err
	}
	kekVersion, wrapped, err := v.kek.Wrap(ctx, dk, additionalData(purposeDataKey, owner, name, version, hint))
	if err != nil {
		return Record{}, fmt.Errorf("wrap data key: %w", err)
	}
	if kekVersion == "" {
		return Record{}, fmt.Errorf("%w: the KEK wrapped a data key without naming its version", ErrInvalidRequest)
	}
	return Record{Owner: owner, Name: name, Version: version, KEKVersion: kekVersion, WrappedKey: wrapped,
		Nonce: nonce, Ciphertext: ct, Hint: hint, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}, nil
}

// Reveal decrypts (owner, name)'s secret. It fails with ErrNotFound if
// there is none, ErrDecrypt if the stored record was changed or moved,
// and ErrUnknownKEKVersion if the KEK lacks the version that wrapped it;
// never with a wrong secret. It records the time (see
// WithRevealResolution) and fails closed if that write fails. Each call
// is reported to WithAudit's function with the context's actor.
func (v *Vault) Reveal(ctx context.Context, owner, name string) (s apikey.Secret, err error) {
	var version int64
	defer func() { v.report(ctx, OpReveal, owner, name, version, err) }()
	if err := checkRef(owner, name); err != nil {
		return apikey.Secret{}, err
	}
	r, err := v.store.Get(ctx, owner, name)
	if err != nil {
		return apikey.Secret{}, fmt.Errorf("apikey: vault: reveal %q/%q: %w", owner, name, err)
	}
	version = r.Version
	now := time.Now()
	aead, err := v.dataKey(ctx, &r, now)
	if err != nil {
		return apikey.Secret{}, fmt.Errorf("apikey: vault: reveal %q/%q version %d: %w", owner, name, r.Version, err)
	}
	if len(r.Nonce) != aead.NonceSize() {
		return apikey.Secret{}, fmt.Errorf("%w: reveal %q/%q version %d: nonce of %d bytes", ErrDecrypt, owner, name, r.Version, len(r.Nonce))
	}
	plain, err := aead.Open(nil, r.Nonce, r.Ciphertext, additionalData(purposeSecret, owner, name, r.Version, r.Hint))
	if err != nil {
		return apikey.Secret{}, fmt.Errorf("%w: reveal %q/%q version %d", ErrDecrypt, owner, name, r.Version)
	}
	defer clear(plain)
	if now.Sub(r.RevealedAt) >= v.cfg.resolution {
		if err := v.store.SetRevealed(ctx, owner, name, r.Version, now.UTC().Truncate(time.Microsecond)); err != nil {
			return apikey.Secret{}, fmt.Errorf("apikey: vault: reveal %q/%q: record the time: %w", owner, name, err)
		}
	}
	return apikey.NewSecret(string(plain)), nil
}

// dataKey returns the cipher of r's data key, from the cache or unwrapped
// by the KEK.
func (v *Vault) dataKey(ctx context.Context, r *Record, now time.Time) (cipher.AEAD, error) {
	if aead := v.cache.get(r, now); aead != nil {
		return aead, nil
	}
	dk, err := v.unwrap(ctx, r)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	aead, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return nil, fmt.Errorf("%w: data key", ErrDecrypt)
	}
	v.cache.put(r, aead, now)
	return aead, nil
}

// unwrap returns r's data key.
func (v *Vault) unwrap(ctx context.Context, r *Record) ([]byte, error) {
	dk, err := v.kek.Unwrap(ctx, r.KEKVersion, r.WrappedKey, additionalData(purposeDataKey, r.Owner, r.Name, r.Version, r.Hint))
	if err != nil {
		return nil, err
	}
	if len(dk) != KEKSize {
		clear(dk)
		return nil, fmt.Errorf("%w: data key of %d bytes", ErrDecrypt, len(dk))
	}
	return dk, nil
}

// List returns owner's secrets, masked, ordered by name. It decrypts
// nothing.
func (v *Vault) List(ctx context.Context, owner string) ([]Entry, error) {
	if err := checkName("owner", owner); err != nil {
		return nil, err
	}
	rs, err := v.store.List(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("apikey: vault: list %q: %w", owner, err)
	}
	es := make([]Entry, len(rs))
	for i := range rs {
		es[i] = entry(&rs[i])
	}
	return es, nil
}

// LastRevealed returns when (owner, name)'s secret was last revealed, as
// recorded (see WithRevealResolution); the zero time if never.
func (v *Vault) LastRevealed(ctx context.Context, owner, name string) (time.Time, error) {
	if err := checkRef(owner, name); err != nil {
		return time.Time{}, err
	}
	r, err := v.store.Get(ctx, owner, name)
	if err != nil {
		return time.Time{}, fmt.Errorf("apikey: vault: last revealed %q/%q: %w", owner, name, err)
	}
	return r.RevealedAt, nil
}

// Delete removes (owner, name)'s secret, or fails with ErrNotFound. The
// only wrapped copy of its data key goes with it.
func (v *Vault) Delete(ctx context.Context, owner, name string) (err error) {
	defer func() { v.report(ctx, OpDelete, owner, name, 0, err) }()
	if err := checkRef(owner, name); err != nil {
		return err
	}
	v.cache.drop(Ref{owner, name})
	if err := v.store.Delete(ctx, owner, name); err != nil {
		return fmt.Errorf("apikey: vault: delete %q/%q: %w", owner, name, err)
	}
	return nil
}

// RotateKEK re-wraps, with the KEK's current version, every data key
// wrapped by another version, and returns how many it re-wrapped. It
// unwraps data keys only, never decrypting a secret, and changes no
// ciphertext. A record that changed meanwhile (a concurrent Put or
// Delete) is skipped: its new version is wrapped by the Putting process's
// current version. It stops at the first record it cannot re-wrap and
// names it; it is safe to run again, from any process. Give every process
// the new version first (as current, the old one after it), then rotate,
// then remove the old version.
func (v *Vault) RotateKEK(ctx context.Context) (int, error) {
	current := v.kek.Version()
	var after Ref
	n := 0
	for {
		rs, err := v.store.Stale(ctx, current, after, rotateBatch)
		if err != nil {
			return n, fmt.Errorf("apikey: vault: rotate: %w", err)
		}
		for i := range rs {
			r := &rs[i]
			after = Ref{r.Owner, r.Name}
			if err := v.rewrap(ctx, r); err != nil {
				return n, fmt.Errorf("apikey: vault: rotate %q/%q version %d: %w", r.Owner, r.Name, r.Version, err)
			}
			n++
		}
		if len(rs) < rotateBatch {
			return n, nil
		}
	}
}

func (v *Vault) rewrap(ctx context.Context, r *Record) error {
	dk, err := v.unwrap(ctx, r)
	if err != nil {
		return err
	}
	defer clear(dk)
	kekVersion, wrapped, err := v.kek.Wrap(ctx, dk, additionalData(purposeDataKey, r.Owner, r.Name, r.Version, r.Hint))
	if err != nil {
		return fmt.Errorf("wrap data key: %w", err)
	}
	err = v.store.Rewrap(ctx, r.Owner, r.Name, r.Version, r.KEKVersion, kekVersion, wrapped)
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (v *Vault) report(ctx context.Context, op Op, owner, name string, version int64, err error) {
	if v.cfg.audit == nil {
		return
	}
	v.cfg.audit(ctx, AuditEvent{Time: time.Now(), Op: op, Owner: owner, Name: name, Version: version, Actor: ActorFrom(ctx), Err: err})
}

func entry(r *Record) Entry {
	return Entry{Owner: r.Owner, Name: r.Name, Version: r.Version, Masked: r.Hint,
		KEKVersion: r.KEKVersion, CreatedAt: r.CreatedAt, RevealedAt: r.RevealedAt}
}

func checkRef(owner, name string) error {
	if err := checkName("owner", owner); err != nil {
		return err
	}
	return checkName("name", name)
}

func checkName(what, s string) error {
	if s == "" || len(s) > MaxNameLen || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s must be 1 to %d bytes of UTF-8 without NUL", ErrInvalidRequest, what, MaxNameLen)
	}
	return nil
}

// validationError is what Put returns when WithValidation's function
// refuses a secret: its text is scrubbed of the secret.
type validationError struct {
	msg   string
	cause error // nil if its text held the secret
}

func newValidationError(owner, name, plain string, cause error) error {
	text := cause.Error()
	scrubbed := strings.ReplaceAll(text, plain, "[REDACTED]")
	e := &validationError{msg: fmt.Sprintf("%s: put %q/%q: %s", ErrValidation, owner, name, scrubbed)}
	if scrubbed == text {
		e.cause = cause
	}
	return e
}

func (e *validationError) Error() string { return e.msg }

func (e *validationError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrValidation}
	}
	return []error{ErrValidation, e.cause}
}
