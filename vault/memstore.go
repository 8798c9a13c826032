package vault

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// MemStore is a Store in this process's memory, for tests, prototypes and
// a single process that may lose its secrets on restart. It is safe for
// concurrent use; the zero MemStore is not: use NewMemStore.
type MemStore struct {
	mu sync.RWMutex
	m  map[Ref]Record
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: make(map[Ref]Record)} }

// Get implements Store.
func (s *MemStore) Get(_ context.Context, owner, name string) (Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.m[Ref{owner, name}]
	if !ok {
		return Record{}, ErrNotFound
	}
	return cloneRecord(r), nil
}

// Put implements Store.
func (s *MemStore) Put(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := Ref{r.Owner, r.Name}
	prev, ok := s.m[ref]
	if ok && r.Version != prev.Version+1 || !ok && r.Version != 1 {
		return ErrConflict
	}
	s.m[ref] = cloneRecord(r)
	return nil
}

// List implements Store.
func (s *MemStore) List(_ context.Context, owner string) ([]Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var rs []Record
	for ref, r := range s.m {
		if ref.Owner == owner {
			rs = append(rs, cloneRecord(r))
		}
	}
	slices.SortFunc(rs, func(a, b Record) int { return cmp.Compare(a.Name, b.Name) })
	return rs, nil
}

// Delete implements Store.
func (s *MemStore) Delete(_ context.Context, owner, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := Ref{owner, name}
	if _, ok := s.m[ref]; !ok {
		return ErrNotFound
	}
	delete(s.m, ref)
	return nil
}

// SetRevealed implements Store.
func (s *MemStore) SetRevealed(_ context.Context, owner, name string, version int64, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := Ref{owner, name}
	if r, ok := s.m[ref]; ok && r.Version == version && r.RevealedAt.Before(at) {
		r.RevealedAt = at
		s.m[ref] = r
	}
	return nil
}

// Rewrap implements Store.
func (s *MemStore) Rewrap(_ context.Context, owner, name string, version int64, fromKEK, toKEK string, wrapped []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := Ref{owner, name}
	r, ok := s.m[ref]
	if !ok {
		return ErrNotFound
	}
	if r.Version != version || r.KEKVersion != fromKEK {
		return ErrConflict
	}
	r.KEKVersion, r.WrappedKey = toKEK, bytes.Clone(wrapped)
	s.m[ref] = r
	return nil
}

// Stale implements Store.
func (s *MemStore) Stale(_ context.Context, kek string, after Ref, limit int) ([]Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var rs []Record
	for ref, r := range s.m {
		if r.KEKVersion != kek && compareRef(ref, after) > 0 {
			rs = append(rs, cloneRecord(r))
		}
	}
	slices.SortFunc(rs, func(a, b Record) int { return compareRef(Ref{a.Owner, a.Name}, Ref{b.Owner, b.Name}) })
	if len(rs) > limit {
		rs = rs[:max(limit, 0)]
	}
	return rs, nil
}

func compareRef(a, b Ref) int {
	if c := cmp.Compare(a.Owner, b.Owner); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

func cloneRecord(r Record) Record {
	r.WrappedKey = bytes.Clone(r.WrappedKey)
	r.Nonce = bytes.Clone(r.Nonce)
	r.Ciphertext = bytes.Clone(r.Ciphertext)
	return r
}

var _ Store = (*MemStore)(nil)
