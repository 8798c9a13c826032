package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"slices"
	"sync"
)

// MinPepperLen is the shortest pepper WithPepper accepts, in bytes.
const MinPepperLen = 16

// digestSize is the size of a digest (SHA-256).
const digestSize = sha256.Size

// unkeyedVersion is the DigestVersion of keys digested with plain SHA-256
// (WithUnkeyedDigest). Pepper versions are recorded as "hmac-sha256/<v>".
const unkeyedVersion = "sha256"

// digester computes one kind of digest: HMAC-SHA256 under one pepper
// version, or unkeyed SHA-256. It is safe for concurrent use; hash states
// are pooled so the verify path does not allocate.
type digester struct {
	version string // recorded in Key.DigestVersion
	pepper  []byte // nil for unkeyed SHA-256; for legacy lookups (legacy.go)
	pool    sync.Pool
}

// digestState is one pooled hash with the scratch space its interface
// calls need, kept off the caller's stack so nothing escapes per call.
type digestState struct {
	h   hash.Hash
	msg [3 + IDLen + 1 + SecretLen]byte
	sum [digestSize]byte
}

func newHMACDigester(version string, pepper []byte) *digester {
	pepper = slices.Clone(pepper) // the caller may wipe its copy
	d := &digester{version: "hmac-sha256/" + version, pepper: pepper}
	d.pool.New = func() any { return &digestState{h: hmac.New(sha256.New, pepper)} }
	return d
}

func newUnkeyedDigester() *digester {
	d := &digester{version: unkeyedVersion}
	d.pool.New = func() any { return &digestState{h: sha256.New()} }
	return d
}

// sum writes the digest of the key with ID id and secret part secret into
// dst. The message is "v1|" + id + "|" + secret (README, "Peppers: digests,
// never keys").
func (d *digester) sum(dst *[digestSize]byte, id, secret string) {
	s := d.pool.Get().(*digestState)
	n := copy(s.msg[:], "v1|")
	n += copy(s.msg[n:], id)
	s.msg[n] = '|'
	n++
	n += copy(s.msg[n:], secret)
	s.h.Reset()
	s.h.Write(s.msg[:n])
	s.h.Sum(s.sum[:0])
	*dst = s.sum
	clear(s.msg[:])
	d.pool.Put(s)
}

// digesters holds the digest in use for new keys and every version that
// is still accepted when verifying.
type digesters struct {
	current *digester
	byName  map[string]*digester
}

func (ds *digesters) add(d *digester) error {
	if ds.byName == nil {
		ds.byName = make(map[string]*digester)
	}
	if _, dup := ds.byName[d.version]; dup {
		return fmt.Errorf("%w: digest version %q given twice", ErrInvalidRequest, d.version)
	}
	ds.byName[d.version] = d
	return nil
}

// lookup returns the digester that produced version, or nil if that
// version is no longer (or was never) configured.
func (ds *digesters) lookup(version string) *digester { return ds.byName[version] }
