// Package memstore is an in-memory apikey.Store, for tests, prototypes and
// single-process services that can afford to lose their keys on restart.
package memstore

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/apikeykit/apikey"
)

// Store is an in-memory apikey.Store. It also implements apikey.Rotator,
// apikey.LastUsedRecorder, apikey.LegacyStore, apikey.EventClaimer and
// apikey.EventPruner (claims.go), apikey.UsageRecorder (usage is kept for
// as long as the Store, one entry per key and hour) and apikey.Watcher, so
// several Managers sharing one Store see each other's revocations at once. The zero value is not
// usable; call New. A Store is safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	keys    map[string]*apikey.Key
	legacy  map[string]apikey.LegacyRecord // by Lookup
	all     *idList                        // every ID
	byOwner map[string]*idList             // IDs of each owner
	claims  map[[2]string]time.Time        // key ID and event: when claimed

	usageMu sync.Mutex
	usage   map[usageBucket]usageCell

	watchMu  sync.Mutex
	watchers map[int]func(id string)
	nextW    int
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		keys:     make(map[string]*apikey.Key),
		legacy:   make(map[string]apikey.LegacyRecord),
		all:      new(idList),
		byOwner:  make(map[string]*idList),
		claims:   make(map[[2]string]time.Time),
		watchers: make(map[int]func(string)),
		usage:    make(map[usageBucket]usageCell),
	}
}

// Create implements apikey.Store.
func (s *Store) Create(ctx context.Context, k *apikey.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.keys[k.ID]; ok {
		s.mu.Unlock()
		return apikey.ErrConflict
	}
	s.insertLocked(k)
	s.mu.Unlock()
	s.notify(k.ID)
	return nil
}

func (s *Store) insertLocked(k *apikey.Key) {
	k.Revision = 1
	s.keys[k.ID] = k.Clone()
	s.all.add(k.ID)
	s.owner(k.Owner).add(k.ID)
}

func (s *Store) owner(name string) *idList {
	l, ok := s.byOwner[name]
	if !ok {
		l = new(idList)
		s.byOwner[name] = l
	}
	return l
}

// idList is a list of IDs that is sorted when listed rather than on every
// insert, so that creating n keys costs O(n log n), not O(n²).
type idList struct {
	ids    []string
	sorted bool
}

func (l *idList) add(id string) {
	l.sorted = l.sorted && (len(l.ids) == 0 || l.ids[len(l.ids)-1] < id)
	if len(l.ids) == 0 {
		l.sorted = true
	}
	l.ids = append(l.ids, id)
}

func (l *idList) remove(id string) {
	if i := slices.Index(l.ids, id); i >= 0 {
		l.ids = slices.Delete(l.ids, i, i+1)
	}
}

func (l *idList) sortedIDs() []string {
	if !l.sorted {
		slices.Sort(l.ids)
		l.sorted = true
	}
	return l.ids
}

// Get implements apikey.Store.
func (s *Store) Get(ctx context.Context, id string) (*apikey.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[id]
	if !ok {
		return nil, apikey.ErrNotFound
	}
	return k.Clone(), nil
}

// Update implements apikey.Store.
func (s *Store) Update(ctx context.Context, k *apikey.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.updateLocked(k); err != nil {
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	s.notify(k.ID)
	return nil
}

func (s *Store) updateLocked(k *apikey.Key) error {
	old, ok := s.keys[k.ID]
	if !ok {
		return apikey.ErrNotFound
	}
	if old.Revision != k.Revision {
		return apikey.ErrConflict
	}
	if old.Owner != k.Owner {
		s.byOwner[old.Owner].remove(k.ID)
		if len(s.byOwner[old.Owner].ids) == 0 {
			delete(s.byOwner, old.Owner)
		}
		s.owner(k.Owner).add(k.ID)
	}
	k.Revision++
	s.keys[k.ID] = k.Clone()
	return nil
}

// Rotate implements apikey.Rotator: both writes happen under one lock, or
// neither does.
func (s *Store) Rotate(ctx context.Context, old, replacement *apikey.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.keys[replacement.ID]; ok {
		s.mu.Unlock()
		return apikey.ErrConflict
	}
	if err := s.updateLocked(old); err != nil {
		s.mu.Unlock()
		return err
	}
	s.insertLocked(replacement)
	s.mu.Unlock()
	s.notify(old.ID)
	s.notify(replacement.ID)
	return nil
}

// List implements apikey.Store.
func (s *Store) List(ctx context.Context, opts apikey.ListOptions) ([]*apikey.Key, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	limit := opts.PageLimit()
	// A write lock, because listing may sort.
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	if opts.Owner == "" {
		ids = s.all.sortedIDs()
	} else if l, ok := s.byOwner[opts.Owner]; ok {
		ids = l.sortedIDs()
	}
	start, found := slices.BinarySearch(ids, opts.Cursor)
	if found {
		start++
	}
	var keys []*apikey.Key
	for _, id := range ids[start:] {
		if len(keys) == limit {
			return keys, keys[limit-1].ID, nil
		}
		keys = append(keys, s.keys[id].Clone())
	}
	return keys, "", nil
}

// RecordLastUsed implements apikey.LastUsedRecorder.
func (s *Store) RecordLastUsed(ctx context.Context, used map[string]time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, at := range used {
		if k, ok := s.keys[id]; ok && at.After(k.LastUsedAt) {
			k.LastUsedAt = at
		}
	}
	return nil
}

// Watch implements apikey.Watcher. changed is called synchronously by the
// goroutine that made the change, after the change is visible, so it must
// be quick and must not call back into the Store.
func (s *Store) Watch(ctx context.Context, changed func(id string)) error {
	s.watchMu.Lock()
	n := s.nextW
	s.nextW++
	s.watchers[n] = changed
	s.watchMu.Unlock()
	changed("") // from here on nothing is missed
	<-ctx.Done()
	s.watchMu.Lock()
	delete(s.watchers, n)
	s.watchMu.Unlock()
	return ctx.Err()
}

func (s *Store) notify(id string) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	for _, fn := range s.watchers {
		fn(id)
	}
}

// Len returns the number of keys held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys)
}

var (
	_ apikey.Store            = (*Store)(nil)
	_ apikey.Rotator          = (*Store)(nil)
	_ apikey.LastUsedRecorder = (*Store)(nil)
	_ apikey.Watcher          = (*Store)(nil)
	_ apikey.LegacyStore      = (*Store)(nil)
	_ apikey.EventClaimer     = (*Store)(nil)
	_ apikey.EventPruner      = (*Store)(nil)
)
